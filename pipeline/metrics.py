"""The paper's metrics over K generated cells, matched by canonical hash.

All values in percent. Denominators (K = generated cells; valid = valid after refinement;
known = valid cells whose hash is in the benchmark WITH a known accuracy):

==============  ============================================  ===========
metric          numerator                                     denominator
==============  ============================================  ===========
validity        valid                                         K
uniqueness      distinct hashes among valid                   valid
novelty         valid not in the training split               valid
in_benchmark    valid whose hash is in the benchmark table    valid
coverage        known                                         valid
top5/10/50      known in the best 5/10/50% of labelled cells  known
acc_n           known with accuracy > n (``acc_threshold``)   known
mean_acc        sum of known accuracies                       known
==============  ============================================  ===========

On a fully labelled benchmark ``known`` = ``in_benchmark``; on a partially labelled one
(the shared NAS-Bench-101 subset) accuracy-based metrics rest on the known cells only, and
``coverage`` says how many that is.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipeline.benchmarks.base import Benchmark


@dataclass
class Reference:
    """What generated cells are compared with: built once per trial."""

    bench: Benchmark
    train_hashes: set[str]
    top: dict[int, set[str]]
    acc_threshold: float

    @classmethod
    def build(
        cls,
        bench: Benchmark,
        train_rows: np.ndarray,
        acc_threshold: float,
        top_percents: tuple[int, ...] = (5, 10, 50),
    ) -> Reference:
        return cls(
            bench=bench,
            train_hashes=set(bench.hashes[train_rows].tolist()),
            top={p: bench.top_hashes(p) for p in top_percents},
            acc_threshold=acc_threshold,
        )


def _pct(num: float, den: float) -> float:
    return float(100.0 * num / den) if den else float("nan")


def generation_metrics(hashes: list[str | None], ref: Reference) -> dict[str, float]:
    """Metrics of one set of generated cells (``None`` = invalid); see the module table."""
    k = len(hashes)
    valid = [h for h in hashes if h is not None]
    n_valid = len(valid)
    idx = ref.bench.index
    rows = [idx.get(h) for h in valid]
    acc = np.array([ref.bench.accuracy[r] if r is not None else np.nan for r in rows])
    known = ~np.isnan(acc)
    known_hashes = [h for h, kn in zip(valid, known, strict=True) if kn]
    n_known = int(known.sum())
    out = {
        "n_generated": float(k),
        "n_valid": float(n_valid),
        "n_known": float(n_known),
        "validity": _pct(n_valid, k),
        "uniqueness": _pct(len(set(valid)), n_valid),
        "novelty": _pct(sum(h not in ref.train_hashes for h in valid), n_valid),
        "in_benchmark": _pct(sum(r is not None for r in rows), n_valid),
        "coverage": _pct(n_known, n_valid),
    }
    for p, top in ref.top.items():
        out[f"top{p}"] = _pct(sum(h in top for h in known_hashes), n_known)
    out["acc_n"] = _pct(int((acc[known] > ref.acc_threshold).sum()), n_known)
    out["mean_acc"] = float(acc[known].mean()) if n_known else float("nan")
    return out
