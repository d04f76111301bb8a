"""Cells (ops on nodes + upper-triangular adjacency), pruning, validity and the official hash.

A :class:`Cell` is what a benchmark stores and what a generator emits after refinement.
Ops are names from a :class:`~pipeline.nas.spaces.SearchSpace`; vertex 0 is ``input`` and the
last vertex is ``output``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import torch

from pipeline.errors import UserError
from pipeline.nas.spaces import INPUT, OUTPUT, SearchSpace


class CellError(UserError, ValueError):
    """A cell that cannot exist in its search space (the message says why)."""


def _md5(text: str) -> str:
    return hashlib.md5(text.encode("utf-8")).hexdigest()


def graph_hash(adjacency: np.ndarray, labels: list[int]) -> str:
    """Official NAS-Bench-101 module hash of a DAG with integer vertex labels.

    Initial vertex hash = md5(str((out_degree, in_degree, label))); then V rounds in which
    every vertex at once becomes md5(sorted in-neighbour hashes joined + '|' + sorted
    out-neighbour hashes joined + '|' + own hash); the key is md5(str(sorted(hashes))).
    Isomorphic labelled graphs get the same key.
    """
    rows = np.asarray(adjacency).tolist()  # plain Python from here: ~3x faster on 7 nodes
    v = len(rows)
    succs = [[j for j in range(v) if rows[i][j]] for i in range(v)]
    preds = [[i for i in range(v) if rows[i][j]] for j in range(v)]
    # Plain ints: with numpy 2, str(np.int64(2)) in a tuple prints 'np.int64(2)'.
    hashes = [_md5(str((len(succs[i]), len(preds[i]), int(labels[i])))) for i in range(v)]
    for _ in range(v):
        hashes = [
            _md5(
                "".join(sorted([hashes[w] for w in preds[i]]))
                + "|"
                + "".join(sorted([hashes[w] for w in succs[i]]))
                + "|"
                + hashes[i]
            )
            for i in range(v)
        ]
    return _md5(str(sorted(hashes)))


def on_path_mask(adjacency: np.ndarray, source: int = 0, sink: int | None = None) -> np.ndarray:
    """Boolean mask of vertices on some source-to-sink path (forward AND backward reachable)."""
    adj = np.asarray(adjacency, dtype=bool)
    v = adj.shape[0]
    sink = v - 1 if sink is None else sink
    fwd = np.zeros(v, dtype=bool)
    fwd[source] = True
    bwd = np.zeros(v, dtype=bool)
    bwd[sink] = True
    for _ in range(v):
        fwd = fwd | (fwd @ adj)
        bwd = bwd | (adj @ bwd)
    return fwd & bwd


@dataclass(frozen=True, eq=False)
class Cell:
    """A cell: op names in vertex order and a V x V upper-triangular 0/1 adjacency matrix."""

    ops: tuple[str, ...]
    adjacency: np.ndarray

    @classmethod
    def from_lists(cls, ops: list[str] | tuple[str, ...], adjacency) -> Cell:
        """Build a cell, checking shapes, 0/1 entries and upper-triangularity."""
        adj = np.asarray(adjacency)
        if adj.ndim == 1:
            v = int(round(np.sqrt(adj.size)))
            if v * v != adj.size:
                raise CellError(f"flattened adjacency of length {adj.size} is not a square matrix")
            adj = adj.reshape(v, v)
        if adj.ndim != 2 or adj.shape[0] != adj.shape[1]:
            raise CellError(f"adjacency must be a square matrix, got shape {adj.shape}")
        if len(ops) != adj.shape[0]:
            raise CellError(f"{len(ops)} ops for a {adj.shape[0]}x{adj.shape[0]} adjacency matrix")
        if not np.isin(adj, (0, 1)).all():
            raise CellError("adjacency entries must be 0 or 1")
        if np.tril(adj).any():
            raise CellError("adjacency must be strictly upper-triangular (a DAG in vertex order)")
        return cls(tuple(ops), adj.astype(np.uint8))

    @classmethod
    def from_matrix_string(cls, ops: list[str], matrix: str) -> Cell:
        """Build from a row-major 0/1 string of the V x V matrix (``--matrix`` on the CLI)."""
        text = matrix.strip()
        if not text or set(text) - {"0", "1"}:
            raise CellError(f"matrix string must contain only '0' and '1', got {matrix!r}")
        v = len(ops)
        if len(text) != v * v:
            raise CellError(
                f"matrix string has {len(text)} characters; {v} ops need {v}x{v} = {v * v}"
            )
        return cls.from_lists(ops, np.frombuffer(text.encode(), dtype=np.uint8) - ord("0"))

    @property
    def num_vertices(self) -> int:
        return len(self.ops)

    @property
    def num_edges(self) -> int:
        return int(self.adjacency.sum())

    def check_ops(self, space: SearchSpace) -> None:
        """Raise CellError on an unknown op or input/output in the wrong place."""
        for op in self.ops:
            if op not in space.ops:
                raise CellError(
                    f"unknown op {op!r} for search space {space.name}; "
                    f"expected one of {list(space.ops)}"
                )
        if not self.ops or self.ops[0] != INPUT or self.ops[-1] != OUTPUT:
            raise CellError(f"first op must be {INPUT!r} and last {OUTPUT!r}, got {list(self.ops)}")
        if INPUT in self.ops[1:] or OUTPUT in self.ops[:-1]:
            raise CellError("input and output may appear only as first and last vertex")

    def prune(self) -> Cell | None:
        """Keep only vertices on some input-to-output path, in order; None if there is no path."""
        keep = on_path_mask(self.adjacency)
        if not keep[0] or not keep[-1]:
            return None
        idx = np.flatnonzero(keep)
        return Cell(tuple(self.ops[i] for i in idx), self.adjacency[np.ix_(idx, idx)])

    def validity_error(self, space: SearchSpace) -> str | None:
        """Why this (pruned) cell is not in ``space``, or None when it is valid."""
        try:
            self.check_ops(space)
        except CellError as exc:
            return str(exc)
        if not on_path_mask(self.adjacency).all():
            return "has vertices off every input-to-output path (prune first) or no path at all"
        if self.num_vertices > space.max_vertices:
            return f"{self.num_vertices} vertices > {space.max_vertices}"
        if space.max_edges is not None and self.num_edges > space.max_edges:
            return f"{self.num_edges} edges > {space.max_edges}"
        return None

    def is_valid(self, space: SearchSpace) -> bool:
        return self.validity_error(space) is None

    def hash(self, space: SearchSpace) -> str:
        """Official NAS-Bench-101 hash (the benchmark key); labels from ``space``."""
        labels = [space.hash_label(space.op_index(op)) for op in self.ops]
        return graph_hash(self.adjacency, labels)

    def op_indices(self, space: SearchSpace) -> np.ndarray:
        return np.array([space.op_index(op) for op in self.ops], dtype=np.int64)

    def matrix_string(self) -> str:
        return "".join(str(int(x)) for x in self.adjacency.reshape(-1))

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, Cell)
            and self.ops == other.ops
            and np.array_equal(self.adjacency, other.adjacency)
        )

    def __hash__(self) -> int:
        return hash((self.ops, self.adjacency.tobytes()))

    def __repr__(self) -> str:
        return f"Cell(ops={list(self.ops)}, matrix={self.matrix_string()!r})"


def parse_cell(space: SearchSpace, ops: list[str], matrix: str) -> tuple[Cell, Cell | None]:
    """Parse CLI-style input and prune it: (as given, pruned or None when no path).

    Raises CellError on unknown ops, misplaced input/output, a malformed matrix, or more
    vertices than the space allows after pruning.
    """
    cell = Cell.from_matrix_string(ops, matrix)
    cell.check_ops(space)
    pruned = cell.prune()
    if pruned is None:
        raise CellError("the cell has no input-to-output path")
    if pruned.num_vertices > space.max_vertices:
        raise CellError(
            f"{pruned.num_vertices} vertices after pruning; {space.name} allows at most "
            f"{space.max_vertices}"
        )
    return cell, pruned


# ---------------------------------------------------------------------------------------
# Tensors for models: padded, one-hot, output on the last slot.


def cells_to_dense(
    cells: list[Cell], space: SearchSpace, n: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Batch of cells -> (one-hot ops [B,N,K], adjacency [B,N,N], node mask [B,N]); the
    layout of :func:`table_to_dense`."""
    vmax = max(c.num_vertices for c in cells)
    ops = np.full((len(cells), vmax), -1, dtype=np.int8)
    adj = np.zeros((len(cells), vmax, vmax), dtype=np.uint8)
    for i, cell in enumerate(cells):
        ops[i, : cell.num_vertices] = cell.op_indices(space)
        adj[i, : cell.num_vertices, : cell.num_vertices] = cell.adjacency
    nv = np.array([c.num_vertices for c in cells])
    return table_to_dense(ops, adj, nv, space.num_ops, n)


