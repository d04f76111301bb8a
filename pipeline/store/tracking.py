"""MLflow records of a sweep: one experiment per sweep, one run per trial.

Only the sweep's driver writes (no concurrent writers on the SQLite store). The trial id is
a tag, so a resumed or retried trial reuses its run instead of creating another; runs left
RUNNING by a killed driver are closed (KILLED) on resume unless their trial runs again.
Where the runs go: see :func:`tracking_uri` (a team's tracking server, or a SQLite file).
"""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

from mlflow.entities import Metric, Param, RunTag  # noqa: E402
from mlflow.tracking import MlflowClient  # noqa: E402

from pipeline.paths import cache_dir  # noqa: E402
from pipeline.store.location import Location  # noqa: E402


def tracking_uri(folder, explicit: str | None = None) -> str:
    """The MLflow store of a sweep folder: ``explicit`` (``--tracking-uri``), else
    ``MLFLOW_TRACKING_URI``, else a SQLite file: ``<folder>/mlflow.db`` for a local folder,
    ``<cache>/mlflow/<hash of the folder's URI>/mlflow.db`` for results on object storage
    (SQLite cannot live there; a team shares a tracking server instead)."""
    if explicit or os.environ.get("MLFLOW_TRACKING_URI"):
        return explicit or os.environ["MLFLOW_TRACKING_URI"]
    return _default_uri(Location.of(folder))


def _default_uri(where: Location) -> str:
    if where.is_local:
        return f"sqlite:///{where.path}/mlflow.db"
    key = hashlib.sha256(where.uri.encode()).hexdigest()[:12]
    return f"sqlite:///{cache_dir() / 'mlflow' / key / 'mlflow.db'}"


def _artifact_root(uri: str, folder: Location) -> str | None:
    """Local results keep artifacts in the folder, a SQLite store beside its file; a
    tracking server (http, databricks, ...) uses its own artifact store (None)."""
    if uri.startswith("sqlite:///"):
        if folder.is_local:
            return (Path(folder.path) / "mlartifacts").as_uri()
        return (Path(uri.removeprefix("sqlite:///")).parent / "mlartifacts").as_uri()
    return None


class SweepTracker:
    """MLflow client for one sweep (see module docstring)."""

    def __init__(self, folder, sweep: str, uri: str | None = None) -> None:
        folder = Location.of(folder)
        self.uri = tracking_uri(folder, uri)
        if self.uri.startswith("sqlite:///"):
            Path(self.uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        self.client = MlflowClient(tracking_uri=self.uri)
        exp = self.client.get_experiment_by_name(sweep)
        if exp is None:
            artifacts = _artifact_root(self.uri, folder)
            self.experiment_id = self.client.create_experiment(sweep, artifact_location=artifacts)
        else:
            self.experiment_id = exp.experiment_id
        self.sweep = sweep
        # On a store shared by several results locations (a team's server), a run belongs
        # to this sweep if its ``results`` tag names this folder (runs recorded before the
        # tag existed have none and count as ours; they get the tag when reused).
        self.results = folder.uri
        self._shared = self.uri != _default_uri(folder)
        self._runs: dict[str, str] = {}
        for run in self.client.search_runs([self.experiment_id], max_results=50000):
            tid = run.data.tags.get("trial_id")
            if tid and self._ours(run):
                self._runs[tid] = run.info.run_id

    def run_id(self, trial_id: str) -> str | None:
        """The run of a trial in this sweep's experiment, if it has one."""
        return self._runs.get(trial_id)

    def _ours(self, run) -> bool:
        return not self._shared or run.data.tags.get("results", self.results) == self.results

    def close_orphans(self, rerun: set[str], finished: set[str] = frozenset()) -> int:
        """Close RUNNING runs whose trial will not run again: FINISHED when the trial is
        recorded as finished (the driver died between its Parquet row and MLflow), KILLED
        otherwise; returns how many."""
        closed = 0
        for run in self.client.search_runs([self.experiment_id], "attributes.status = 'RUNNING'"):
            tid = run.data.tags.get("trial_id")
            if self._ours(run) and tid not in rerun:
                self.client.set_terminated(
                    run.info.run_id, "FINISHED" if tid in finished else "KILLED"
                )
                closed += 1
        return closed

    def start(self, trial_id: str, config: dict, tags: dict[str, str], name: str) -> str:
        """The trial's run (reused if it exists, else created as ``name``), marked RUNNING,
        with params and tags."""
        run_id = self._runs.get(trial_id)
        if run_id is None:
            run = self.client.create_run(
                self.experiment_id,
                run_name=name,
                tags={"trial_id": trial_id, "sweep": self.sweep, "results": self.results},
            )
            run_id = self._runs[trial_id] = run.info.run_id
            self.client.log_batch(
                run_id, params=[Param(k, str(v)[:6000]) for k, v in sorted(config.items())]
            )
        else:
            self.client.update_run(run_id, status="RUNNING")
        tags = {**tags, "results": self.results}
        self.client.log_batch(run_id, tags=[RunTag(k, str(v)) for k, v in tags.items()])
        return run_id

    def log_metrics(self, run_id: str, metrics: dict, step: int) -> None:
        ts = int(time.time() * 1000)
        batch = [
            Metric(k, float(v), ts, step)
            for k, v in metrics.items()
            if isinstance(v, int | float) and v == v
        ]  # skip NaN
        if batch:
            self.client.log_batch(run_id, metrics=batch)

    def copy_metrics(self, run_id: str, source: SweepTracker, source_run: str) -> None:
        """Every metric of ``source_run`` (in ``source``'s store) into ``run_id`` with its
        whole history, steps and timestamps kept: a copied trial's curves are the trained
        one's, not its last values."""
        have = {  # points a copy interrupted by a kill already logged: not logged twice
            (m.key, m.step, m.timestamp)
            for key in self.client.get_run(run_id).data.metrics
            for m in self.client.get_metric_history(run_id, key)
        }
        history = [
            Metric(m.key, m.value, m.timestamp, m.step)
            for key in source.client.get_run(source_run).data.metrics
            for m in source.client.get_metric_history(source_run, key)
            if (m.key, m.step, m.timestamp) not in have
        ]
        for i in range(0, len(history), 1000):  # MLflow's limit per batch
            self.client.log_batch(run_id, metrics=history[i : i + 1000])

    def finish(
        self,
        run_id: str,
        status: str,
        artifacts: Path | None = None,
        tags: dict[str, str] | None = None,
    ) -> None:
        if tags:
            self.client.log_batch(run_id, tags=[RunTag(k, str(v)[:5000]) for k, v in tags.items()])
        if artifacts is not None:
            names = sorted(p.name for p in artifacts.glob("*.parquet") if p.stem != "epochs")
            for name in (*names, "model.pt", "result.json"):
                if (artifacts / name).exists():
                    self.client.log_artifact(run_id, str(artifacts / name))
        self.client.set_terminated(run_id, status)
