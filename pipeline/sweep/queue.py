"""One Ray Tune queue for the trials of one or more sweeps (a plain sweep, or a study's
every sweep), with prerequisite tasks that gate the sweeps that need them.

A :class:`Job` is one sweep in one results folder. The queue expands every job into trial
configs; a config that several jobs hold (equal trial ids: ids are content hashes) trains
once and is recorded in each job's Parquet folder and MLflow experiment, its row naming
every job it served (``trained_for``). A trial finished in some of its jobs but not all (a
driver killed between the records) is copied from a finished record, never trained
again. Pending trials are packed per experiment (a job's ``pack``), the longest Ray
trials (most members) first, and handed to Tune by :class:`QueueSearcher`, which holds a
job's trials back until the task it ``needs`` (a :class:`TaskRun`: Ray tasks in the same
session, e.g. a pretraining) has finished.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import pyarrow.parquet as pq

from pipeline.experiment import Experiment
from pipeline.store.lease import DriverLease
from pipeline.store.location import Location
from pipeline.store.results import TRIALS, ResultsStore
from pipeline.store.tracking import SweepTracker
from pipeline.sweep.session import SweepError, init_ray
from pipeline.sweep.spec import SweepSpec, expand, trial_id
from pipeline.sweep.worker import tune_entry


class TaskRun(Protocol):
    """A prerequisite running as Ray tasks in the queue's session."""

    def poll(self) -> bool:
        """Advance without blocking (collect finished tasks, log them); True when done."""

    @property
    def cpus_busy(self) -> float:
        """CPUs its running tasks hold now."""

    @property
    def busy_seconds(self) -> float:
        """CPU-seconds its finished tasks took."""

    @property
    def failed(self) -> list[str]:
        """What failed (empty when it all worked); read once ``poll`` says done."""


@dataclass
class Job:
    """One sweep in one results folder."""

    spec: SweepSpec
    experiment: Experiment
    profile: str
    folder: Location
    overrides: dict = field(default_factory=dict)  # sweep-wide (the experiment's override)
    pack: int = 1
    key: str = ""  # the name progress lines and ``trained_for`` use (default: the sweep's)
    group: str = ""  # what the progress display counts it under (a table; default: key)
    needs: str | None = None  # a task's name: these trials start once it has finished

    def __post_init__(self) -> None:
        self.key = self.key or self.spec.name
        self.group = self.group or self.key


@dataclass
class QueueSummary:
    trials: int  # trial records the jobs hold when done (a shared trial counts per job)
    skipped: int  # records finished before this run
    trainings: int  # trials trained by this run (a shared trial once)
    shared: int  # records this run filled without training: shared or copied
    copied: int  # of those, copied from a record an earlier run made
    failed: list[tuple[str, str]]  # (job key, trial id) of every failed record
    wall_seconds: float
    busy_cpu_seconds: float  # CPU-seconds the queue's trials and tasks held
    cpus: float  # the CPUs Ray had
    failed_tasks: list[str] = field(default_factory=list)
    blocked: list[str] = field(default_factory=list)  # why a task's trials did not run


@dataclass
class _Unit:
    """One trial config and the jobs that hold it."""

    config: dict
    typed: Any
    jobs: list[int]


