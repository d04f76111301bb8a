"""Run a sweep with Ray Tune: embedded local Ray (loopback only) or an existing cluster.

Finished trials land in the results folder's Parquet files and in MLflow as they finish
(the driver writes both, from Tune callbacks); a resumed sweep runs only the trials that
have not finished.
"""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

import pyarrow.parquet as pq

from pipeline import TELEMETRY_OFF
from pipeline.errors import UserError
from pipeline.experiment import Experiment, default_experiment
from pipeline.store.location import Location, storage_env
from pipeline.store.results import ResultsStore
from pipeline.store.tracking import SweepTracker
from pipeline.sweep.spec import SweepSpec, expand, trial_id
from pipeline.sweep.worker import tune_entry

# Keep the embedded Ray quiet (loopback: see pipeline/__init__.py and DESIGN: pitfalls).
os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
os.environ.setdefault("RAY_DEDUP_LOGS", "1")
os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")


class SweepError(UserError, RuntimeError):
    """A sweep that cannot start (bad address, results folder in the way, ...)."""


def versions() -> dict[str, str]:
    out = {}
    for pkg in ("gnn2gnn", "torch", "ray", "mlflow", "torch-geometric", "numpy", "pandas"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = "missing"
    return out


def check_address(address: str) -> None:
    """Fail fast on an address nothing listens on (``ray.init`` would retry for ever)."""
    if address in ("auto", "local") or address.startswith("ray://"):
        return
    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host or "127.0.0.1", int(port)), timeout=5):
            return
    except (OSError, ValueError) as exc:
        raise SweepError(
            f"no Ray cluster at {address} ({exc}); start one with `ray start --head` or leave "
            "out --address to use embedded local Ray"
        ) from None


def init_ray(address: str | None) -> bool:
    """Connect to ``address`` or start an embedded local Ray on 127.0.0.1; True if started."""
    import ray

    if ray.is_initialized():
        return False
    # workers reach the same object storage (and tracking server) as the driver
    env = {**TELEMETRY_OFF, **storage_env()}
    if "GNN2GNN_MALLOC" in os.environ:  # the malloc opt-out (pipeline.alloc) reaches workers
        env["GNN2GNN_MALLOC"] = os.environ["GNN2GNN_MALLOC"]
    runtime_env = {"env_vars": env}
    if address:
        check_address(address)
        ray.init(address=address, runtime_env=runtime_env, log_to_driver=False)
        return False
    ray.init(
        num_cpus=os.cpu_count(),
        include_dashboard=False,
        _node_ip_address="127.0.0.1",
        runtime_env=runtime_env,
        log_to_driver=False,
        configure_logging=True,
        logging_level="WARNING",
    )
    return True


@dataclass
class Progress:
    """Done/running/failed counts, best metric so far and an ETA, one line per event."""

    name: str
    total: int
    metric: str | None = None  # the experiment's progress metric (None: no best shown)
    log: Callable[[str], None] = print
    done: int = 0
    failed: int = 0
    running: int = 0
    best: float | None = None
    start: float = field(default_factory=time.monotonic)

    def line(self, event: str) -> None:
        elapsed = time.monotonic() - self.start
        finished = self.done + self.failed
        eta = "?" if not finished else f"{elapsed / finished * (self.total - finished):.0f}s"
        best = "-" if self.best is None else f"{self.best:.3f}"
        best = f"best {self.metric} {best}, " if self.metric else ""
        self.log(
            f"[{self.name}] {event}: {self.done}/{self.total} done, {self.running} running, "
            f"{self.failed} failed, {best}{elapsed:.0f}s elapsed, ETA {eta}"
        )


