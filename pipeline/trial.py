"""What every kind of trial shares: its result, its reporter and the device choice."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from pipeline.config import ConfigError

Reporter = Callable[[dict], None]


@dataclass
class TrialResult:
    """What a trial returns: final metrics, per-epoch rows, generated cells, model state,
    and extra tables (``frames``: name -> rows) written as ``<name>.parquet`` artifacts."""

    metrics: dict
    epochs: list[dict]
    generated: list[dict]
    state: dict
    info: dict = field(default_factory=dict)
    full_config: dict = field(default_factory=dict)  # every field, defaults included
    frames: dict = field(default_factory=dict)


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device 'cuda' requested but no CUDA device is available")
    return torch.device(name)
