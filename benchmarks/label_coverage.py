"""How much of what each generator makes has a NAS-Bench-101 label (run on demand; prints,
asserts nothing).

    python benchmarks/label_coverage.py [--models gnn2gnn,molgan,random] [--seeds 0-4]
        [--profile cpu] [--workers 2] [--json]

Trains one trial per model and seed on NAS-Bench-101 (the given profile, the default
label), and over the final K generated cells that are valid reports the share whose cell
has a label under ``val_acc_108_r1`` (one repeat, the shared table's default before issue
25) and under ``val_acc_108_mean`` (every repeat seen, the default now;
``pipeline.nas.nasbench101``): mean over seeds
with a 95% t-interval, and the same for the valid cells with at most 4 and 5 vertices.
Trials run in ``--workers`` processes, one thread each (as a sweep runs them). Issue 25.
"""

from __future__ import annotations

import argparse
import json
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context

import numpy as np
from scipy import stats

LABELS = ("val_acc_108_r1", "val_acc_108_mean")


def _coverage(job: tuple[str, int, str]) -> dict:
    import torch

    from pipeline.nas.benchmarks import load_benchmark
    from trainables.gnn2gnn import run_trial

    torch.set_num_threads(1)
    model, seed, profile = job
    cfg = {"benchmark": "nasbench101", "profile": profile, "model": model, "seed": seed}
    result = run_trial({**cfg, "device": "cpu"})
    cells = [r for r in result.tables["generated"] if r["valid"]]
    out = {"model": model, "seed": seed, "valid": len(cells)}
    for label in LABELS:
        bench = load_benchmark("nasbench101", label=label)
        rows = [bench.lookup(r["hash"]) for r in cells]
        known = np.array([r is not None and bench.labelled[r] for r in rows], dtype=bool)
        sizes = np.array([len(r["ops"]) for r in cells])
        out[label] = 100.0 * known.mean() if len(cells) else float("nan")
        for v in (4, 5):
            small = sizes <= v
            share = 100.0 * known[small].mean() if small.any() else float("nan")
            out[f"{label}_le{v}"] = share
    return out


def _interval(values: list[float]) -> str:
    a = np.array([v for v in values if not np.isnan(v)])
    if len(a) < 2:
        return f"{a.mean():.1f}" if len(a) else "n/a"
    half = stats.t.ppf(0.975, len(a) - 1) * a.std(ddof=1) / np.sqrt(len(a))
    return f"{a.mean():.1f} ± {half:.1f} ({len(a)})"


def _seeds(text: str) -> list[int]:
    if "-" in text:
        lo, hi = text.split("-")
        return list(range(int(lo), int(hi) + 1))
    return [int(s) for s in text.split(",")]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="gnn2gnn,molgan,random")
    ap.add_argument("--seeds", default="0-4")
    ap.add_argument("--profile", default="cpu")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    jobs = [(m, s, args.profile) for m in args.models.split(",") for s in _seeds(args.seeds)]
    with ProcessPoolExecutor(args.workers, mp_context=get_context("spawn")) as pool:
        rows = list(pool.map(_coverage, jobs))
    if args.json:
        print(json.dumps(rows, indent=1))
        return
    cols = [c for lab in LABELS for c in (lab, f"{lab}_le4", f"{lab}_le5")]
    print("| model | valid cells | " + " | ".join(cols) + " |")
    print("|---" * (len(cols) + 2) + "|")
    for model in args.models.split(","):
        mine = [r for r in rows if r["model"] == model]
        cells = [_interval([r[c] for r in mine]) for c in cols]
        valid = _interval([float(r["valid"]) for r in mine])
        print(f"| {model} | {valid} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
