"""Sweep files: schema, validation and expansion into trials; the only home of the sweep
defaults (a file says only what differs from them).

A sweep file (``sweeps/*.yaml``)::

    name: ablation                 # results go to <results>/<name>/
    description: Table 1 ...
    table: 1                       # paper table this sweep regenerates (optional)
    trainable: gnn2gnn             # the experiment (default: the one that claims files
                                   # without it, GNN2GNN)
    seeds: 3                       # an int n (seeds 0..n-1) or a list of seeds
    resources: {cpu: 1, gpu: 0.25} # per trial (the default); gpu only where GPUs exist
    retries: 1                     # extra attempts for a trial that raises (the default)
    pack: 1                        # trials packed into one batched model (optional)
    base: {top_n_removed: 10}      # fixed config fields
    grid: {mu: [1, 2], tau: [0.01, 0.1], lambda: [1, 0.5, 0.1, 0.01]}   # cartesian product
    variants:                      # optional: a union of partial configs, each x grid
      - {model: gnn2gnn}
      - {model: random}

The profile (``smoke``/``cpu``/``paper``) is chosen on the command line and changes only
sizes; the experiment's sweep-wide overrides (``gnn2gnn sweep --benchmark ...``) set fields
of every trial. Each trial's id is a hash of its full config, so a resumed sweep recognises
finished trials.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pydantic
import yaml

from pipeline.config import PROFILES, ConfigError, StrictModel, validate
from pipeline.experiment import default_experiment, experiment_name


class Resources(StrictModel):
    cpu: float = pydantic.Field(1.0, gt=0)
    gpu: float = pydantic.Field(0.25, ge=0, le=1, description="per trial, when GPUs exist")
    custom: dict[str, float] = pydantic.Field(
        default_factory=dict,
        description="Ray custom resources per trial, e.g. {data_node: 1}: trials run only on "
        "nodes started with them (`ray start --resources`)",
    )


class SweepSpec(StrictModel):
    """A validated sweep file."""

    name: str = pydantic.Field(pattern=r"^[A-Za-z0-9_.-]+$")
    description: str = ""
    table: int | None = None
    trainable: str | None = pydantic.Field(
        None,
        description="the experiment (an entry point of gnn2gnn.experiments); none: the one "
        "that claims sweep files without it",
    )
    seeds: int | list[int] = 3
    resources: Resources = Resources()
    retries: int = pydantic.Field(1, ge=0)
    pack: int = pydantic.Field(
        1,
        ge=1,
        description="train up to this many compatible trials as one batched model, one Ray "
        "trial with the resources of one (experiments that can pack: GNN2GNN)",
    )
    base: dict[str, Any] = {}
    grid: dict[str, list[Any]] = {}
    variants: list[dict[str, Any]] = [{}]

    @pydantic.field_validator("grid")
    @classmethod
    def _grid(cls, v: dict[str, list[Any]]) -> dict[str, list[Any]]:
        for key, values in v.items():
            if not values:
                raise ValueError(f"grid.{key} is empty")
        return v

    @pydantic.field_validator("seeds")
    @classmethod
    def _seeds(cls, v: int | list[int]) -> int | list[int]:
        if isinstance(v, int) and v < 1:
            raise ValueError("seeds must be at least 1 (or a list of seeds)")
        if isinstance(v, list) and not v:
            raise ValueError("seeds is an empty list")
        return v

    @property
    def num_trials(self) -> int:
        """variants x grid x seeds, counted without building them."""
        n = len(self.variants) * (self.seeds if isinstance(self.seeds, int) else len(self.seeds))
        return n * math.prod(len(v) for v in self.grid.values())

    @property
    def seed_list(self) -> list[int]:
        return list(range(self.seeds)) if isinstance(self.seeds, int) else list(self.seeds)


MAX_TRIALS = 100_000  # trial configs one sweep may expand to


def trial_id(config: dict) -> str:
    """Stable id of a trial config (sorted JSON, sha1, 10 hex)."""
    blob = json.dumps(config, sort_keys=True, default=str)
    return hashlib.sha1(blob.encode()).hexdigest()[:10]


Validator = Callable[[str, dict, str], None]  # (trainable, config, where) -> raise ConfigError


def load_sweep(path: str | Path, validate_config: Validator | None = None) -> SweepSpec:
    """Read and validate a sweep file; ConfigError naming the file and field otherwise.

    ``validate_config`` checks each expanded trial config (its experiment's own Config)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: sweep file not found")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of sweep fields at the top level")
    if "entries" in data and "grid" not in data and "variants" not in data:
        raise ConfigError(
            f"{path}: a study file (entries:), not a sweep file: run it with "
            f"`gnn2gnn reproduce {path}`"
        )
    spec = validate(SweepSpec, data, str(path))
    if spec.trainable is None:
        default = default_experiment()
        if default is None:
            raise ConfigError(f"{path}: trainable: missing (no installed experiment is a default)")
        spec = spec.model_copy(update={"trainable": default})
    elif validate_config is not None:  # an older name works, with a message naming the new
        name = experiment_name(spec.trainable, f"{path}: trainable")
        spec = spec.model_copy(update={"trainable": name})
    # every expanded trial must be a valid trial config: check once, name the first bad one
    expand(spec, "smoke", source=str(path), validate_config=validate_config)
    return spec


def expand(
    spec: SweepSpec,
    profile: str,
    overrides: Mapping[str, Any] | None = None,
    source: str = "sweep",
    validate_config: Validator | None = None,
    override: Callable[[dict, Mapping[str, Any]], dict] | None = None,
) -> list[dict]:
    """All trial configs of the sweep at a profile: variants x grid x seeds, with the
    sweep-wide ``overrides`` (applied by the experiment's ``override``; default: set the
    fields), validated."""
    if profile not in PROFILES:
        raise ConfigError(f"{source}: profile {profile!r}; expected one of {list(PROFILES)}")
    if spec.num_trials > MAX_TRIALS:  # counted first: a typo must not fill the memory
        raise ConfigError(
            f"{source}: {spec.num_trials:,} trials (variants x grid x seeds); a sweep holds at "
            f"most {MAX_TRIALS:,}: fewer seeds or grid values"
        )
    overrides = {k: v for k, v in (overrides or {}).items() if v is not None}
    keys = list(spec.grid)
    trials = []
    for variant in spec.variants:
        for values in itertools.product(*(spec.grid[k] for k in keys)):
            for seed in spec.seed_list:
                cfg = {
                    **spec.base,
                    **dict(zip(keys, values, strict=True)),
                    **variant,
                    "seed": seed,
                    "profile": profile,
                }
                if overrides:
                    cfg = override(cfg, overrides) if override else {**cfg, **overrides}
                if validate_config is not None:
                    validate_config(spec.trainable, cfg, f"{source}: trial {cfg}")
                trials.append(cfg)
    seen: dict[str, dict] = {}
    for cfg in trials:
        seen.setdefault(trial_id(cfg), cfg)  # variants may repeat a config: run it once
    return list(seen.values())
