"""What an experiment (one paper's trials) gives the pipeline.

An :class:`Experiment` names itself, brings a typed Config (a :class:`StrictModel`), scale
profiles validated against that Config, the function that runs one trial, the metric the
sweep's progress line shows, the fields that name its MLflow runs, and optionally its
tables, figures, report sections and extra commands. Experiments are found through the
``gnn2gnn.experiments`` entry-point group (:mod:`pipeline.experiments`); the core never
imports one by name.

Profiles change sizes only (epochs, sample counts). One rule builds every config
(:meth:`Experiment.make_config`): the profile's values, then the fields the user set; the
profile is the Config's own default when none is given.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pydantic

from pipeline.config import PROFILES, validate
from pipeline.trial import TrialResult

M = TypeVar("M", bound=pydantic.BaseModel)

RunTrial = Callable[..., TrialResult]  # (config: dict, reporter=None, progress=False)
TableWriter = Callable[[Path, Path, tuple[str, ...]], list[Path]]  # (results, out, formats)
FigureWriter = Callable[[Path, Path], list[Path]]  # (results, out) -> PNGs written
ReportWriter = Callable[[Path, list[Path]], list[str]]  # (results, files written) -> md lines


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
class Experiment:
    """One paper's trials and their analysis, as the pipeline sees them."""

    name: str
    config: type[pydantic.BaseModel]
    profiles: Mapping[str, Mapping[str, Any]]
    run_trial: RunTrial
    description: str = ""
    progress_metric: str = "mean_acc"  # the sweep's progress line shows its best value
    run_name_fields: tuple[str, ...] = ("seed",)  # MLflow run name: field=value-...-trial_id
    tag_fields: tuple[str, ...] = ("profile",)  # MLflow tags of each run
    check: Callable[[Any, str], None] | None = None  # cross-field rules; raise ConfigError
    # Hooks: a function, or "module:function" imported on first use (plotting libraries
    # then load only when a command draws, never in a Ray worker); see :meth:`call`.
    write_tables: TableWriter | str | None = None
    write_figures: FigureWriter | str | None = None
    report: ReportWriter | str | None = None
    add_commands: Callable[[Any], None] | str | None = None  # (argparse subparsers) -> None
    claims_old_train_form: bool = False  # `gnn2gnn train` with no experiment and no --model
    # Trial packing (optional): ``pack_key(config dict)`` is equal for trials that can train
    # together as one batched model (None: this one cannot), and ``run_packed(config dicts,
    # reporters, progress=False)`` trains such a group, returning one result per config.
    pack_key: Callable[[Mapping[str, Any]], Any] | None = None
    run_packed: Callable[..., list[TrialResult]] | None = None

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

    def call(self, hook: str, *args: Any) -> Any:
        """Call a hook (``write_tables``, ...) with ``args``; None when it is not set."""
        fn = getattr(self, hook)
        if fn is None:
            return None
        if isinstance(fn, str):
            module, _, attr = fn.partition(":")
            fn = getattr(importlib.import_module(module), attr)
        return fn(*args)

    def make_config(self, data: Mapping[str, Any], source: str = "trial config"):
        """The validated Config (see :func:`make_config`), cross-field rules checked."""
        cfg = make_config(self.config, self.profiles, data, source)
        if self.check is not None:
            self.check(cfg, source)
        return cfg

    def pack_groups(self, configs: list[Mapping[str, Any]], pack: int) -> list[list[int]]:
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


__all__ = ["PROFILES", "Experiment", "make_config"]
