"""What an experiment (one paper's trials) gives the pipeline, what a trial returns, and
the registry that finds experiments.

An :class:`Experiment` names itself, brings a typed Config (a :class:`StrictModel`), scale
profiles validated against that Config, the function that runs one trial, the metric the
sweep's progress line shows and the fields that name its MLflow runs. Its tables live in
``analysis/`` and its extra commands in the ``gnn2gnn.commands`` entry-point group, so a
Ray worker that runs a trial loads neither. Experiments are found through the
``gnn2gnn.experiments`` entry-point group (:func:`experiments`); the core never imports one
by name. A third paper is one package with an :class:`Experiment` object and one line in
its ``pyproject.toml``::

    [project.entry-points."gnn2gnn.experiments"]
    my_paper = "my_package:EXPERIMENT"

The entry point's name must equal the experiment's ``name``. Installed packages and
``*.dist-info`` folders on ``sys.path`` are both found (``importlib.metadata``).

Profiles change sizes only (epochs, sample counts). One rule builds every config
(:meth:`Experiment.make_config`): the profile's values, then the fields the user set; the
profile is the Config's own default when none is given.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any, TypeVar

import pydantic

from pipeline.config import PROFILES, ConfigError, validate
from pipeline.plugins import load_group

M = TypeVar("M", bound=pydantic.BaseModel)

GROUP = "gnn2gnn.experiments"
Reporter = Callable[[dict], None]


@dataclass(init=False)
class TrialResult:
    """What a trial returns: final metrics, per-epoch rows, its tables (name -> rows, each
    stored as ``<results>/<sweep>/<name>/<trial_id>.parquet``), model state, info fields
    (strings recorded in its result row) and its full config (every field, defaults
    included)."""

    metrics: dict
    epochs: list[dict]
    tables: dict[str, list[dict]] = field(default_factory=dict)
    state: dict = field(default_factory=dict)
    info: dict = field(default_factory=dict)
    full_config: dict = field(default_factory=dict)

    def __init__(
        self,
        metrics: dict,
        epochs: list[dict],
        tables: dict[str, list[dict]] | None = None,
        state: dict | None = None,
        info: dict | None = None,
        full_config: dict | None = None,
        **old: Any,
    ) -> None:
        self.metrics, self.epochs = metrics, epochs
        if isinstance(tables, list):  # the older positional form: (metrics, epochs, generated)
            old["generated"], tables = tables, None
        self.tables = dict(tables or {})
        self.state, self.info, self.full_config = state or {}, info or {}, full_config or {}
        if old:  # the older fields: generated=[...] and frames={name: rows}
            unknown = set(old) - {"generated", "frames"}
            if unknown:
                raise TypeError(f"TrialResult: unexpected fields {sorted(unknown)}")
            warnings.warn(
                "TrialResult(generated=..., frames=...) is the older form: pass "
                "tables={'generated': rows, ...} (the older form goes in the next release)",
                DeprecationWarning,
                stacklevel=2,
            )
            if old.get("generated"):
                self.tables["generated"] = old["generated"]
            self.tables.update(old.get("frames") or {})
        reserved = set(self.tables) & {"epochs", "trials"}
        if reserved:
            raise ValueError(f"TrialResult: table names {sorted(reserved)} are reserved")


RunTrial = Callable[..., TrialResult]  # (config, reporter=None, progress=False); see takes_config


def make_config(
    model: type[M],
    profiles: Mapping[str, Mapping[str, Any]],
    data: Mapping[str, Any],
    source: str = "config",
) -> M:
    """The one rule for every config: the profile's values, then the fields in ``data``;
    the profile is ``data["profile"]`` or the Config's default. ConfigError naming
    ``source`` and every bad field otherwise (an unknown profile included)."""
    data = dict(data)
    profile = data.get("profile", model.model_fields["profile"].default)
    return validate(model, {**profiles.get(profile, {}), **data}, source)


@dataclass(frozen=True)
class StudyTask:
    """A prerequisite of an experiment's sweeps that a study runs as Ray tasks in its own
    session (e.g. pretraining networks), before the sweeps that ``need`` it.

    ``start(settings, folder, *, profile, data_dir, log)`` submits the work (Ray is up) and
    returns an object with ``poll() -> bool`` (non-blocking; True when done), ``cpus_busy``
    and ``busy_seconds`` (:class:`pipeline.sweep.queue.TaskRun`); what it makes goes to
    ``folder`` (a path or a URI), and a rerun finishes only what is missing. ``provides``:
    the trial config field that a sweep needing the task gets set to the folder.
    ``check(settings, profile, where)``: raise ConfigError naming ``where`` when the study's
    settings for the task are not valid (checked when the study file is read)."""

    start: Callable[..., Any]
    provides: str | None = None
    description: str = ""
    check: Callable[[dict, str, str], None] | None = None


@dataclass(frozen=True)
class Experiment:
    """One paper's trials and their analysis, as the pipeline sees them."""

    name: str
    config: type[pydantic.BaseModel]
    profiles: Mapping[str, Mapping[str, Any]]
    run_trial: RunTrial
    description: str = ""
    aliases: tuple[str, ...] = ()  # older names (sweep files, `train`), kept for one release
    progress_metric: str | None = None  # the sweep's progress line shows its best value
    run_name_fields: tuple[str, ...] = ("seed",)  # MLflow run name: field=value-...-trial_id
    tag_fields: tuple[str, ...] = ("profile",)  # MLflow tags of each run
    check: Callable[[Any, str], None] | None = None  # cross-field rules; raise ConfigError
    info_tags: tuple[str, ...] = ()  # info fields that also tag each MLflow run
    # The experiment of `gnn2gnn train` with no experiment and no --model, and of a sweep
    # file without `trainable:` (at most one installed experiment claims them).
    claims_old_train_form: bool = False
    # Sweep-wide overrides (`gnn2gnn sweep --<field>`): fields of the Config a user may set
    # for every trial of a sweep file, and the rule applying them (other fields may follow,
    # e.g. a benchmark that has one data set only).
    sweep_overrides: tuple[str, ...] = ()
    apply_overrides: Callable[[dict, Mapping[str, Any]], dict] | None = None
    # Trial packing (optional): ``pack_key(config)`` is equal for trials that can train
    # together as one batched model (None: this one cannot), and ``run_packed(configs,
    # reporters, progress=False)`` trains such a group, returning one result per config
    # (configs: dicts, or the validated Configs with ``takes_config``).
    pack_key: Callable[[Mapping[str, Any]], Any] | None = None
    run_packed: Callable[..., list[TrialResult]] | None = None
    # True: ``run_trial``, ``pack_key`` and ``run_packed`` also take the validated Config
    # (of :meth:`make_config`), and a sweep hands them that, validated once on the driver;
    # False (the older protocol): they get each trial's config dict.
    takes_config: bool = False
    # Prerequisites a study runs before the sweeps that need them (name -> StudyTask).
    tasks: Mapping[str, StudyTask] = field(default_factory=dict)
    # ``preflight(config, data_dir)``: raise the UserError every trial of this (validated)
    # config would fail on, without training (its data missing or unreadable): a sweep's
    # driver calls it for every trial to run before any starts, so it must be quick (cache
    # what configs share). ``data_dir``: the folder or URI the trials get, or None.
    preflight: Callable[[Any, str | None], None] | None = None

    def __post_init__(self) -> None:
        missing = set(PROFILES) - set(self.profiles)
        if missing:
            raise TypeError(f"experiment {self.name}: profiles {sorted(missing)} missing")
        fields = set(self.config.model_fields) | {
            f.alias for f in self.config.model_fields.values() if f.alias
        }
        for profile, values in self.profiles.items():
            unknown = set(values) - fields
            if unknown:
                raise TypeError(
                    f"experiment {self.name}: profile {profile} sets unknown fields "
                    f"{sorted(unknown)}"
                )
        if "profile" not in self.config.model_fields:
            raise TypeError(f"experiment {self.name}: its Config needs a profile field")
        for profile in PROFILES:  # every profile must give a valid config on its own
            make_config(self.config, self.profiles, {"profile": profile}, f"{self.name} {profile}")

    def override(self, config: dict, overrides: Mapping[str, Any]) -> dict:
        """``config`` with the sweep-wide overrides (:attr:`sweep_overrides`) applied."""
        overrides = {k: v for k, v in overrides.items() if v is not None}
        if not overrides:
            return config
        if self.apply_overrides is not None:
            return self.apply_overrides(config, overrides)
        return {**config, **overrides}

    def make_config(
        self, data: Mapping[str, Any] | pydantic.BaseModel, source: str = "trial config"
    ):
        """The validated Config (see :func:`make_config`), cross-field rules checked. A
        Config of this experiment is returned as it is: a trial's config is validated once,
        where it enters (the command line, the sweep file), and travels typed after that."""
        if isinstance(data, self.config):  # its fields were checked when it was made
            if self.check is not None:
                self.check(data, source)
            return data
        cfg = make_config(self.config, self.profiles, data, source)
        if self.check is not None:
            self.check(cfg, source)
        return cfg

    def pack_groups(
        self, configs: list[Mapping[str, Any] | pydantic.BaseModel], pack: int
    ) -> list[list[int]]:
        """Indices of ``configs`` in groups of at most ``pack`` trials that train packed
        (equal ``pack_key``), in first-seen order; every trial alone when the experiment
        does not pack or ``pack`` is 1."""
        groups: list[list[int]] = []
        filling: dict[Any, list[int]] = {}
        for i, cfg in enumerate(configs):
            key = self.pack_key(cfg) if pack > 1 and self.run_packed is not None else None
            if key is None:
                groups.append([i])
                continue
            group = filling.get(key)
            if group is None or len(group) >= pack:
                group = filling[key] = []
                groups.append(group)
            group.append(i)
        return groups

    def models(self) -> tuple[str, ...]:
        """The values of the Config's ``model`` field (for the old ``train --model`` form)."""
        info = self.config.model_fields.get("model")
        args = getattr(info.annotation, "__args__", ()) if info is not None else ()
        return tuple(a for a in args if isinstance(a, str))


