"""The typed config of a GNN2GNN trial and its scale profiles."""

from __future__ import annotations

from typing import Literal

import pydantic

from pipeline.config import Profile, StrictModel
from pipeline.nas.spaces import OP_TRANSFER, SPACES, BenchmarkName, DatasetName

# Scale profiles change only sizes: epochs, how much of the training split, sample counts.
PROFILES: dict[str, dict] = {
    "smoke": {
        "epochs": 2,
        "max_train_cells": 256,
        "num_generated": 200,
        "epoch_generated": 200,
        "reference_samples": 2000,
    },
    "cpu": {"epochs": 20, "max_train_cells": 4000, "num_generated": 1000},
    "paper": {"epochs": 20, "max_train_cells": None, "num_generated": 1000},
}

# Acc_n threshold (percent) per (benchmark, data set); the paper uses 90 on CIFAR-10.
DEFAULT_ACC_THRESHOLD = {"cifar10": 90.0, "cifar100": 70.0, "ImageNet16-120": 40.0}


class GNN2GNNConfig(StrictModel):
    """Typed config of one trial. ``lambda`` is accepted as the key for ``lam``."""

    model_config = pydantic.ConfigDict(extra="forbid", populate_by_name=True)

    benchmark: BenchmarkName = "nasbench101"
    dataset: DatasetName = "cifar10"
    label: str | None = None
    data_dir: str | None = None
    model: Literal["gnn2gnn", "gnn2gnn_edges", "molgan", "rnn", "random"] = pydantic.Field(
        "gnn2gnn",
        description="gnn2gnn (the paper's generator); gnn2gnn_edges (NATS only, beyond the "
        "paper: samples an op per NATS cell edge); baselines molgan, rnn, random",
    )
    mu: int = pydantic.Field(2, ge=1, le=8, description="generator graph convolutions")
    tau: float = pydantic.Field(0.1, gt=0, description="Gumbel-softmax temperature")
    lam: float = pydantic.Field(0.1, ge=0, le=1, alias="lambda", description="GAN/reward mix")
    valuer: Literal["C", "R"] = "C"
    top_n_removed: float = pydantic.Field(10.0, ge=0, lt=100)
    train_fraction: float = pydantic.Field(0.75, gt=0, le=1)
    split_seed: int | None = pydantic.Field(
        0, description="seed of the data split, validation part and subsample (None: seed)"
    )
    val_fraction: float = pydantic.Field(
        0.1, ge=0, lt=1, description="part of the training split kept for model selection"
    )
    select_min_uniqueness: float = pydantic.Field(
        0.0,
        ge=0,
        le=100,
        description="model selection keeps only epochs whose generated cells have at least "
        "this uniqueness (percent, over epoch_generated cells; none qualifies: all count)",
    )
    select_cells: Literal["auto", "all", "distinct"] = pydantic.Field(
        "auto",
        description="how the clean selection score counts generated training-split cells: "
        "all (repeats included) or each distinct cell once; auto: distinct when labels "
        "cover under half of the benchmark's cells (NB101's labelled subset), else all",
    )
    protocol: Literal["clean", "authors"] = pydantic.Field(
        "clean", description="clean, or the authors' evaluation (leaks test labels)"
    )
    generator_conv: Literal["directed", "gcn"] = pydantic.Field(
        "directed",
        description="the generator's graph convolution: directed (both directions, separate "
        "weights) or gcn (the authors' GCNConv: predecessors, one weight, normalised)",
    )
    metrics: Literal["clean", "authors"] = pydantic.Field(
        "clean",
        description="authors: beside the clean metrics, the same cells read as the authors' "
        "code reads them, as <metric>_authors columns (trainables.gnn2gnn.metrics)",
    )
    epochs: int = pydantic.Field(20, ge=1)
    batch_size: int = pydantic.Field(32, ge=1)
    optimizer: Literal["sgd", "adam"] = "sgd"
    lr: float = pydantic.Field(0.001, gt=0)
    lr_critic: float | None = pydantic.Field(
        None, gt=0, description="learning rate of D and V (two time-scales); None: lr"
    )
    momentum: float = pydantic.Field(0.0, ge=0, lt=1)
    weight_decay: float = pydantic.Field(0.0, ge=0)
    warmup_fraction: float = pydantic.Field(0.5, ge=0, le=1, description="lambda=1 phase")
    hidden: int = pydantic.Field(100, ge=1, description="hidden size of the generator")
    critic_hidden: int = pydantic.Field(32, ge=1, description="hidden size of D and V")
    noise_dim: int = pydantic.Field(100, ge=1, description="random node feature size")
    noise: Literal["uniform", "normal"] = pydantic.Field(
        "uniform", description="distribution of the generator's random node features"
    )
    edge_scorer: Literal["softmax", "sigmoid"] = pydantic.Field(
        "softmax", description="bounded softmax-over-incoming-edges scorer, or a sigmoid"
    )
    pooling: Literal["mean", "sum"] = pydantic.Field("mean", description="critics' pooling")
    critic_dropout: float = pydantic.Field(0.2, ge=0, lt=1, description="after pooling")
    minibatch_std: bool = pydantic.Field(True, description="minibatch-std feature in D")
    entropy_weight: float = pydantic.Field(
        0.0, ge=0, description="bonus on the entropy of G's edge and op distributions"
    )
    spectral_norm: bool = pydantic.Field(False, description="spectral norm in D and V")
    generator_ema: float = pydantic.Field(
        0.0,
        ge=0,
        lt=1,
        description="decay of an exponential moving average of G's weights, updated every "
        "step and used for every evaluation (0: off, G itself is evaluated)",
    )
    num_nodes: int | None = pydantic.Field(None, ge=2, description="N; default: space max")
    nu: int = pydantic.Field(2, ge=1, description="critic graph convolutions")
    valuer_on_generated: bool = pydantic.Field(
        True, description="also train V on generated cells (labels as the protocol allows)"
    )
    er_p: float = pydantic.Field(0.4, gt=0, lt=1, description="Erdos-Renyi edge probability")
    num_generated: int = pydantic.Field(1000, ge=1, description="K cells for the metrics")
    reference_samples: int = pydantic.Field(
        100_000,
        ge=0,
        description="samples of the untrained generator's structures behind the structure "
        "reference rows (uniform ops, one best op); 0: none",
    )
    epoch_generated: int = pydantic.Field(
        5000, ge=1, description="cells generated each epoch (curves, model selection)"
    )
    max_train_cells: int | None = pydantic.Field(None, ge=1)
    acc_threshold: float | None = None
    eval_benchmark: BenchmarkName | None = pydantic.Field(
        None, description="evaluate generated cells on another benchmark (transfer)"
    )
    eval_dataset: DatasetName | None = None
    seed: int = 0
    profile: Profile = "cpu"
    device: Literal["auto", "cpu", "cuda"] = "auto"

    @pydantic.model_validator(mode="after")
    def _check(self) -> GNN2GNNConfig:
        if self.model == "gnn2gnn_edges" and (
            self.benchmark != "natsbench" or self.num_nodes not in (None, 8)
        ):
            raise ValueError(
                "model gnn2gnn_edges samples NATS cells edge by edge (8 node-form slots): "
                "use --benchmark natsbench without num_nodes, or --model gnn2gnn"
            )
        space = SPACES[self.benchmark]
        if self.num_nodes is not None and self.num_nodes > space.max_slots:
            raise ValueError(
                f"num_nodes {self.num_nodes} is more node slots than generated {self.benchmark} "
                f"graphs can be keyed by (64-bit keys): at most {space.max_slots}"
            )
        if self.benchmark == "nasbench101" and self.dataset != "cifar10":
            raise ValueError("NAS-Bench-101 has CIFAR-10 only")
        if self.eval_benchmark == "nasbench101" and self.eval_dataset not in (None, "cifar10"):
            raise ValueError("NAS-Bench-101 has CIFAR-10 only")
        target = self.eval_benchmark or self.benchmark
        if target != self.benchmark and (self.benchmark, target) not in OP_TRANSFER:
            raise ValueError(f"no op mapping from {self.benchmark} to {target}")
        return self
