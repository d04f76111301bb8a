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

:func:`reference_metrics` gives the same metrics, as exact expectations, for two
generators that need no training: cells drawn uniformly from the labelled table, and cells
copied from the training split.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

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
