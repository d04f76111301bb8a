"""One interface over both benchmarks: cells in node form, a named accuracy label, splits.

Accuracies are held in percent (0-100) whatever the source file uses; ``label`` names the
column they came from (e.g. ``val_acc_108_r1``), and every output built on them records it.
Unlabelled cells have NaN accuracy.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from pipeline.errors import UserError
from pipeline.nas.cells import Cell
from pipeline.nas.spaces import SearchSpace


class BenchmarkError(UserError, ValueError):
    """A missing or malformed benchmark file, or a bad request (unknown label, data set)."""


def file_fingerprint(path: Path) -> str:
    """Short fingerprint of a data file or folder: size, mtime-free content sample hash."""
    h = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for p in files:
        size = p.stat().st_size
        h.update(f"{p.name}:{size}".encode())
        with open(p, "rb") as fh:  # head and tail: cheap on a 500 MB file, sensitive to edits
            h.update(fh.read(1 << 20))
            if size > 1 << 20:
                fh.seek(max(size - (1 << 20), 1 << 20))
                h.update(fh.read())
    return h.hexdigest()[:16]


@dataclass
class Split:
    """A seeded split of the labelled cells (indices into the benchmark's rows).

    ``removed_top``: the best ``top_n_removed`` percent by accuracy (never trained on);
    ``train``: a random ``train_fraction`` of the rest; ``held_out``: the remainder;
    ``strong``: per training cell, True for the top half of the training set by accuracy.
    """

    train: np.ndarray
    removed_top: np.ndarray
    held_out: np.ndarray
    strong: np.ndarray
    top_n_removed: float
    train_fraction: float
    seed: int


@dataclass
class Forms:
    """The stored labellings behind a table's rows (:meth:`Benchmark.labellings`): per
    labelling, its row, ops and adjacency in stored vertex order, and its own accuracy."""

    row: np.ndarray  # [M] int64
    ops: np.ndarray  # [M, Vmax] int8, -1 padding
    adjacency: np.ndarray  # [M, Vmax, Vmax] uint8
    accuracy: np.ndarray  # [M] float64, percent, NaN = unknown


@dataclass
class Benchmark:
    """A benchmark table in node form (see module docstring)."""

    name: str
    dataset: str
    space: SearchSpace
    label: str
    hashes: np.ndarray  # [n] str
    ops: np.ndarray  # [n, Vmax] int8 one-hot indices in space order, -1 padding
    adjacency: np.ndarray  # [n, Vmax, Vmax] uint8
    num_vertices: np.ndarray  # [n] int8
    accuracy: np.ndarray  # [n] float64, percent, NaN = unknown
    source: Path
    fingerprint: str
    extra: pd.DataFrame = field(default_factory=pd.DataFrame)  # per-row extras (params, ...)
    notes: dict = field(default_factory=dict)
    # True when the table holds every cell of its search space (NATS: all 15,625
    # architectures; NAS-Bench-101: all 423,624 cells). Then "a cell of the search space"
    # and "a cell of the table" are the same, and validity checks membership too.
    complete: bool = False
    # Where a row merges several source cells (NATS: architectures with one node form), each
    # one's labelling and accuracy; None: one per row, the row itself.
    forms: Forms | None = None
    _index: dict[str, int] | None = field(default=None, repr=False)

    def __len__(self) -> int:
        return len(self.hashes)

    @property
    def index(self) -> dict[str, int]:
        """hash -> row."""
        if self._index is None:
            self._index = {h: i for i, h in enumerate(self.hashes.tolist())}
        return self._index

    @property
    def labelled(self) -> np.ndarray:
        """Boolean mask of rows with a known accuracy."""
        return ~np.isnan(self.accuracy)

    @property
    def num_labelled(self) -> int:
        return int(self.labelled.sum())

    def cell(self, row: int) -> Cell:
        v = int(self.num_vertices[row])
        return Cell(
            tuple(self.space.ops[i] for i in self.ops[row, :v]),
            self.adjacency[row, :v, :v].copy(),
        )

    def labellings(self) -> Forms:
        """Every stored labelling of the table's cells (see ``forms``)."""
        if self.forms is not None:
            return self.forms
        return Forms(np.arange(len(self)), self.ops, self.adjacency, self.accuracy)

    def label_info(self) -> dict:
        """What a result built on this table records about it: label, coverage, fingerprint."""
        return {
            "label": self.label,
            "label_coverage": self.num_labelled / len(self),
            "num_cells": len(self),
            "num_labelled": self.num_labelled,
            "data_fingerprint": self.fingerprint,
            "coverage_note": self.notes.get("coverage_note", ""),
        }

    def in_space(self, hash_: str | None) -> bool:
        """Is a cell (by canonical hash; None = failed the space's rules) a cell of the search
        space? On a complete table that is membership; otherwise the rules alone decide."""
        return hash_ is not None and (not self.complete or hash_ in self.index)

    def lookup(self, hash_: str) -> int | None:
        return self.index.get(hash_)

    def top_hashes(self, percent: float) -> set[str]:
        """Hashes of the best ``percent`` % of labelled cells (ceil of the count, ties by order)."""
        lab = np.flatnonzero(self.labelled)
        k = int(np.ceil(len(lab) * percent / 100.0))
        order = lab[np.argsort(-self.accuracy[lab], kind="stable")]
        return set(self.hashes[order[:k]].tolist())

    def split(
        self, top_n_removed: float = 10.0, train_fraction: float = 0.75, seed: int = 0
    ) -> Split:
        """Remove the best ``top_n_removed`` % of labelled cells, keep a seeded random
        ``train_fraction`` of the rest for training; strong = top half of the training set."""
        if not 0 <= top_n_removed < 100:
            raise BenchmarkError(f"top_n_removed must be in [0, 100), got {top_n_removed}")
        if not 0 < train_fraction <= 1:
            raise BenchmarkError(f"train_fraction must be in (0, 1], got {train_fraction}")
        lab = np.flatnonzero(self.labelled)
        order = lab[np.argsort(-self.accuracy[lab], kind="stable")]
        k = int(np.ceil(len(lab) * top_n_removed / 100.0))
        removed, rest = order[:k], np.sort(order[k:])
        rng = np.random.default_rng(seed)
        perm = rng.permutation(len(rest))
        n_train = int(round(len(rest) * train_fraction))
        train = np.sort(rest[perm[:n_train]])
        held = np.sort(rest[perm[n_train:]])
        acc = self.accuracy[train]
        median_rank = np.argsort(np.argsort(-acc, kind="stable"), kind="stable")
        strong = median_rank < (len(train) + 1) // 2
        return Split(train, np.sort(removed), held, strong, top_n_removed, train_fraction, seed)

    def summary(self) -> dict:
        """What ``gnn2gnn data info`` prints."""
        acc = self.accuracy[self.labelled]
        best = int(np.flatnonzero(self.labelled)[np.argmax(acc)]) if len(acc) else None
        return {
            "benchmark": self.name,
            "dataset": self.dataset,
            "source": str(self.source),
            "fingerprint": self.fingerprint,
            "num_cells": len(self),
            "num_labelled": self.num_labelled,
            "label": self.label,
            "accuracy_unit": "percent",
            "best_accuracy": float(acc.max()) if len(acc) else None,
            "best_hash": str(self.hashes[best]) if best is not None else None,
            "mean_accuracy": float(acc.mean()) if len(acc) else None,
            **self.notes,
        }


def pack_cells(
    flat_ops: np.ndarray,
    flat_adjacency: np.ndarray,
    num_vertices: np.ndarray,
    space: SearchSpace,
    vmax: int,
    where: str,
) -> tuple[np.ndarray, np.ndarray]:
    """Concatenated op names and flattened matrices of all rows -> padded int8 ops
    [n, vmax] and uint8 adjacency [n, vmax, vmax].

    Vectorised over all rows (423k cells in well under a second).
    """
    nv = np.asarray(num_vertices, dtype=np.int64)
    n = len(nv)
    if (nv > vmax).any() or (nv < 2).any():
        raise BenchmarkError(f"{where}: num_vertices must be in [2, {vmax}]")
    encoded = pc.dictionary_encode(pa.array(flat_ops))
    names = encoded.dictionary.to_pylist()
    inv = encoded.indices.to_numpy(zero_copy_only=False)
    try:
        codes = np.array([space.op_index(str(nm)) for nm in names], dtype=np.int8)
    except ValueError as exc:
        raise BenchmarkError(f"{where}: {exc}") from None
    op_codes = codes[inv]
    if len(op_codes) != nv.sum():
        raise BenchmarkError(f"{where}: op lists do not match num_vertices")
    row = np.repeat(np.arange(n), nv)
    col = np.arange(len(op_codes)) - np.repeat(np.cumsum(nv) - nv, nv)
    ops = np.full((n, vmax), -1, dtype=np.int8)
    ops[row, col] = op_codes
    flat_adj = np.asarray(flat_adjacency, dtype=np.uint8)
    sq = nv * nv
    if len(flat_adj) != sq.sum():
        raise BenchmarkError(f"{where}: adjacency lengths do not match num_vertices squared")
    row = np.repeat(np.arange(n), sq)
    local = np.arange(len(flat_adj)) - np.repeat(np.cumsum(sq) - sq, sq)
    vv = np.repeat(nv, sq)
    adj = np.zeros((n, vmax, vmax), dtype=np.uint8)
    adj[row, local // vv, local % vv] = flat_adj
    return ops, adj