@dataclass
class Progress:
    """Done/running/failed counts, best metric so far and an ETA, one line per event.
    ``groups``: group -> its trial count, shown per group (a study's tables)."""

    name: str
    total: int
    metric: str | None = None  # the experiment's progress metric (None: no best shown)
    log: Callable[[str], None] = print
    groups: dict[str, int] | None = None
    as_json: bool = False
    cpus: float = 0.0  # the CPUs Ray had (0: not shown)
    gpus: float = 0.0  # the GPUs Ray had (0: not shown)
    done: int = 0
    failed: int = 0
    running: int = 0
    bests: dict[str, float] = field(default_factory=dict)  # metric -> best (several experiments)
    start: float = field(default_factory=time.monotonic)
    busy_seconds: float = 0.0  # CPU-seconds of finished trials
    cpus_busy: float = 0.0  # CPUs running trials and tasks hold now
    gpus_busy: float = 0.0
    tasks: dict = field(default_factory=dict)  # running tasks (TaskRun), their CPUs count

    def busy(self) -> float:
        """CPUs in use: running trials' and tasks' (at most the CPUs Ray has)."""
        busy = self.cpus_busy + sum(t.cpus_busy for t in self.tasks.values())
        return min(busy, self.cpus) if self.cpus else busy

    per_group: dict[str, list[int]] = field(default_factory=dict)  # done, running, failed

    def count(self, group: str, column: int, by: int = 1) -> None:
        self.per_group.setdefault(group, [0, 0, 0])[column] += by

    def eta(self) -> float | None:
        """Seconds left: trials left x measured CPU-seconds a trial / CPUs in use."""
        finished = self.done + self.failed
        if not finished:
            return None
        left = self.total - finished
        if self.busy_seconds and self.cpus:
            return self.busy_seconds / finished * left / self.cpus
        return (time.monotonic() - self.start) / finished * left

    @property
    def best(self) -> float | None:
        """The best value of :attr:`metric` so far (None: none yet, or no metric)."""
        return self.bests.get(self.metric) if self.metric else None

    def line(self, event: str) -> None:
        elapsed = time.monotonic() - self.start
        eta = self.eta()
        if self.as_json:
            record = {
                "sweep": self.name,
                "event": event,
                "done": self.done,
                "running": self.running,
                "failed": self.failed,
                "total": self.total,
                "best": self.best,  # the metric's (None: none yet, or no metric)
                "metric": self.metric,
                "bests": self.bests,
                "elapsed_s": round(elapsed, 1),
                "eta_s": None if eta is None else round(eta),
                "cpus_busy": self.busy(),
                "cpus": self.cpus,
                "gpus_busy": self.gpus_busy,
                "gpus": self.gpus,
            }
            if self.groups:
                record["groups"] = {
                    g: dict(
                        zip(
                            ("done", "running", "failed"),
                            self.per_group.get(g, [0] * 3),
                            strict=True,
                        )
                    )
                    | {"total": n}
                    for g, n in self.groups.items()
                }
            self.log(json.dumps(record))
            return
        if self.metric:
            best = "-" if self.best is None else f"{self.best:.3f}"
            best = f"best {self.metric} {best}, "
        else:
            best = ", ".join(f"{m} {v:.3f}" for m, v in self.bests.items())
            best = f"best {best}, " if best else ""
        groups = ""
        if self.groups:
            parts = []
            for g, n in self.groups.items():
                d, r, f = self.per_group.get(g, [0, 0, 0])
                parts.append(f"{g} {d}/{n}" + (f"+{r}" if r else "") + (f"!{f}" if f else ""))
            groups = " [" + " ".join(parts) + "]"
        cpus = f"{self.busy():g}/{self.cpus:g} CPUs busy, " if self.cpus else ""
        if self.gpus:
            cpus += f"{self.gpus_busy:g}/{self.gpus:g} GPUs busy, "
        self.log(
            f"[{self.name}] {event}: {self.done}/{self.total} done, {self.running} running, "
            f"{self.failed} failed, {best}{cpus}{elapsed:.0f}s elapsed, "
            f"ETA {'?' if eta is None else f'{eta:.0f}s'}{groups}"
        )


def _ray_resources(spec: SweepSpec, has_gpu: bool) -> dict:
    return {
        "cpu": spec.resources.cpu,
        "gpu": spec.resources.gpu if has_gpu else 0,
        **spec.resources.custom,
    }


class _Targets:
    """The jobs' stores, trackers and row fields; what every record needs."""

    def __init__(
        self, jobs: list[Job], stores: list[ResultsStore], tracking_uri: str | None, versions: str
    ) -> None:
        self.jobs, self.stores = jobs, stores
        self.trackers = [SweepTracker(j.folder, j.spec.name, tracking_uri) for j in jobs]
        self.rows = [
            {
                "profile": j.profile,
                "trainable": j.spec.trainable,
                "table": j.spec.table,
                "versions": versions,
            }
            for j in jobs
        ]


