"""The typed config of an arch2vec / IO-model trial and its scale profiles."""

from __future__ import annotations

from typing import Literal

import numpy as np
import pydantic

from pipeline.config import ConfigError, Profile, StrictModel
from pipeline.nas.decode import slots_to_cell
from pipeline.nas.table import Benchmark

PROFILES: dict[str, dict] = {
    "smoke": {
        "epochs": 2,
        "max_cells": 1024,
        "valid_cells": 256,
        "labelled_run": 4,
        "unlabelled_run": 4,
        "num_samples": 200,
        "export": "labelled",
        "cnn_channels": [8, 16],
        "predict_sizes": [100, 250],
        "predict_seeds": 3,
        "search_runs": 5,
        "search_budget": 200000.0,
    },
    "cpu": {
        "epochs": 30,
        "max_cells": 8000,
        "valid_cells": 2000,
        "labelled_run": 30,
        "unlabelled_run": 20,
        "num_samples": 1000,
        "export": "labelled",
        "cnn_channels": [32, 64, 128],
        "predict_sizes": [250, 1000, 5000],
        "predict_seeds": 10,
        "search_runs": 20,
        "search_budget": 500000.0,
    },
    "paper": {
        "epochs": 30,
        "max_cells": None,
        "valid_cells": 10000,
        "labelled_run": 300,
        "unlabelled_run": 200,
        "num_samples": 1000,
        "export": "all",
        "latent_epochs": [10],
        "cnn_channels": [32, 64, 128],
        "predict_sizes": [250, 500, 1000, 2500, 5000, 10000],
        "predict_seeds": 10,
        "search_runs": 500,
        "search_budget": 1000000.0,
    },
}

NUM_NODES = 7


def default_io_data(profile: str) -> str:
    """Where ``gnn2gnn pretrain`` writes, and IO trials read, a profile's pretraining."""
    return f"results/pretrain-{profile}"


class IOEmbeddingConfig(StrictModel):
    model: Literal["arch2vec", "io-embedding"] = "io-embedding"
    same_batches: bool = pydantic.Field(
        False,
        description="arch2vec only: follow an IO trial's batches (labelled runs give their "
        "networks' cells, VAE loss only): the paper's 'arch2vec trained concurrently'",
    )
    benchmark: Literal["nasbench101"] = "nasbench101"
    dataset: Literal["cifar10"] = "cifar10"
    label: str | None = None
    data_dir: str | None = None
    io_data: str | None = pydantic.Field(
        None, description="pretraining folder or URI; default results/pretrain-<profile>"
    )
    profile: Profile = "cpu"
    seed: int = 0
    device: Literal["auto", "cpu", "cuda"] = "auto"
    epochs: int = pydantic.Field(30, ge=1)
    batch_size: int = pydantic.Field(32, ge=1)
    lr: float = pydantic.Field(1e-3, gt=0)
    hidden: int = pydantic.Field(128, ge=1)
    latent: int = pydantic.Field(16, ge=1)
    layers: int = pydantic.Field(5, ge=1, description="GIN iterations")
    dropout: float = pydantic.Field(0.3, ge=0, lt=1)
    l1_weight: float = pydantic.Field(1.0, ge=0)
    labelled_run: int = pydantic.Field(300, ge=1)
    unlabelled_run: int = pydantic.Field(200, ge=0)
    max_cells: int | None = pydantic.Field(None, ge=1, description="VAE training cells")
    valid_cells: int = pydantic.Field(10000, ge=1, description="held-out cells for accuracy")
    valid_fraction: float = pydantic.Field(0.1, gt=0, lt=1)
    split_seed: int = 0
    num_samples: int = pydantic.Field(1000, ge=1, description="N(0, I) samples decoded")
    export: Literal["all", "labelled", "none"] = "all"
    latent_epochs: list[int] = pydantic.Field(
        [], description="also export the latent table after these epochs (latent_e<N>)"
    )
    scale: Literal["global", "feature", "none"] = "global"
    top_k: int | None = pydantic.Field(None, ge=1)
    normalize: bool = True
    cnn_channels: list[int] = [32, 64, 128]
    net_dim: int = pydantic.Field(128, ge=1)
    head_hidden: int = pydantic.Field(256, ge=1)
    evaluate: bool = pydantic.Field(True, description="prediction + search on the latent")
    predict_sizes: list[int] = [250, 500, 1000, 2500, 5000, 10000]
    predict_seeds: int = pydantic.Field(10, ge=1)
    predict_threshold: float = pydantic.Field(0.8, description="test cells above (fraction)")
    search_runs: int = pydantic.Field(500, ge=1)
    search_budget: float = pydantic.Field(1e6, gt=0, description="simulated seconds a run")


def check(cfg: IOEmbeddingConfig, source: str) -> None:
    """Rules across fields (the Config checks each field)."""
    if cfg.same_batches and cfg.model != "arch2vec":
        raise ConfigError(f"{source}: same_batches: only for model arch2vec")


def decode_to_cells(op_classes: np.ndarray, adj: np.ndarray, bench: Benchmark) -> list:
    """Decoded slots -> pruned valid cell hash, or None; class K (= num ops) marks absent."""
    space = bench.space
    out: list[str | None] = []
    for ops_row, a in zip(op_classes, adj, strict=True):
        if np.count_nonzero(ops_row < space.num_ops) < 2:
            out.append(None)
            continue
        cell = slots_to_cell(ops_row.tolist(), a, space)
        pruned = cell.prune() if cell.ops[0] == "input" and cell.ops[-1] == "output" else None
        if pruned is None or pruned.validity_error(space):
            out.append(None)
        else:
            out.append(pruned.hash(space))
    return out