@cache
def experiments() -> dict[str, Experiment]:
    """Name -> experiment, in name order (loaded once per process)."""
    found: dict[str, Experiment] = {}
    for name, exp in load_group(GROUP, "experiment").items():
        if not isinstance(exp, Experiment):
            raise ConfigError(f"entry point {name} of {GROUP} is not an Experiment")
        if exp.name != name and name in exp.aliases:
            # an install from before a rename: the entry point still has the older name
            # (reinstall, pip install -e ., to refresh it); the experiment is the same
            found.setdefault(exp.name, exp)
            continue
        if exp.name != name:
            raise ConfigError(
                f"entry point {name} of {GROUP} names experiment {exp.name!r}; if the project "
                "was updated, reinstall it: pip install -e ."
            )
        found[name] = exp
    return dict(sorted(found.items()))


def experiment_name(name: str, where: str = "") -> str:
    """The installed experiment's name for ``name``, an older name (an alias) included, which
    works with a FutureWarning that names the new one; ConfigError for an unknown name."""
    known = experiments()
    if name in known:
        return name
    for exp in known.values():
        if name in exp.aliases:
            warnings.warn(
                f"{where + ': ' if where else ''}experiment {name!r} is now called "
                f"{exp.name!r}: use that name ({name!r} goes in the next release)",
                FutureWarning,
                stacklevel=2,
            )
            return exp.name
    raise ConfigError(
        f"{where + ': ' if where else ''}unknown experiment {name!r}; installed: "
        f"{sorted(known)} (entry-point group {GROUP}; after updating the project, reinstall "
        "it: pip install -e .)"
    )


def get_experiment(name: str) -> Experiment:
    return experiments()[experiment_name(name)]


def validate_trial_config(experiment: str, config: dict, where: str) -> None:
    """Sweep-file check of one expanded trial config against its experiment's Config."""
    known = experiments()
    if experiment not in known:  # an older name: resolved (and warned about) by load_sweep
        experiment = experiment_name(experiment, f"{where}: trainable")
    known[experiment].make_config(config, where)


def default_experiment() -> str | None:
    """The installed experiment that claims sweep files without ``trainable:``, or None."""
    owners = [n for n, e in experiments().items() if e.claims_old_train_form]
    return owners[0] if owners else None


def pick_device(name: str):
    """``auto`` (CUDA when there is one), ``cpu`` or ``cuda`` as a torch device."""
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device 'cuda' requested but no CUDA device is available")
    return torch.device(name)


__all__ = [
    "PROFILES",
    "Experiment",
    "Reporter",
    "TrialResult",
    "experiment_name",
    "experiments",
    "get_experiment",
    "make_config",
    "pick_device",
]