def _tune_callback_class():
    from ray import tune

    class RecordCallback(tune.Callback):
        """Writes each finished or failed trial to Parquet and MLflow, from the driver."""

        def __init__(
            self, store: ResultsStore, tracker: SweepTracker, meta: dict, progress: Progress
        ) -> None:
            self.store, self.tracker, self.meta, self.progress = store, tracker, meta, progress
            self.runs: dict[str, str] = {}
            self.started: dict[str, float] = {}
            self.failed: list[str] = []

        @staticmethod
        def _tid(trial) -> str:
            return trial.config["spec"]["trial_id"]

        @staticmethod
        def _members(trial) -> list[dict]:
            """The sweep trials a Ray trial runs: itself, or a packed group's members."""
            spec = trial.config["spec"]
            return spec.get("members") or [{"trial_id": spec["trial_id"], "trial": spec["trial"]}]

        def on_trial_start(self, iteration, trials, trial, **info):
            members = self._members(trial)
            for m in members:
                tid, cfg = m["trial_id"], m["trial"]
                full = self.meta["full"][tid]
                tags = {k: full[k] for k in self.meta["tag_fields"] if k in full}
                fields = self.meta["run_name_fields"]
                name = "-".join(f"{k}={full[k]}" for k in fields if k in full)
                self.runs[tid] = self.tracker.start(tid, cfg, tags, f"{name}-{tid}")
                self.started.setdefault(tid, time.time())
            self.progress.running += len(members)
            packed = f" (packed: {len(members)} trials)" if len(members) > 1 else ""
            self.progress.line(f"started {self._tid(trial)}{packed}")

        def on_trial_recover(self, iteration, trials, trial, **info):
            self.progress.running -= len(self._members(trial))
            self.progress.line(f"retrying {self._tid(trial)} after an error")

        def on_trial_result(self, iteration, trials, trial, result, **info):
            if result.get("final"):
                return
            members = self._members(trial)
            member = members[int(result.get("member", 0))]
            run = self.runs.get(member["trial_id"])
            if run is not None and "epoch" in result:
                row = {k: v for k, v in result.items() if k != "member"}
                self.tracker.log_metrics(run, row, step=int(result["epoch"]))

        def _row(self, trial, member: dict, status: str, extra: dict) -> dict:
            tid = member["trial_id"]
            return {
                "trial_id": tid,
                "sweep": self.meta["sweep"],
                "status": status,
                **self.meta["row"],
                **member["trial"],
                **self.meta["full"][tid],
                "attempts": int(getattr(trial, "num_failures", 0)) + 1,
                "started_at": self.started.get(tid),
                "finished_at": time.time(),
                **extra,
            }

        def on_trial_complete(self, iteration, trials, trial, **info):
            # The trial's files come through Tune's storage (the results location: a local
            # or shared folder, or object storage), never from another node's disk. A packed
            # group's members each have their own subfolder.
            with trial.checkpoint.as_directory() as local:
                packed = "members" in trial.config["spec"]
                for member in self._members(trial):
                    where = Path(local) / member["trial_id"] if packed else Path(local)
                    self._complete(trial, member, where)

        def _complete(self, trial, member: dict, folder: Path) -> None:
            tid = member["trial_id"]
            result = json.loads((folder / "result.json").read_text())
            metrics = result["metrics"]
            row = self._row(
                trial,
                member,
                "ok",
                {**result.get("full_config", {}), **result["info"], **metrics, "error": None},
            )
            tables = {p.stem: p for p in sorted(folder.glob("*.parquet"))}
            self.store.record(row, tables)
            steps = pq.read_metadata(tables["epochs"]).num_rows
            run = self.runs[tid]
            self.tracker.log_metrics(run, {f"final_{k}": v for k, v in metrics.items()}, step=steps)
            self.tracker.finish(
                run,
                "FINISHED",
                folder,
                {k: result["info"].get(k, "") for k in self.meta["info_tags"]},
            )
            self.progress.running -= 1
            self.progress.done += 1
            value = metrics.get(self.progress.metric) if self.progress.metric else None
            if value is not None and value == value:
                self.progress.best = max(value, self.progress.best or value)
            self.progress.line(f"finished {tid}")

        def on_trial_error(self, iteration, trials, trial, **info):
            error = ""
            err_file = getattr(trial, "error_file", None)
            if err_file and Path(err_file).exists():
                error = Path(err_file).read_text()[-4000:]
            error = error or str(getattr(trial, "error_msg", "") or "trial failed")
            for member in self._members(trial):
                tid = member["trial_id"]
                self.store.record(self._row(trial, member, "failed", {"error": error}))
                run = self.runs.get(tid)
                if run is not None:
                    self.tracker.finish(run, "FAILED", None, {"error": error.strip()[-1000:]})
                self.failed.append(tid)
                self.progress.running -= 1
                self.progress.failed += 1
                self.progress.line(f"FAILED {tid}")

    return RecordCallback


@dataclass
class SweepSummary:
    folder: Location
    total: int
    skipped: int
    ran: int
    failed: list[str]
    wall_seconds: float
    tracking_uri: str


