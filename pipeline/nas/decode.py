"""Generated dense graphs -> cells, validity and canonical hashes, fast.

Each refined graph is packed into one int64 key (op code per slot, base K+1 with K meaning
absent, times 2^(N(N-1)/2) plus the upper-triangular adjacency bits). Only keys never seen
before are decoded into a :class:`~pipeline.nas.cells.Cell` and hashed with the official
algorithm; the cache lives as long as the decoder, so a trial hashes each distinct graph
once. Isomorphic graphs with different keys still share a hash: metrics use the hash.

With a benchmark table (``CellDecoder(space, n, table=bench)``) a batch is first looked up
by tensor ops (:class:`pipeline.nas.labels.RowLookup`: validity and a Weisfeiler-Lehman key for
the whole batch at once); a graph found in the table takes the table's official hash, an
invalid one None, and only valid graphs the table lacks are hashed in Python. A complete
table (NAS-Bench-101's 423,624 cells, every NATS architecture) lacks no cell of its space,
so a graph outside it is no cell of the space: None as well, unhashed (the metrics count
it invalid either way; ``Benchmark.in_space``). Otherwise the hashes are exactly those of
the Python path (``tests/pipeline/nas/test_labels.py``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from pipeline.nas.cells import Cell
from pipeline.nas.graphs import Graphs
from pipeline.nas.spaces import SearchSpace


def slots_to_cell(codes, adj: np.ndarray, space: SearchSpace) -> Cell | None:
    """The cell of one dense graph's present slots: ``codes`` [N] op indices (``space.num_ops``
    marks an absent slot), ``adj`` [N, N] 0/1; None when no slot is present. Not pruned."""
    idx = [i for i, c in enumerate(codes) if c < space.num_ops]
    if not idx:
        return None
    return Cell(tuple(space.ops[codes[i]] for i in idx), adj[np.ix_(idx, idx)].astype(np.uint8))


def pack_keys(codes: np.ndarray, adj: np.ndarray, num_ops: int) -> np.ndarray:
    """One int64 key per dense graph (the module docstring's encoding): ``codes`` [B, N] op
    indices with ``num_ops`` for an absent slot, ``adj`` [B, N, N] 0/1 (upper triangle read)."""
    n = codes.shape[1]
    iu = np.triu_indices(n, 1)
    op_key = (codes.astype(np.int64) * (num_ops + 1) ** np.arange(n, dtype=np.int64)).sum(-1)
    bits = adj[:, iu[0], iu[1]].astype(np.int64) << np.arange(len(iu[0]), dtype=np.int64)
    return op_key * (1 << len(iu[0])) + bits.sum(-1)


def unpack_keys(keys: np.ndarray, n: int, num_ops: int) -> tuple[np.ndarray, np.ndarray]:
    """The inverse of :func:`pack_keys`: codes [B, n] int64 and adjacency [B, n, n] uint8."""
    keys = np.asarray(keys, dtype=np.int64)
    iu = np.triu_indices(n, 1)
    n_bits = len(iu[0])
    op_key, adj_key = keys >> n_bits, keys & ((1 << n_bits) - 1)
    codes = (op_key[:, None] // (num_ops + 1) ** np.arange(n, dtype=np.int64)) % (num_ops + 1)
    adj = np.zeros((len(keys), n, n), dtype=np.uint8)
    adj[:, iu[0], iu[1]] = (adj_key[:, None] >> np.arange(n_bits, dtype=np.int64)) & 1
    return codes, adj


def slots_to_graphs(codes: np.ndarray, adj: np.ndarray, num_ops: int) -> Graphs:
    """Op codes [B, N] (``num_ops`` = absent) and adjacency [B, N, N] as a dense batch."""
    present = torch.as_tensor(codes < num_ops)
    x = torch.nn.functional.one_hot(torch.as_tensor(codes).clamp(max=num_ops - 1), num_ops)
    x = x.to(torch.float32) * present.unsqueeze(-1)
    return Graphs(x, torch.as_tensor(adj, dtype=torch.float32), present)


@dataclass
class Decoded:
    """Per generated graph: its key, validity, canonical hash (None when invalid)."""

    keys: np.ndarray  # [B] int64
    valid: np.ndarray  # [B] bool
    hashes: list[str | None]


class CellDecoder:
    """Decodes :class:`Graphs` batches of one search space with a per-instance cache."""

    def __init__(self, space: SearchSpace, num_nodes: int, table=None) -> None:
        if num_nodes > space.max_slots:
            raise ValueError(
                f"{num_nodes} node slots do not fit a 64-bit graph key for {space.name}: "
                f"at most {space.max_slots}"
            )
        self.space = space
        self.table = table  # a Benchmark of this space: batch lookup by tensor ops
        self._lookup = None
        self.n = num_nodes
        self.k = space.num_ops
        self._cache: dict[int, tuple[str | None, Cell | None]] = {}
        self._rows: dict[int, int] = {}

    def keys(self, g: Graphs) -> np.ndarray:
        """One int64 key per graph (see module docstring)."""
        mask = g.mask.detach().cpu()
        codes = torch.where(mask, g.x.detach().cpu().argmax(-1), self.k).numpy()
        return pack_keys(codes, (g.adj.detach().cpu() > 0.5).numpy(), self.k)

    def slots(self, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The graphs of ``keys``: op codes [B, N] (``num_ops`` = absent) and adjacency."""
        return unpack_keys(keys, self.n, self.k)

    def _decode_key(self, key: int) -> tuple[str | None, Cell | None]:
        codes, adj = unpack_keys(np.array([key]), self.n, self.k)
        cell = slots_to_cell(codes[0].tolist(), adj[0], self.space)
        if cell is None:
            return None, None
        if not cell.is_valid(self.space):
            return None, cell
        return cell.hash(self.space), cell

    def decode(self, g: Graphs) -> Decoded:
        keys = self.keys(g)
        if self.table is not None:
            return self._decode_by_table(g, keys)
        uniq, inverse = np.unique(keys, return_inverse=True)
        results = []
        for key in uniq.tolist():
            results.append(self.decode_key_cached(key))
        hashes = [results[i] for i in inverse.tolist()]
        valid = np.array([h is not None for h in hashes], dtype=bool)
        return Decoded(keys, valid, hashes)

    def _decode_by_table(self, g: Graphs, keys: np.ndarray) -> Decoded:
        if self._lookup is None:
            from pipeline.nas.labels import RowLookup

            self._lookup = RowLookup(self.table, self.n, "cpu")
        x, adj, mask = (t.detach().cpu() for t in g)
        rows = self._lookup.rows(x, adj, mask).numpy()
        table_hashes = self.table.hashes
        hashes: list[str | None] = [None] * len(rows)
        for i in np.flatnonzero(rows >= 0).tolist():
            hashes[i] = str(table_hashes[rows[i]])
        if not self.table.complete:  # valid cells the table lacks: hash them
            for i in np.flatnonzero(rows == -1).tolist():
                hashes[i] = self.decode_key_cached(int(keys[i]))
        return Decoded(keys, np.array([h is not None for h in hashes], dtype=bool), hashes)

    def cell(self, key: int) -> Cell | None:
        """The (pruned) cell of a key seen before, valid or not; None for an empty graph."""
        if key not in self._cache:
            self._cache[key] = self._decode_key(key)
        return self._cache[key][1]

    def rows(self, g: Graphs, index: dict[str, int]) -> np.ndarray:
        """Per graph, its row in a benchmark (``index``: hash -> row), -1 for a valid cell
        that is not in the table, -2 for an invalid one. Cached per key: cheap per step."""
        keys = self.keys(g)
        out = np.empty(len(keys), dtype=np.int64)
        rows = self._rows
        for i, key in enumerate(keys.tolist()):
            r = rows.get(key)
            if r is None:
                h = self.decode_key_cached(key)
                r = rows[key] = -2 if h is None else index.get(h, -1)
            out[i] = r
        return out

    def decode_key_cached(self, key: int) -> str | None:
        hit = self._cache.get(key)
        if hit is None:
            hit = self._cache[key] = self._decode_key(key)
        return hit[0]


class TranslatingDecoder:
    """Decodes graphs generated in one search space as cells of another, by renaming ops
    (``mapping``: source op name -> target op name; input/output stay), then validating and
    hashing them in the target space. Used to evaluate a NAS-Bench-101 generator on NATS."""

    def __init__(self, source: CellDecoder, target: SearchSpace, mapping: dict[str, str]):
        self.source = source
        self.space = target
        self.mapping = {"input": "input", "output": "output", **mapping}
        self._cache: dict[int, tuple[str | None, Cell | None]] = {}

    def _translate(self, key: int) -> tuple[str | None, Cell | None]:
        cell = self.source.cell(key)
        if cell is None:
            return None, None
        moved = Cell(tuple(self.mapping[op] for op in cell.ops), cell.adjacency)
        if not moved.is_valid(self.space):
            return None, moved
        return moved.hash(self.space), moved

    def _get(self, key: int) -> tuple[str | None, Cell | None]:
        hit = self._cache.get(key)
        if hit is None:
            hit = self._cache[key] = self._translate(key)
        return hit

    def rename(self, codes: np.ndarray) -> np.ndarray:
        """Source-space op codes (``num_ops`` = absent) as target-space codes."""
        src, dst = self.source.space, self.space
        table = [dst.op_index(self.mapping[op]) for op in src.ops] + [dst.num_ops]
        return np.asarray(table, dtype=np.int64)[codes]

    def slots(self, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The graphs of ``keys`` with op codes renamed into the target space."""
        codes, adj = self.source.slots(keys)
        return self.rename(codes), adj

    def decode(self, g: Graphs) -> Decoded:
        keys = self.source.keys(g)
        hashes = [self._get(k)[0] for k in keys.tolist()]
        return Decoded(keys, np.array([h is not None for h in hashes], dtype=bool), hashes)

    def cell(self, key: int) -> Cell | None:
        return self._get(key)[1]