def table_to_dense(
    ops: np.ndarray, adjacency: np.ndarray, num_vertices: np.ndarray, num_ops: int, n: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Benchmark arrays (padded ops [R, Vmax] with -1, adjacency [R, Vmax, Vmax], vertex
    counts [R]) -> (x [R,N,K], adj [R,N,N], mask [R,N]), vectorised. Layout: interior
    vertices in order, output on slot N-1; GNN models are permutation-equivariant, so it only
    has to match the generators, which fix input on slot 0 and output on slot N-1."""
    r, vmax = ops.shape
    nv = np.asarray(num_vertices, dtype=np.int64)
    if (nv > n).any():
        raise CellError(f"cells of up to {nv.max()} vertices do not fit in {n} slots")
    j = np.broadcast_to(np.arange(vmax), (r, vmax))
    slot = np.where(j == (nv - 1)[:, None], n - 1, j)
    present = j < nv[:, None]
    rows, cols = np.nonzero(present)
    x = torch.zeros(r, n, num_ops)
    x[rows, slot[rows, cols], ops[rows, cols].astype(np.int64)] = 1.0
    mask = torch.zeros(r, n, dtype=torch.bool)
    mask[rows, slot[rows, cols]] = True
    b, s, t = np.nonzero(adjacency)
    a = torch.zeros(r, n, n)
    a[b, slot[b, s], slot[b, t]] = 1.0
    return x, a, mask
