"""The paper's metrics over K generated cells, matched by canonical hash.

All values in percent. Denominators (K = generated cells; valid = cells of the benchmark's
search space; known = valid cells with a known accuracy):

==============  ============================================  ===========
metric          numerator                                     denominator
==============  ============================================  ===========
validity        valid                                         K
uniqueness      distinct hashes among valid                   valid
novelty         valid and not in the training split           valid
in_benchmark    valid whose hash is in the benchmark table    valid
coverage        known                                         valid
top5/10/50      known in the best 5/10/50% of labelled cells  known
acc_n           known with accuracy > n (``acc_threshold``)   known
mean_acc        sum of known accuracies                       known
top5/10/50_all  known in the best 5/10/50% of labelled cells  K
acc_n_all       known with accuracy > n                       K
==============  ============================================  ===========

``n_generated``, ``n_valid``, ``n_known`` and ``n_unique`` (distinct valid hashes) are
recorded beside them, so every percentage can be turned back into a count.

Valid means "a cell of the search space": the space's rules (NAS-Bench-101: input first,
output last, <= 7 vertices and <= 9 edges after pruning) AND, when the benchmark table is
complete (NATS: every architecture's node form; NAS-Bench-101: all 423,624 cells),
membership in it. A node-form graph that no NATS architecture maps to is invalid, never
"novel".

The ``_all`` figures use the authors' denominator (their code divides by all generated
cells); the plain ones the known cells, which is what a partially labelled benchmark
allows without guessing. ``x_all == x * n_known / n_generated`` exactly.

With ``metrics: authors`` (a config field, recorded in every result row) each of these
rows gains ``<metric>_authors`` columns: the same generated cells read as the authors' code
(AndAgio/GNN-2-GNN) reads them (:class:`AuthorsTable`):

=====================  ===========================================  ===========
metric                 numerator                                    denominator
=====================  ===========================================  ===========
validity_authors       well formed and upper-triangular             K
uniqueness_authors     encodings generated exactly once             K
novelty_authors        valid, encoding not in the training split    K
in_benchmark_authors   encoding equal to a stored table labelling   K
top5/10/50_authors     matched, percentile rank <= 5/10/50          K
acc_n_authors          matched known with accuracy >= n             matched known
mean_acc_authors       sum of matched known accuracies              matched known
=====================  ===========================================  ===========

The differences, each from the authors' code: a generated graph is refined by removing
the nodes off every input-output path, and one with no path becomes the 2-vertex
input -> output cell (valid, in the table); validity checks structure only (input first,
output last, upper-triangular), with no vertex or 9-edge rule; a cell is matched by its raw
encoding, ops and adjacency in stored vertex order (labelling-sensitive: an isomorphic cell
numbered otherwise is a miss), never by the isomorphism-invariant hash; the percentile rank
of a labelled encoding is 100 - 100 i / n over the n labelled ones in ascending accuracy,
so Top-N counts the whole table's best N% and divides by all K generated cells, invalid
ones included; accuracies are averaged over matched cells only, with ``>=`` at the
threshold. ``n_matched_authors`` and ``n_known_authors`` give the counts. Their ranking
uses, on NAS-Bench-101, repeat 0's test accuracy, and on NATS ``get_more_info``'s defaults
(12 epochs, one random seed); here it is the trial's label, and a matched cell without one
counts as a miss in Top-N, as a cell missing from their table does. Their NATS encodings
match this project's node form only with skips as direct links (their ``sub_skip`` on, as
in their generation script; their training script's default keeps skip nodes, which no
generated graph would match). What stays the project's own: the kept epoch of
``protocol: authors`` is chosen by the clean full-table Top-10 (``top10_all``) of every
epoch, where theirs is the best training-batch Top-10 of the second half of training.

:func:`reference_metrics` gives the same metrics, as exact expectations, for two
generators that need no training: cells drawn uniformly from the labelled table, and cells
copied from the training split.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from pipeline.nas.decode import pack_keys
from pipeline.nas.graphs import on_path
from pipeline.nas.table import Benchmark

TOP_PERCENTS = (5, 10, 50)
ALL_METRICS = tuple(f"top{p}_all" for p in TOP_PERCENTS) + ("acc_n_all",)


@dataclass
class Reference:
    """What generated cells are compared with: built once per trial."""

    bench: Benchmark
    train_hashes: set[str]
    top: dict[int, set[str]]
    acc_threshold: float
    train_rows: np.ndarray

    @classmethod
    def build(
        cls,
        bench: Benchmark,
        train_rows: np.ndarray,
        acc_threshold: float,
        top_percents: tuple[int, ...] = TOP_PERCENTS,
    ) -> Reference:
        return cls(
            bench=bench,
            train_hashes=set(bench.hashes[train_rows].tolist()),
            top={p: bench.top_hashes(p) for p in top_percents},
            acc_threshold=acc_threshold,
            train_rows=np.asarray(train_rows),
        )


def _pct(num: float, den: float) -> float:
    return float(100.0 * num / den) if den else float("nan")


def generation_metrics(hashes: list[str | None], ref: Reference) -> dict[str, float]:
    """Metrics of one set of generated cells (``None`` = failed the space's rules); see the
    module table."""
    k = len(hashes)
    bench = ref.bench
    idx = bench.index
    valid = [h for h in hashes if bench.in_space(h)]
    n_valid = len(valid)
    rows = [idx.get(h) for h in valid]
    acc = np.array([bench.accuracy[r] if r is not None else np.nan for r in rows])
    known = ~np.isnan(acc)
    known_hashes = [h for h, kn in zip(valid, known, strict=True) if kn]
    n_known = int(known.sum())
    n_unique = len(set(valid))
    out = {
        "n_generated": float(k),
        "n_valid": float(n_valid),
        "n_known": float(n_known),
        "n_unique": float(n_unique),
        "validity": _pct(n_valid, k),
        "uniqueness": _pct(n_unique, n_valid),
        "novelty": _pct(sum(h not in ref.train_hashes for h in valid), n_valid),
        "in_benchmark": _pct(sum(r is not None for r in rows), n_valid),
        "coverage": _pct(n_known, n_valid),
    }
    for p, top in ref.top.items():
        hits = sum(h in top for h in known_hashes)
        out[f"top{p}"] = _pct(hits, n_known)
        out[f"top{p}_all"] = _pct(hits, k)
    above = int((acc[known] > ref.acc_threshold).sum())
    out["acc_n"] = _pct(above, n_known)
    out["acc_n_all"] = _pct(above, k)
    out["mean_acc"] = float(acc[known].mean()) if n_known else float("nan")
    return out


def expected_distinct(pool: int, k: int) -> float:
    """Expected number of distinct items among ``k`` uniform draws with replacement from
    ``pool`` items: pool * (1 - (1 - 1/pool)^k)."""
    if pool <= 0 or k <= 0:
        return 0.0
    return float(pool * -np.expm1(k * np.log1p(-1.0 / pool))) if pool > 1 else 1.0


def _sampled_metrics(rows: np.ndarray, ref: Reference, k: int) -> dict[str, float]:
    """Exact expected metrics of K uniform draws (with replacement) from benchmark ``rows``
    (all labelled, all valid)."""
    bench = ref.bench
    m = len(rows)
    hashes = bench.hashes[rows]
    acc = bench.accuracy[rows]
    distinct = expected_distinct(m, k)
    out = {
        "n_generated": float(k),
        "n_valid": float(k),
        "n_known": float(k),
        "n_unique": distinct,
        "validity": 100.0,
        "uniqueness": _pct(distinct, k),
        "novelty": _pct(sum(h not in ref.train_hashes for h in hashes.tolist()), m),
        "in_benchmark": 100.0,
        "coverage": 100.0,
    }
    for p, top in ref.top.items():
        out[f"top{p}"] = out[f"top{p}_all"] = _pct(sum(h in top for h in hashes.tolist()), m)
    out["acc_n"] = out["acc_n_all"] = _pct(int((acc > ref.acc_threshold).sum()), m)
    out["mean_acc"] = float(acc.mean())
    return out


REFERENCE_ROWS = {
    "uniform": "uniform over the benchmark",
    "copy_train": "copy the training split",
}


def reference_metrics(ref: Reference, k: int) -> list[dict]:
    """The metrics of two generators that need no training, as exact expectations over K
    cells: ``uniform`` draws from the labelled table (Top-5 = 5, mean = the table mean),
    ``copy_train`` draws from the training split (novelty 0)."""
    labelled = np.flatnonzero(ref.bench.labelled)
    train = np.asarray(ref.train_rows)
    train = train[ref.bench.labelled[train]]
    return [
        {"reference": "uniform", **_sampled_metrics(labelled, ref, k)},
        {"reference": "copy_train", **_sampled_metrics(train, ref, k)},
    ]


# ---------------------------------------------------------------------------------------
# The authors' semantics (``metrics: authors``): the same generated graphs, read as the
# authors' code reads them. See the second table of the module docstring.


def authors_form(codes: np.ndarray, adj: np.ndarray, num_ops: int) -> tuple:
    """Generated dense graphs as the authors' refinement leaves them, vectorised.

    ``codes`` [B, N] op indices (``num_ops`` = absent slot), ``adj`` [B, N, N] 0/1. A graph is
    well formed when its first present slot is the only ``input`` and its last the only
    ``output``; then the nodes off every input-output path are removed, and a graph with no
    path becomes the 2-vertex input -> output cell. Present slots move to the front in slot
    order (the labelling is kept, not canonicalised). Returns (codes [B, N] with absent slots
    last, adjacency [B, N, N] bool, valid [B]): valid = well formed and upper-triangular
    (then every interior node has an input and an output; no edge or vertex limit).
    """
    b, n = codes.shape
    out_code = num_ops - 1
    present = codes < num_ops
    idx = np.arange(b)
    first = present.argmax(1)
    last = n - 1 - present[:, ::-1].argmax(1)
    well = (
        present.any(1)
        & ((codes == 0).sum(1) == 1)
        & ((codes == out_code).sum(1) == 1)
        & (codes[idx, first] == 0)
        & (codes[idx, last] == out_code)
    )
    a = adj.astype(bool) & present[:, :, None] & present[:, None, :]
    valid = well & ~np.tril(a).any((1, 2))
    src = np.zeros((b, n), dtype=bool)
    snk = np.zeros((b, n), dtype=bool)
    src[idx, first] = True
    snk[idx, last] = True
    keep = on_path(torch.as_tensor(a), torch.as_tensor(src), torch.as_tensor(snk)).numpy()
    keep &= present
    no_path = well & ~keep[idx, first]
    keep = np.where(well[:, None], keep | (no_path[:, None] & (src | snk)), present)
    a[no_path, first[no_path], last[no_path]] = True
    a &= keep[:, :, None] & keep[:, None, :]
    order = np.argsort(~keep, axis=1, kind="stable")
    codes = np.take_along_axis(np.where(keep, codes, num_ops), order, axis=1)
    a = a[idx[:, None, None], order[:, :, None], order[:, None, :]]
    return codes, a, valid


@dataclass
class AuthorsTable:
    """The benchmark as the authors' code matches against it, built once per trial.

    Every stored labelling of a table cell (NATS: one per architecture; NAS-Bench-101: the
    row) is keyed by its raw encoding (ops and adjacency in stored vertex order, as
    :func:`pipeline.nas.decode.pack_keys` over ``slots`` slots); identical encodings keep the
    lowest accuracy, as the authors' de-duplication does. ``rank`` is the authors' percentile
    of each labelled encoding over all labelled ones (100 - i / n * 100, i its place in
    ascending accuracy: the best is 100 / n); ``inf`` when unlabelled.
    """

    keys: np.ndarray  # [M] sorted, distinct
    accuracy: np.ndarray  # [M] percent, NaN = unknown
    rank: np.ndarray  # [M]
    train_keys: np.ndarray  # sorted raw keys of the training split's labellings
    slots: int
    num_ops: int
    acc_threshold: float

    @classmethod
    def build(
        cls, bench: Benchmark, train_rows: np.ndarray, acc_threshold: float, slots: int
    ) -> AuthorsTable:
        forms = bench.labellings()
        slots = max(slots, forms.ops.shape[1])
        k = bench.space.num_ops
        codes = np.full((len(forms.row), slots), k, dtype=np.int64)
        v = forms.ops.shape[1]
        codes[:, :v] = np.where(forms.ops >= 0, forms.ops, k)
        adj = np.zeros((len(forms.row), slots, slots), dtype=np.uint8)
        adj[:, :v, :v] = forms.adjacency
        keys = pack_keys(codes, adj, k)
        index = np.arange(len(keys))  # the table's order: the authors' ties keep it
        order = np.lexsort((index, np.nan_to_num(forms.accuracy, nan=np.inf), keys))
        keys, acc, index = keys[order], forms.accuracy[order], index[order]
        first = np.ones(len(keys), dtype=bool)
        first[1:] = keys[1:] != keys[:-1]  # per key its lowest accuracy (NaN last), then order
        keys, acc, index = keys[first], acc[first], index[first]
        rank = np.full(len(keys), np.inf)
        lab = np.flatnonzero(~np.isnan(acc))
        up = lab[np.lexsort((index[lab], acc[lab]))]  # ascending accuracy, ties in table order
        rank[up] = 100.0 - np.arange(len(up)) / max(len(up), 1) * 100.0
        in_train = np.isin(forms.row[order][first], np.asarray(train_rows))
        return cls(keys, acc, rank, keys[in_train], slots, k, acc_threshold)

    def metrics(self, codes: np.ndarray, adj: np.ndarray) -> dict[str, float]:
        """``<metric>_authors`` for generated graphs (``codes``, ``adj`` as in
        :func:`authors_form`, in the table's search space); see the module table."""
        b, n = codes.shape
        if n < self.slots:
            codes = np.pad(codes, ((0, 0), (0, self.slots - n)), constant_values=self.num_ops)
            adj = np.pad(adj, ((0, 0), (0, self.slots - n), (0, self.slots - n)))
        codes, adj, valid = authors_form(codes, adj, self.num_ops)
        keys = pack_keys(codes, adj, self.num_ops)
        pos = np.minimum(np.searchsorted(self.keys, keys), len(self.keys) - 1)
        matched = valid & (self.keys[pos] == keys)
        acc = np.where(matched, self.accuracy[pos], np.nan)
        rank = np.where(matched, self.rank[pos], np.inf)
        known = ~np.isnan(acc)
        n_known = int(known.sum())
        _, counts = np.unique(keys, return_counts=True)
        novel = valid & ~np.isin(keys, self.train_keys)
        out = {
            "n_matched_authors": float(matched.sum()),
            "n_known_authors": float(n_known),
            "validity_authors": _pct(int(valid.sum()), b),
            "uniqueness_authors": _pct(int((counts == 1).sum()), b),
            "novelty_authors": _pct(int(novel.sum()), b),
            "in_benchmark_authors": _pct(int(matched.sum()), b),
        }
        for p in TOP_PERCENTS:
            out[f"top{p}_authors"] = _pct(int((rank <= p).sum()), b)
        out["acc_n_authors"] = _pct(int((acc[known] >= self.acc_threshold).sum()), n_known)
        out["mean_acc_authors"] = float(acc[known].mean()) if n_known else float("nan")
        return out