def run_sweep(
    spec: SweepSpec,
    *,
    experiment: Experiment,
    profile: str,
    results: str | Path | Location,
    overrides: dict | None = None,
    address: str | None = None,
    resume: bool = False,
    max_concurrent: int | None = None,
    data_dir: str | None = None,
    tracking_uri: str | None = None,
    pack: int | None = None,
    log: Callable[[str], None] = print,
) -> SweepSummary:
    """Run (or resume) every trial of ``spec`` at ``profile``; see the module docstring.

    ``results`` is a local folder or a URI (``s3://``, ``gs://``): the sweep's Parquet
    dataset and Tune's storage (checkpoints, through which trial outputs reach the driver)
    go there. ``data_dir`` (a path every node has, or a URI each node copies once; see
    :func:`pipeline.paths.stage_data`) is handed to every trial that does not set its own;
    it is not part of the trial id. ``overrides``: fields set for every trial (the
    experiment's :attr:`~Experiment.sweep_overrides`, e.g. ``--benchmark``). ``tracking_uri``: see
    :func:`pipeline.store.tracking.tracking_uri`.
    ``pack`` (default: the file's ``pack``): up to that many pending trials the experiment
    can train together (:meth:`Experiment.pack_groups`) run as one Ray trial; each member
    still gets its own Parquet row and MLflow run, and a resumed sweep re-runs exactly the
    members that have not finished.
    """
    from ray import tune

    t0 = time.monotonic()
    folder = Location.of(results) / spec.name
    if spec.trainable is None:  # a spec built in code, not read from a file
        spec = spec.model_copy(update={"trainable": default_experiment()})
    if spec.trainable in experiment.aliases:  # an older name: the same experiment
        spec = spec.model_copy(update={"trainable": experiment.name})
    if experiment.name != spec.trainable:
        raise SweepError(f"sweep {spec.name} runs {spec.trainable}, not {experiment.name}")
    trials = expand(spec, profile, overrides, source=spec.name, override=experiment.override)
    # each trial's config validated once, here; the typed Config travels to the callback
    # and the worker after that
    typed = {trial_id(c): experiment.make_config(c, f"{spec.name}: trial {c}") for c in trials}
    store = ResultsStore(folder)
    finished = store.finished_ids()
    if finished and not resume:
        raise SweepError(
            f"{folder} already holds {len(finished)} finished trials of this sweep: pass "
            "--resume to continue it, or choose another --results folder"
        )
    pending = [(trial_id(c), c) for c in trials if trial_id(c) not in finished]
    tracker = SweepTracker(folder, spec.name, tracking_uri)
    if not folder.is_local and tracker.uri.startswith("sqlite:///"):
        log(
            f"[{spec.name}] MLflow store on this machine only ({tracker.uri}); pass "
            "--tracking-uri to keep runs on a tracking server"
        )
    closed = tracker.close_orphans({tid for tid, _ in pending}, finished)
    log(
        f"[{spec.name}] {len(trials)} trials at profile {profile}: {len(finished)} finished "
        f"already, {len(pending)} to run"
        + (f"; closed {closed} orphaned MLflow runs" if closed else "")
    )
    summary = SweepSummary(folder, len(trials), len(trials) - len(pending), 0, [], 0.0, tracker.uri)
    if not pending:
        return summary
    import ray

    started = init_ray(address)
    try:
        has_gpu = ray.cluster_resources().get("GPU", 0) > 0
        resources = {
            "cpu": spec.resources.cpu,
            "gpu": spec.resources.gpu if has_gpu else 0,
            **spec.resources.custom,
        }
        pack = spec.pack if pack is None else pack
        if pack < 1:
            raise SweepError(f"--pack must be at least 1, got {pack}")
        common = {
            "experiment": experiment.name,
            "cpus": spec.resources.cpu,
            "data_dir": data_dir,
            "cwd": os.getcwd(),
        }
        specs = []
        # what the experiment's functions are handed: its Config, or the older dict
        given = {tid: typed[tid] if experiment.takes_config else c for tid, c in pending}
        for group in experiment.pack_groups(list(given.values()), pack):
            members = [
                {"trial_id": pending[i][0], "trial": pending[i][1], "config": given[pending[i][0]]}
                for i in group
            ]
            if len(members) == 1:
                specs.append({**common, **members[0]})
            else:  # one Ray trial; its id names the group by its first member
                gid = f"pack{len(members)}-{members[0]['trial_id']}"
                specs.append({**common, "trial_id": gid, "trial": {}, "members": members})
        if len(specs) < len(pending):
            log(f"[{spec.name}] {len(pending)} trials packed into {len(specs)} Ray trials")
        meta = {
            "sweep": spec.name,
            "row": {
                "profile": profile,
                "trainable": spec.trainable,
                "table": spec.table,
                "versions": json.dumps(versions()),
            },
            # every column of a trial's row, typed (``1e-3`` in a YAML file is a string
            # until validated), so every row has the same column types, failed rows too
            "full": {tid: cfg.model_dump(by_alias=True) for tid, cfg in typed.items()},
            "tag_fields": experiment.tag_fields,
            "run_name_fields": experiment.run_name_fields,
            "info_tags": experiment.info_tags,
        }
        progress = Progress(spec.name, len(pending), metric=experiment.progress_metric, log=log)
        callback = _tune_callback_class()(store, tracker, meta, progress)
        ray_storage = folder / "ray"
        tuner = tune.Tuner(
            tune.with_resources(tune_entry, resources),
            param_space={"spec": tune.grid_search(specs)},
            tune_config=tune.TuneConfig(
                max_concurrent_trials=max_concurrent or 0, reuse_actors=False
            ),
            run_config=tune.RunConfig(
                name=f"{spec.name}-{time.strftime('%Y%m%d-%H%M%S')}",
                storage_path=ray_storage.path,
                storage_filesystem=None if ray_storage.is_local else ray_storage.fs,
                failure_config=tune.FailureConfig(max_failures=spec.retries),
                checkpoint_config=tune.CheckpointConfig(num_to_keep=1),
                callbacks=[callback],
                verbose=0,
            ),
        )
        tuner.fit()
        summary.failed = list(callback.failed)  # recorded failures, in the order they came
        summary.ran = len(pending)
    finally:
        if started:
            ray.shutdown()
    summary.wall_seconds = time.monotonic() - t0
    log(
        f"[{spec.name}] done in {summary.wall_seconds:.0f}s: {summary.ran - len(summary.failed)} "
        f"ok, {len(summary.failed)} failed; results in {folder}; MLflow: {tracker.uri}"
    )
    return summary