def _callback_class():
    from ray import tune

    class RecordCallback(tune.Callback):
        """Writes each finished or failed trial to every job's Parquet and MLflow that holds
        it, from the driver."""

        def __init__(self, targets: _Targets, units: dict, progress: Progress, study: bool):
            self.t, self.units, self.progress, self.study = targets, units, progress, study
            self.runs: dict[tuple[int, str], str] = {}
            self.started: dict[str, float] = {}
            self.failed: list[str] = []
            self.trainings = 0
            self.shared = 0
            self.poll: Callable[[], None] | None = None  # the tasks', at most once a second
            self._polled = 0.0

        def on_step_end(self, iteration, trials, **info):
            if self.poll is not None and time.monotonic() - self._polled >= 1.0:
                self._polled = time.monotonic()
                self.poll()  # a task's progress lines, and its gated trials released

        @staticmethod
        def _members(trial) -> list[dict]:
            spec = trial.config["spec"]
            return spec.get("members") or [{"trial_id": spec["trial_id"], "trial": spec["trial"]}]

        def _jobs(self, tid: str) -> list[int]:
            return self.units[tid].jobs

        def _cpus(self, trial) -> float:
            return float(trial.config["spec"]["resources"]["cpu"])

        def _gpus(self, trial) -> float:
            return float(trial.config["spec"]["resources"].get("gpu", 0))

        def on_trial_start(self, iteration, trials, trial, **info):
            members = self._members(trial)
            for m in members:
                tid = m["trial_id"]
                self.started.setdefault(tid, time.time())
                for j in self._jobs(tid):
                    job = self.t.jobs[j]
                    full = self.units[tid].typed.model_dump(by_alias=True)
                    tags = {k: full[k] for k in job.experiment.tag_fields if k in full}
                    fields = job.experiment.run_name_fields
                    name = "-".join(f"{k}={full[k]}" for k in fields if k in full)
                    self.runs[j, tid] = self.t.trackers[j].start(
                        tid, m["trial"], tags, f"{name}-{tid}"
                    )
                    self.progress.count(job.group, 1)
            self.progress.running += len(members)
            self.progress.cpus_busy += self._cpus(trial)
            self.progress.gpus_busy += self._gpus(trial)
            packed = f" (packed: {len(members)} trials)" if len(members) > 1 else ""
            self.progress.line(f"started {trial.config['spec']['trial_id']}{packed}")

        def _stopped(self, trial, members: list[dict]) -> None:
            self.progress.cpus_busy -= self._cpus(trial)
            self.progress.gpus_busy -= self._gpus(trial)
            for m in members:
                for j in self._jobs(m["trial_id"]):
                    self.progress.count(self.t.jobs[j].group, 1, -1)

        def on_trial_recover(self, iteration, trials, trial, **info):
            members = self._members(trial)
            self._stopped(trial, members)
            self.progress.running -= len(members)
            self.progress.line(f"retrying {trial.config['spec']['trial_id']} after an error")

        def on_trial_result(self, iteration, trials, trial, result, **info):
            if result.get("final") or "epoch" not in result:
                return
            member = self._members(trial)[int(result.get("member", 0))]
            row = {k: v for k, v in result.items() if k != "member"}
            for j in self._jobs(member["trial_id"]):
                run = self.runs.get((j, member["trial_id"]))
                if run is not None:
                    self.t.trackers[j].log_metrics(run, row, step=int(result["epoch"]))

        def _row(self, j: int, trial, member: dict, status: str, extra: dict) -> dict:
            tid = member["trial_id"]
            row = {
                "trial_id": tid,
                "sweep": self.t.jobs[j].spec.name,
                "status": status,
                **self.t.rows[j],
                **member["trial"],
                **self.units[tid].typed.model_dump(by_alias=True),
                "attempts": int(getattr(trial, "num_failures", 0)) + 1,
                "started_at": self.started.get(tid),
                "finished_at": time.time(),
                **extra,
            }
            if self.study:
                row["trained_for"] = json.dumps([self.t.jobs[k].key for k in self._jobs(tid)])
            return row

        def on_trial_complete(self, iteration, trials, trial, **info):
            # The trial's files come through Tune's storage (the results location: a local
            # or shared folder, or object storage), never from another node's disk. A packed
            # group's members each have their own subfolder.
            members = self._members(trial)
            self._stopped(trial, members)
            seconds = time.time() - min(
                self.started.get(m["trial_id"], time.time()) for m in members
            )
            self.progress.busy_seconds += seconds * self._cpus(trial)
            with trial.checkpoint.as_directory() as local:
                packed = "members" in trial.config["spec"]
                for member in members:
                    where = Path(local) / member["trial_id"] if packed else Path(local)
                    self._complete(trial, member, where)

        def _complete(self, trial, member: dict, folder: Path) -> None:
            tid = member["trial_id"]
            result = json.loads((folder / "result.json").read_text())
            metrics = result["metrics"]
            extra = {**result.get("full_config", {}), **result["info"], **metrics, "error": None}
            tables = {p.stem: p for p in sorted(folder.glob("*.parquet"))}
            steps = pq.read_metadata(tables["epochs"]).num_rows
            jobs = self._jobs(tid)
            for j in jobs:
                job = self.t.jobs[j]
                self.t.stores[j].record(self._row(j, trial, member, "ok", extra), tables)
                run = self.runs[j, tid]
                final = {f"final_{k}": v for k, v in metrics.items()}
                self.t.trackers[j].log_metrics(run, final, step=steps)
                tags = {k: result["info"].get(k, "") for k in job.experiment.info_tags}
                self.t.trackers[j].finish(run, "FINISHED", folder, tags)
                self.progress.count(job.group, 0)
            self.trainings += 1
            self.shared += len(jobs) - 1
            self.progress.running -= 1
            self.progress.done += 1
            metric = self.t.jobs[jobs[0]].experiment.progress_metric
            value = metrics.get(metric) if metric else None
            if value is not None and value == value:
                self.progress.bests[metric] = max(value, self.progress.bests.get(metric, value))
            self.progress.line(
                f"finished {tid}" + (f" (for {len(jobs)} sweeps)" if len(jobs) > 1 else "")
            )

        def on_trial_error(self, iteration, trials, trial, **info):
            error = ""
            err_file = getattr(trial, "error_file", None)
            if err_file and Path(err_file).exists():
                error = Path(err_file).read_text()[-4000:]
            error = error or str(getattr(trial, "error_msg", "") or "trial failed")
            members = self._members(trial)
            self._stopped(trial, members)
            for member in members:
                tid = member["trial_id"]
                for j in self._jobs(tid):
                    self.t.stores[j].record(self._row(j, trial, member, "failed", {"error": error}))
                    run = self.runs.get((j, tid))
                    if run is not None:
                        msg = {"error": error.strip()[-1000:]}
                        self.t.trackers[j].finish(run, "FAILED", None, msg)
                    self.failed.append((self.t.jobs[j].key, tid))
                    self.progress.count(self.t.jobs[j].group, 2)
                self.progress.running -= 1
                self.progress.failed += 1
                self.progress.line(f"FAILED {tid}")

    return RecordCallback


