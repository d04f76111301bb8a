"""Load: one sweep of many trivial trials through the real path (Ray Tune on embedded Ray,
the Parquet results store, an MLflow SQLite store), to see whether recording a trial gets
dearer as the sweep grows and what the driver holds in memory.

    python benchmarks/load_sweep.py [--trials 2000] [--out results/load]

The trials belong to a tiny experiment installed for the run the way a plugin is (a module
and a ``*.dist-info`` with its entry point, on ``sys.path`` and ``PYTHONPATH`` so that Ray
workers find it); each returns at once. The record cost of a trial is the driver's time in
``ResultsStore.record`` and the MLflow calls of that trial (start, metrics, finish),
measured by timing those methods. Prints one JSON object: the record cost at the 10th
trial and at the last ones (medians of 11 around each) and their ratio, the driver's peak
RSS, the MLflow runs and their statuses, Parquet rows and duplicates, and the wall time.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

EXPERIMENT_SOURCE = '''
"""A trial that returns at once (benchmarks/load_sweep.py)."""
from pipeline.config import StrictModel, Profile
from pipeline.experiment import Experiment, TrialResult


class Config(StrictModel):
    seed: int = 0
    profile: Profile = "smoke"


def run_trial(config, reporter=None, progress=False):
    x = (config.seed * 2654435761 % 1000) / 1000.0
    return TrialResult(metrics={"x": x}, epochs=[{"epoch": 1, "x": x}])


EXPERIMENT = Experiment(
    name="loadtest",
    config=Config,
    profiles={"smoke": {}, "cpu": {}, "paper": {}},
    run_trial=run_trial,
    takes_config=True,
    progress_metric="x",
)
'''


def install(folder: Path) -> None:
    """The experiment as an installed plugin (see tests/conftest.py, install_plugin)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "loadtest.py").write_text(EXPERIMENT_SOURCE)
    info = folder / "loadtest-0.1.dist-info"
    info.mkdir(exist_ok=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: loadtest\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(
        "[gnn2gnn.experiments]\nloadtest = loadtest:EXPERIMENT\n"
    )
    sys.path.insert(0, str(folder))
    old = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = str(folder) + (os.pathsep + old if old else "")


def timed(cls, name: str, spent: dict[str, float], key_of) -> None:
    """Wrap ``cls.name`` so that its time adds to ``spent[key_of(args)]``."""
    original = getattr(cls, name)

    def wrapper(self, *args, **kwargs):
        t0 = time.perf_counter()
        try:
            return original(self, *args, **kwargs)
        finally:
            key = key_of(self, args, kwargs)
            spent[key] = spent.get(key, 0.0) + time.perf_counter() - t0

    setattr(cls, name, wrapper)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=2000)
    parser.add_argument("--out", default=None, help="results folder (default: a temporary one)")
    args = parser.parse_args()

    install(Path(tempfile.mkdtemp(prefix="gnn2gnn-load-plugin-")))
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    import mlflow

    from pipeline.experiment import experiments, get_experiment
    from pipeline.store.results import ResultsStore, read_trials
    from pipeline.store.tracking import SweepTracker
    from pipeline.sweep.run import run_sweep
    from pipeline.sweep.spec import SweepSpec

    experiments.cache_clear()
    out = Path(args.out or tempfile.mkdtemp(prefix="gnn2gnn-load-"))
    spent: dict[str, float] = {}
    order: list[str] = []  # trial ids in the order their records were written
    recorded: set[str] = set()

    def by_row(self, a, kw):
        tid = (a[0] if a else kw["row"])["trial_id"]
        if tid not in recorded:
            recorded.add(tid)
            order.append(tid)
        return tid

    runs: dict[str, str] = {}  # run id -> trial id

    def by_start(self, a, kw):
        return a[0] if a else kw["trial_id"]

    def by_run(self, a, kw):
        return runs.get(a[0] if a else kw["run_id"], "?")

    timed(ResultsStore, "record", spent, by_row)
    original_start = SweepTracker.start

    def start(self, trial_id, *a, **kw):
        t0 = time.perf_counter()
        run = original_start(self, trial_id, *a, **kw)
        runs[run] = trial_id
        spent[trial_id] = spent.get(trial_id, 0.0) + time.perf_counter() - t0
        return run

    SweepTracker.start = start
    timed(SweepTracker, "log_metrics", spent, by_run)
    timed(SweepTracker, "finish", spent, by_run)

    spec = SweepSpec(name="load", trainable="loadtest", seeds=args.trials, retries=0)
    lines: list[str] = []
    t0 = time.perf_counter()
    summary = run_sweep(
        spec,
        experiment=get_experiment("loadtest"),
        profile="smoke",
        results=out,
        log=lambda line: lines.append(line) or (len(lines) % 200 == 0 and print(line, flush=True)),
    )
    wall = time.perf_counter() - t0
    costs = [spent[t] for t in order]

    def around(i: int) -> float:
        return statistics.median(costs[max(0, i - 5) : i + 6])

    trials = read_trials(out / "load")
    client = mlflow.tracking.MlflowClient(f"sqlite:///{out / 'load' / 'mlflow.db'}")
    exp = client.get_experiment_by_name("load")
    mruns = client.search_runs([exp.experiment_id], max_results=50_000)
    statuses: dict[str, int] = {}
    for r in mruns:
        statuses[r.info.status] = statuses.get(r.info.status, 0) + 1
    early, late = around(9), around(len(costs) - 6)
    print(
        json.dumps(
            {
                "trials": args.trials,
                "recorded": len(costs),
                "record_ms_at_10": round(1000 * early, 2),
                "record_ms_at_last": round(1000 * late, 2),
                "ratio_last_to_10": round(late / early, 2),
                "record_ms_median": round(1000 * statistics.median(costs), 2),
                "driver_peak_rss_mb": round(
                    resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1
                ),
                "parquet_rows": len(trials),
                "parquet_duplicates": int(trials["trial_id"].duplicated().sum()),
                "mlflow_runs": len(mruns),
                "mlflow_statuses": statuses,
                "failed": len(summary.failed),
                "wall_seconds": round(wall, 1),
                "trials_per_second": round(args.trials / wall, 2),
                "results": str(out),
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
