"""Trainables: one module per kind of trial. ``REGISTRY`` maps a sweep's ``trainable`` name
to its config validator and its Ray Tune entry point."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Entry:
    validate: Callable[[dict, str], object]
    tune_fn: Callable[[dict], None]
    progress_metric: str = "mean_acc"  # the sweep's progress line shows its best value


def registry() -> dict[str, Entry]:
    from trainables import gnn2gnn, io_embedding

    return {
        "gnn2gnn": Entry(gnn2gnn.validate_config, gnn2gnn.tune_trial),
        "io_embedding": Entry(io_embedding.validate_config, io_embedding.tune_trial, "ops_acc"),
    }


def validate_trial_config(trainable: str, config: dict, where: str) -> None:
    """Sweep-file check of one expanded trial config."""
    from pipeline.config import ConfigError

    entries = registry()
    if trainable not in entries:
        raise ConfigError(f"{where}: unknown trainable {trainable!r}; expected {list(entries)}")
    entries[trainable].validate(config, where)