class _Gate:
    """The queue's Ray trials not yet handed to Tune: ``ready`` in order, and per task the
    trials that wait for it. :meth:`poll` advances the running tasks; a finished task's
    trials go to the front of ``ready``, a failed one's to ``blocked`` (they do not run)."""

    def __init__(self, ready: list[dict], gated: dict[str, list[dict]], tasks: dict, log):
        self.ready = deque(ready)
        self.gated = {k: list(v) for k, v in gated.items()}
        self.tasks = dict(tasks)  # name -> TaskRun, until it finishes
        self.blocked: dict[str, tuple[str, list[dict]]] = {}  # name -> (why, its trials)
        self.log = log

    def poll(self) -> None:
        for name, task in list(self.tasks.items()):
            try:
                if not task.poll():
                    continue
                failed = list(task.failed)
            except Exception as exc:  # noqa: BLE001 -- the task fails, the queue goes on
                failed = [f"{type(exc).__name__}: {exc}"]
            del self.tasks[name]
            trials = self.gated.pop(name, [])
            if failed:
                why = f"task {name} failed ({len(failed)}: {', '.join(failed[:3])})"
                self.blocked[name] = (why, trials)
                self.log(f"[{name}] FAILED: {why}; its {len(trials)} Ray trials do not run")
            else:
                self.ready.extendleft(reversed(trials))

    def waiting(self) -> int:
        return len(self.ready) + sum(len(v) for v in self.gated.values())


def _searcher_class():
    from ray.tune.search import Searcher

    class QueueSearcher(Searcher):
        """Hands one Tune run the gate's ready Ray trials in order (a task's trials join
        when it finishes); done when none is ready, so that Tune's run ends and frees the
        worker actors it keeps for reuse (a task waiting for CPUs they hold cannot hang)."""

        def __init__(self, gate: _Gate):
            super().__init__()
            self.gate = gate

        def set_search_properties(self, metric, mode, config, **spec) -> bool:
            return True

        def suggest(self, trial_id: str):
            self.gate.poll()
            if self.gate.ready:
                return {"spec": self.gate.ready.popleft()}
            return Searcher.FINISHED

        def on_trial_complete(self, trial_id, result=None, error=False) -> None:
            pass

        def save(self, checkpoint_path: str) -> None:
            pass  # resuming reads the results folders, not Tune's state

        def restore(self, checkpoint_path: str) -> None:
            pass

    return QueueSearcher


