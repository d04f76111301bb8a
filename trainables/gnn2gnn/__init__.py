"""GNN2GNN (paper 000) as an experiment: the trial (GNN2GNN and its MolGAN-like, RNN and
Erdos-Renyi baselines), its config and profiles; its tables are in ``analysis.gnn2gnn``.

Modules: ``config`` (typed config, profiles), ``generators``, ``edgeform``, ``critics`` and
``layers`` (the models), ``metrics``, ``parts`` (generator by name, optimiser, lambda
schedule, sampling, row choice), ``trial`` (one trial's state, evaluation and selection),
``training`` (the GAN step and epoch loop, written once for P >= 1 trials), ``packed``
(which trials pack together).
"""

from __future__ import annotations

from pipeline.experiment import Experiment, Reporter, TrialResult
from pipeline.nas.benchmarks import check_data_once
from pipeline.nas.table import Benchmark
from trainables.gnn2gnn.config import PROFILES, GNN2GNNConfig
from trainables.gnn2gnn.parts import lambda_at
from trainables.gnn2gnn.trial import Trial


def run_trial(
    config: dict | GNN2GNNConfig,
    reporter: Reporter | None = None,
    progress: bool = False,
    bench: Benchmark | None = None,
) -> TrialResult:
    """Validate ``config``, train one trial, and return its result."""
    return Trial(EXPERIMENT.make_config(config), bench).run(reporter, progress)


def pack_key(config: dict | GNN2GNNConfig):
    """Equal for trials that can train packed (``trainables.gnn2gnn.packed``)."""
    from trainables.gnn2gnn.packed import pack_key as key

    return key(EXPERIMENT.make_config(config))


def run_packed(
    configs: list[dict | GNN2GNNConfig],
    reporters: list[Reporter | None] | None = None,
    progress: bool = False,
    bench: Benchmark | None = None,
) -> list[TrialResult]:
    """Validate ``configs`` and train them as one packed group."""
    from trainables.gnn2gnn.packed import run_packed as run

    return run([EXPERIMENT.make_config(c) for c in configs], reporters, progress, bench)


def apply_overrides(config: dict, overrides: dict) -> dict:
    """``gnn2gnn sweep --benchmark/--dataset``: a file's trials moved to another benchmark
    (NAS-Bench-101 has CIFAR-10 only, so its data set follows unless one is given)."""
    cfg = {**config, **overrides}
    if overrides.get("benchmark") == "nasbench101" and "dataset" not in overrides:
        cfg["dataset"] = "cifar10"
    return cfg


def preflight(config: GNN2GNNConfig, data_dir: str | None) -> None:
    """The data every trial of ``config`` reads, checked on the driver (``check_data``)."""
    where = config.data_dir or data_dir
    check_data_once(config.benchmark, config.dataset, where, config.label)
    target = config.eval_benchmark or config.benchmark
    target_ds = config.eval_dataset or ("cifar10" if target == "nasbench101" else config.dataset)
    if (target, target_ds) != (config.benchmark, config.dataset):
        check_data_once(target, target_ds, where, None)


EXPERIMENT = Experiment(
    name="gnn2gnn",
    description="GNN2GNN and its baselines: generate cells, score them on the benchmark",
    config=GNN2GNNConfig,
    profiles=PROFILES,
    run_trial=run_trial,
    takes_config=True,
    progress_metric="mean_acc",
    run_name_fields=("model", "mu", "tau", "lambda", "seed"),
    tag_fields=("profile", "benchmark", "dataset", "model"),
    info_tags=("label", "coverage_note"),
    sweep_overrides=("benchmark", "dataset"),
    apply_overrides=apply_overrides,
    claims_old_train_form=True,
    pack_key=pack_key,
    run_packed=run_packed,
    preflight=preflight,
)


def make_config(data: dict, source: str = "trial config") -> GNN2GNNConfig:
    """The validated config (profile values, then ``data``): ``EXPERIMENT.make_config``."""
    return EXPERIMENT.make_config(data, source)


__all__ = [
    "EXPERIMENT",
    "GNN2GNNConfig",
    "PROFILES",
    "Trial",
    "lambda_at",
    "make_config",
    "run_packed",
    "run_trial",
]
