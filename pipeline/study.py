"""Study files: every sweep (and prerequisite task) of a set of papers, the settings they
run with per profile, validated like a sweep file; turned into one queue's jobs.

A study file (``sweeps/papers.yaml``)::

    name: papers
    description: every table of both papers
    profiles:                      # per profile, for every entry (fields an entry gives win)
      smoke: {seeds: 1, pack: 8}
      cpu: {seeds: 5, pack: 5, set: {num_generated: 10000}}
    entries:
      - id: "1"                    # what --only names
        title: "Table 1: ..."
        sweep: ablation.yaml       # relative to the study file
        runs:                      # one run per results subfolder: its sweep-wide overrides
          bench_a: {benchmark: bench_a}
          bench_b: {benchmark: bench_b}
      - id: pretrain
        task: my_experiment.pretrain   # an experiment's StudyTask (Experiment.tasks)
        folder: my_paper/pretrain
      - id: my_paper
        sweep: my_sweep.yaml
        folder: my_paper           # one run, in this subfolder (default: the id)
        needs: pretrain            # starts after the task; gets its `provides` field
        settings: {cpu: {seeds: 3}}

Results: ``<results>/<folder>/<sweep name>/`` per run (a sweep's usual folder), a task's
files in ``<results>/<folder>/``, the study's record in ``<results>/study.json``.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import pydantic
import yaml

from pipeline.config import PROFILES, ConfigError, Profile, StrictModel, validate
from pipeline.experiment import experiments, get_experiment, validate_trial_config
from pipeline.store.location import Location
from pipeline.sweep.queue import Job
from pipeline.sweep.spec import SweepSpec, expand, load_sweep


def results_text(results: str) -> str:
    """The results location as trial configs name it (it is part of their ids): a URI
    without a trailing slash; a local folder relative to the working directory when inside
    it (trials run in the driver's folder), else absolute, however it was spelled."""
    text = str(results).rstrip("/") or "/"
    if "://" in text:
        return text
    full = os.path.abspath(text)
    inside = os.path.commonpath([full, os.getcwd()]) == os.getcwd()
    return os.path.relpath(full) if inside else full


class Settings(StrictModel):
    """How an entry runs at a profile (unset: the sweep file's own)."""

    seeds: int | list[int] | None = pydantic.Field(None, description="n (0..n-1) or a list")
    pack: int | None = pydantic.Field(None, ge=1, description="trials packed into one model")
    profile: Profile | None = pydantic.Field(
        None, description="the trials' profile, when not the one the study runs at"
    )
    set: dict[str, Any] = pydantic.Field(
        default_factory=dict, description="trial fields set for every trial (as --set)"
    )
    task: dict[str, Any] = pydantic.Field(
        default_factory=dict, description="a task entry's settings (the task's own fields)"
    )

    @pydantic.field_validator("seeds")
    @classmethod
    def _seeds(cls, v):
        if isinstance(v, int) and v < 1:
            raise ValueError("seeds must be at least 1")
        return v

    def over(self, other: Settings) -> Settings:
        """These settings with the fields ``other`` gives in their place (a ``set`` given
        replaces the whole ``set``)."""
        return Settings(**{**self.model_dump(), **other.model_dump(exclude_unset=True)})


class Entry(StrictModel):
    id: str = pydantic.Field(pattern=r"^[A-Za-z0-9_.-]+$")
    title: str = ""
    sweep: str | None = None
    task: str | None = pydantic.Field(None, pattern=r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$")
    folder: str | None = pydantic.Field(None, pattern=r"^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*$")
    runs: dict[str, dict[str, Any]] = {}
    needs: str | None = None
    settings: dict[Profile, Settings] = {}

    @pydantic.model_validator(mode="after")
    def _kind(self) -> Entry:
        if (self.sweep is None) == (self.task is None):
            raise ValueError("give exactly one of sweep (a sweep file) and task")
        if self.task is not None and (self.runs or self.needs):
            raise ValueError("a task entry takes no runs or needs")
        if self.runs and self.folder:
            raise ValueError("give runs (one folder each) or folder, not both")
        if self.folder and any(part in (".", "..") for part in self.folder.split("/")):
            raise ValueError(f"folder {self.folder!r}: a folder inside the results, no . or ..")
        for folder in self.runs:
            if not folder or "/" in folder or folder.startswith("."):
                raise ValueError(f"runs: {folder!r} is not a folder name")
        return self


class StudySpec(StrictModel):
    """A validated study file."""

    name: str = pydantic.Field(pattern=r"^[A-Za-z0-9_.-]+$")
    description: str = ""
    profiles: dict[Profile, Settings] = {}
    entries: list[Entry] = pydantic.Field(min_length=1)


class Study:
    """A study file read and checked: its entries, their sweeps and tasks."""

    def __init__(self, path: str | Path) -> None:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"{path}: study file not found")
        text = path.read_text()
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: not valid YAML ({exc})") from None
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: expected a mapping of study fields at the top level")
        self.path, self.sha256 = path, hashlib.sha256(text.encode()).hexdigest()[:12]
        self.spec = validate(StudySpec, data, str(path))
        ids = [e.id for e in self.spec.entries]
        dup = sorted({i for i in ids if ids.count(i) > 1})
        if dup:
            raise ConfigError(f"{path}: entries: ids {dup} appear more than once")
        self.entries = {e.id: e for e in self.spec.entries}
        self.sweeps: dict[str, SweepSpec] = {}
        for n, e in enumerate(self.spec.entries):
            where = f"{path}: entries.{n} ({e.id})"
            if e.task is not None:
                task = self._task(e, where)
                for profile in PROFILES:
                    s = self.settings(e, profile)
                    if task.check is not None:
                        task.check(dict(s.task), s.profile or profile, f"{where}: settings.task")
                continue
            try:
                self.sweeps[e.id] = load_sweep(path.parent / e.sweep, validate_trial_config)
            except ConfigError as exc:
                raise ConfigError(f"{where}: sweep: {exc}") from None
            exp = get_experiment(self.sweeps[e.id].trainable)
            for folder, overrides in e.runs.items():
                bad = set(overrides) - set(exp.sweep_overrides)
                if bad:
                    raise ConfigError(
                        f"{where}: runs.{folder}: {sorted(bad)} are not sweep-wide fields of "
                        f"{exp.name} (it takes: {sorted(exp.sweep_overrides) or 'none'})"
                    )
            if e.needs is not None:
                need = self.entries.get(e.needs)
                if need is None or need.task is None:
                    raise ConfigError(f"{where}: needs: {e.needs!r} is not a task entry's id")
                provides = self._task(need, where).provides
                if provides and provides not in exp.config.model_fields:
                    raise ConfigError(
                        f"{where}: needs {e.needs}, which sets {provides}, a field "
                        f"{exp.name} trials do not have"
                    )
            for profile in PROFILES:  # every trial at every profile is a valid config
                for job in self._jobs(e, "results", profile):
                    expand(job.spec, job.profile, job.overrides, where,
                           validate_trial_config, job.experiment.override)  # fmt: skip

    def _task(self, entry: Entry, where: str):
        exp_name, _, task = entry.task.partition(".")
        known = experiments()
        if exp_name not in known or task not in known[exp_name].tasks:
            offered = sorted(f"{n}.{t}" for n, x in known.items() for t in x.tasks)
            raise ConfigError(f"{where}: task {entry.task!r}: expected one of {offered}")
        return known[exp_name].tasks[task]

    def settings(self, entry: Entry, profile: str) -> Settings:
        base = self.spec.profiles.get(profile, Settings())
        own = entry.settings.get(profile)
        return base.over(own) if own is not None else base

    def folder(self, entry: Entry) -> str:
        return entry.folder or entry.id

    def select(self, only: list[str] | None) -> list[Entry]:
        """The entries ``--only`` names (all when None) and the tasks they need, in file
        order; a UserError naming the unknown ids otherwise."""
        if not only:
            return list(self.spec.entries)
        unknown = [i for i in only if i not in self.entries]
        if unknown:
            raise ConfigError(
                f"--only: {unknown} are not entries of {self.path}; expected some of "
                f"{list(self.entries)}"
            )
        chosen = set(only) | {self.entries[i].needs for i in only if self.entries[i].needs}
        return [e for e in self.spec.entries if e.id in chosen]

    def _jobs(self, entry: Entry, results: str, profile: str) -> list[Job]:
        spec = self.sweeps[entry.id]
        exp = get_experiment(spec.trainable)
        s = self.settings(entry, profile)
        update: dict = {}
        if s.seeds is not None:
            update["seeds"] = s.seeds
        base = {**spec.base, **s.set}
        needs = self.entries[entry.needs] if entry.needs else None
        if needs is not None:
            provides = self._task(needs, entry.id).provides
            if provides:
                base[provides] = f"{results_text(results)}/{self.folder(needs)}"
        update["base"] = base
        spec = spec.model_copy(update=update)
        runs = entry.runs or {self.folder(entry): {}}
        where = Location.of(results)
        return [
            Job(
                spec,
                exp,
                s.profile or profile,
                where / folder / spec.name,
                overrides=dict(overrides),
                pack=s.pack or spec.pack,
                key=f"{folder}/{spec.name}",
                group=entry.id,
                needs=entry.needs,
            )
            for folder, overrides in runs.items()
        ]

    def jobs(self, entries: list[Entry], results: str, profile: str) -> list[Job]:
        """The sweep runs of ``entries`` at ``profile`` under ``results``."""
        return [j for e in entries if e.sweep is not None for j in self._jobs(e, results, profile)]

    def tasks(self, entries: list[Entry], results: str, profile: str, data_dir, log):
        """Task entry id -> a function starting it (for :func:`run_queue`)."""
        out = {}
        for e in entries:
            if e.task is None:
                continue
            task, s = self._task(e, e.id), self.settings(e, profile)
            folder = Location.of(results) / self.folder(e)

            def start(task=task, s=s, folder=folder):
                return task.start(
                    dict(s.task), folder, profile=s.profile or profile, data_dir=data_dir, log=log
                )

            out[e.id] = start
        return out

    def record(self, profile: str, only: list[str] | None) -> dict:
        """What ``<results>/study.json`` holds: the study as run."""
        return {
            "study": self.spec.name,
            "file": str(self.path),
            "sha256": self.sha256,
            "profile": profile,
            "only": only or None,
            "entries": {
                e.id: {
                    "title": e.title,
                    "sweep": e.sweep,
                    "task": e.task,
                    "folders": list(e.runs) or [self.folder(e)],
                    "settings": self.settings(e, profile).model_dump(exclude_defaults=True),
                }
                for e in self.select(only)
            },
        }