def _copy_record(targets: _Targets, units: dict, src: int, dst: int, tid: str) -> None:
    """A trial finished in job ``src`` recorded in job ``dst`` too, without training: an
    MLflow run (started first, so a kill leaves it RUNNING for the next resume to close),
    the source's tables and row as stored (its versions and types kept; ``sweep`` and
    ``table`` are the destination's), then the run's metrics (each with its history), tags
    and artifacts."""
    s_store, d_store = targets.stores[src], targets.stores[dst]
    s_track, d_track = targets.trackers[src], targets.trackers[dst]
    job = targets.jobs[dst]
    full = units[tid].typed.model_dump(by_alias=True)
    tags = {k: full[k] for k in job.experiment.tag_fields if k in full}
    run = d_track.start(tid, units[tid].config, {**tags, "copied_from": targets.jobs[src].key}, tid)
    part = s_store.folder / TRIALS / f"{tid}.parquet"
    row = pq.read_table(part.path, filesystem=part.fs).to_pylist()[0]
    row.update(sweep=job.spec.name, table=job.spec.table)
    tables = {}
    for sub in s_store.folder.dirs():
        table = sub / f"{tid}.parquet"
        if sub.name != TRIALS and table.is_file():
            tables[sub.name] = pq.read_table(table.path, filesystem=table.fs)
    d_store.record(row, tables)
    s_run = s_track.run_id(tid)
    with tempfile.TemporaryDirectory() as tmp:
        folder = None
        if s_run is not None:
            d_track.copy_metrics(run, s_track, s_run)
            try:
                folder = Path(s_track.client.download_artifacts(s_run, "", tmp))
            except Exception:  # noqa: BLE001 -- the record stands without its artifacts
                folder = None
        info = {k: str(row.get(k, "")) for k in job.experiment.info_tags}
        d_track.finish(run, "FINISHED", folder, info)


def _preflight(jobs: list[Job], units: dict[str, _Unit], train: list[str], data_dir) -> None:
    """Stop before any trial starts when every trial would fail on the same thing (its
    data: :attr:`Experiment.preflight`); trials of a job that needs a task are checked by
    their trials, the task making what they read."""
    for tid in train:
        unit = units[tid]
        if any(jobs[j].needs for j in unit.jobs):
            continue
        exp = jobs[unit.jobs[0]].experiment
        if exp.preflight is not None:
            exp.preflight(unit.typed, data_dir)


def run_queue(
    jobs: list[Job],
    *,
    name: str,
    storage: Location,
    tasks: Mapping[str, Callable[[], TaskRun]] | None = None,
    address: str | None = None,
    resume: bool = False,
    max_concurrent: int | None = None,
    data_dir: str | None = None,
    tracking_uri: str | None = None,
    log: Callable[[str], None] = print,
    progress_json: bool = False,
    versions: str = "{}",
    study: bool = False,
    forward_credentials: bool = False,
) -> QueueSummary:
    """Run (or resume) every trial of ``jobs`` as one Tune run (see the module docstring).

    ``storage``: Tune's storage (checkpoints, through which trial outputs reach the
    driver). ``tasks``: name -> a function that starts the task (Ray tasks) and returns its
    :class:`TaskRun`, called once Ray is up; the jobs that ``need`` it wait for it. The
    other arguments are :func:`pipeline.sweep.run.run_sweep`'s. ``study``: rows name the
    jobs each training served (``trained_for``)."""
    t0 = time.monotonic()
    tasks = dict(tasks or {})
    for job in jobs:
        if job.pack < 1:
            raise SweepError(f"--pack must be at least 1, got {job.pack}")
        if job.needs is not None and job.needs not in tasks:
            raise SweepError(f"{job.key}: needs {job.needs!r}, which no task of the queue is")
    owners: dict[str, str] = {}
    for job in jobs:  # one writer per folder (its MLflow runs and rows are per folder)
        if job.folder.uri in owners:
            raise SweepError(
                f"{job.key} and {owners[job.folder.uri]} both write to {job.folder}: give each "
                "sweep run its own results folder"
            )
        owners[job.folder.uri] = job.key
    from ray import tune

    # one driver per folder across processes and machines (pipeline.store.lease)
    with DriverLease([job.folder for job in jobs]):
        units: dict[str, _Unit] = {}
        for j, job in enumerate(jobs):
            exp = job.experiment
            configs = expand(job.spec, job.profile, job.overrides, job.key, override=exp.override)
            for cfg in configs:
                tid = trial_id(cfg)
                if tid in units:
                    units[tid].jobs.append(j)
                else:
                    units[tid] = _Unit(cfg, exp.make_config(cfg, f"{job.key}: trial {cfg}"), [j])
        stores = [ResultsStore(job.folder) for job in jobs]
        finished = [store.finished_ids() for store in stores]
        if not resume:
            for j, job in enumerate(jobs):
                if finished[j]:
                    raise SweepError(
                        f"{job.folder} already holds {len(finished[j])} finished trials of this "
                        "sweep: pass --resume to continue it, or choose another --results folder"
                    )
        train, copies = [], []
        for tid, unit in units.items():
            done = [j for j in unit.jobs if tid in finished[j]]
            if not done:
                train.append(tid)
            copies += [(done[0], j, tid) for j in unit.jobs if j not in done] if done else []
        _preflight(jobs, units, train, data_dir)  # before anything is written or started
        targets = _Targets(jobs, stores, tracking_uri, versions)
        train_in = [{tid for tid in train if j in units[tid].jobs} for j in range(len(jobs))]
        for j, job in enumerate(jobs):
            total = sum(1 for u in units.values() if j in u.jobs)
            tracker = targets.trackers[j]
            if not job.folder.is_local and tracker.uri.startswith("sqlite:///"):
                log(
                    f"[{job.key}] MLflow store on this machine only ({tracker.uri}); pass "
                    "--tracking-uri to keep runs on a tracking server"
                )
            for tid, exc in sorted(stores[j].damaged.items()):
                if tid in units:
                    log(f"[{job.key}] warning: {exc.file}: {exc.why}; its trial {tid} runs again")
                else:
                    log(f"[{job.key}] warning: {exc.file}: {exc.why}; no trial of this sweep")
            closed = tracker.close_orphans(train_in[j], finished[j])
            log(
                f"[{job.key}] {total} trials at profile {job.profile}: {len(finished[j])} finished "
                f"already, {len(train_in[j])} to run"
                + (f"; closed {closed} orphaned MLflow runs" if closed else "")
            )
        for src, dst, tid in copies:
            _copy_record(targets, units, src, dst, tid)
        if copies:
            log(f"[{name}] {len(copies)} finished trials copied to the other sweeps that hold them")
        records = sum(len(u.jobs) for u in units.values())
        skipped = sum(len(f & set(units)) for f in finished)
        summary = QueueSummary(records, skipped, 0, len(copies), len(copies), [], 0.0, 0.0, 0.0)
        needed = set(tasks)  # every task given starts (one with nothing left to do ends at once)
        if not train and not needed:
            summary.wall_seconds = time.monotonic() - t0
            return summary
        import ray

        started = init_ray(address, forward_credentials)
        try:
            has_gpu = ray.cluster_resources().get("GPU", 0) > 0
            cpus = float(ray.cluster_resources().get("CPU", 0))
            gpus = float(ray.cluster_resources().get("GPU", 0))
            running = {name_: start() for name_, start in tasks.items() if name_ in needed}
            given = {
                tid: units[tid].typed
                if jobs[units[tid].jobs[0]].experiment.takes_config
                else units[tid].config
                for tid in train
            }
            ready, gated = [], {}
            # one Ray trial per pack group, per (experiment, pack, task any of its jobs needs)
            by_kind: dict[tuple, list[str]] = {}
            for tid in train:
                first = jobs[units[tid].jobs[0]]
                pack = max(jobs[j].pack for j in units[tid].jobs)
                needs = next((jobs[j].needs for j in units[tid].jobs if jobs[j].needs), None)
                by_kind.setdefault((first.experiment.name, pack, needs), []).append(tid)
            groups = []
            for (_, pack, needs), tids in by_kind.items():
                first = jobs[units[tids[0]].jobs[0]]
                for group in first.experiment.pack_groups([given[t] for t in tids], pack):
                    groups.append((needs, first, [tids[i] for i in group]))
            groups.sort(key=lambda g: -len(g[2]))  # the longest Ray trials first
            for needs, first, tids in groups:
                common = {
                    "experiment": first.experiment.name,
                    "cpus": first.spec.resources.cpu,
                    "resources": _ray_resources(first.spec, has_gpu),
                    "data_dir": data_dir,
                    "cwd": os.getcwd(),
                }
                members = [
                    {"trial_id": t, "trial": units[t].config, "config": given[t]} for t in tids
                ]
                if len(members) == 1:
                    spec = {**common, **members[0]}
                else:  # one Ray trial; its id names the group by its first member
                    spec = {**common, "trial_id": f"pack{len(members)}-{tids[0]}", "trial": {}}
                    spec["members"] = members
                (gated.setdefault(needs, []) if needs else ready).append(spec)
            n_ray = len(ready) + sum(len(v) for v in gated.values())  # Ray trials
            if n_ray < len(train):
                log(f"[{name}] {len(train)} trials packed into {n_ray} Ray trials")
            groups_total: dict[str, int] = {}
            for j, job in enumerate(jobs):
                groups_total[job.group] = groups_total.get(job.group, 0) + len(train_in[j])
            metric = (
                jobs[0].experiment.progress_metric
                if len({j.experiment.name for j in jobs}) == 1
                else None
            )
            progress = Progress(
                name,
                len(train),
                metric=metric,
                log=log,
                groups=groups_total if study else None,
                as_json=progress_json,
                cpus=cpus if study else 0.0,
                gpus=gpus if study else 0.0,
            )
            callback = _callback_class()(targets, units, progress, study)
            gate = _Gate(ready, gated, running, log)
            progress.tasks = gate.tasks  # the live ones: the gate drops a finished task
            callback.poll = gate.poll  # between Tune's asks for a trial too
            os.environ.setdefault("TUNE_MAX_PENDING_TRIALS_PG", str(max(16, int(cpus * 1.1))))

            def resources(config: dict):
                from ray.tune.execution.placement_groups import resource_dict_to_pg_factory

                return resource_dict_to_pg_factory(dict(config["spec"]["resources"]))

            # One Tune run while trials are ready; when none is (every other trial handed out,
            # a task still running), the run ends, the task is waited for, and its trials are
            # the next run's: the same Ray session, the same callback.
            runs = 0
            stamp = time.strftime("%Y%m%d-%H%M%S")
            while True:
                gate.poll()
                if gate.ready:
                    tuner = tune.Tuner(
                        tune.with_resources(tune_entry, resources),
                        tune_config=tune.TuneConfig(
                            search_alg=_searcher_class()(gate),
                            num_samples=gate.waiting(),
                            max_concurrent_trials=max_concurrent or None,
                            reuse_actors=True,  # a worker process keeps its imports and tables
                        ),
                        run_config=tune.RunConfig(
                            name=f"{name}-{stamp}" + (f"-{runs}" if runs else ""),
                            storage_path=storage.path,
                            storage_filesystem=None if storage.is_local else storage.fs,
                            failure_config=tune.FailureConfig(
                                max_failures=max(j.spec.retries for j in jobs)
                            ),
                            # each trial reports one checkpoint (its files); num_to_keep would
                            # also force Tune to write the whole experiment's state after every
                            # trial's checkpoint: quadratic in the trials (benchmarks/load_sweep.py)
                            checkpoint_config=tune.CheckpointConfig(num_to_keep=None),
                            callbacks=[callback],
                            verbose=0,
                        ),
                    )
                    tuner.fit()
                    runs += 1
                    continue
                if not gate.tasks:
                    break
                time.sleep(0.5)  # nothing to run until a task finishes
            for why, specs in gate.blocked.values():
                for spec in specs:
                    for m in spec.get("members") or [spec]:
                        summary.failed += [
                            (jobs[j].key, m["trial_id"]) for j in units[m["trial_id"]].jobs
                        ]
                summary.blocked.append(why)
            summary.failed = list(callback.failed) + summary.failed
            summary.trainings = callback.trainings
            summary.shared += callback.shared
            summary.busy_cpu_seconds = progress.busy_seconds + sum(
                t.busy_seconds for t in running.values()
            )
            summary.failed_tasks = [n for n in running if n in gate.blocked]
            summary.cpus = cpus
        finally:
            if started:
                ray.shutdown()
        summary.wall_seconds = time.monotonic() - t0
        return summary
