"""GNN2GNN (paper 000) as an experiment: the trial (GNN2GNN and its MolGAN-like, RNN and
Erdos-Renyi baselines), its config and profiles, and Tables 1-6 with their figures.

Modules: ``config`` (typed config, profiles), ``parts`` (generator by name, optimiser,
lambda schedule, sampling, row choice), ``trial`` (training and evaluation), ``tables``,
``render``, ``figures`` and ``report`` (analysis of a results folder).
"""

from __future__ import annotations

from pipeline.experiment import Experiment
from pipeline.nas.table import Benchmark
from pipeline.trial import Reporter, TrialResult
from trainables.gnn2gnn.config import PROFILES, GNN2GNNConfig
from trainables.gnn2gnn.parts import lambda_at
from trainables.gnn2gnn.trial import Trial


def run_trial(
    config: dict,
    reporter: Reporter | None = None,
    progress: bool = False,
    bench: Benchmark | None = None,
) -> TrialResult:
    """Validate ``config``, train one trial, and return its result."""
    return Trial(EXPERIMENT.make_config(config), bench).run(reporter, progress)


def pack_key(config: dict):
    """Equal for trials that can train packed (``trainables.gnn2gnn.packed``)."""
    from trainables.gnn2gnn.packed import pack_key as key

    return key(EXPERIMENT.make_config(config))


def run_packed(
    configs: list[dict],
    reporters: list[Reporter | None] | None = None,
    progress: bool = False,
    bench: Benchmark | None = None,
) -> list[TrialResult]:
    """Validate ``configs`` and train them as one packed group."""
    from trainables.gnn2gnn.packed import run_packed as run

    return run([EXPERIMENT.make_config(c) for c in configs], reporters, progress, bench)


EXPERIMENT = Experiment(
    name="gnn2gnn",
    description="GNN2GNN and its baselines: generate cells, score them on the benchmark",
    config=GNN2GNNConfig,
    profiles=PROFILES,
    run_trial=run_trial,
    progress_metric="mean_acc",
    run_name_fields=("model", "mu", "tau", "lambda", "seed"),
    tag_fields=("profile", "benchmark", "dataset", "model"),
    write_tables="trainables.gnn2gnn.render:write_tables",
    write_figures="trainables.gnn2gnn.figures:write_figures",
    report="trainables.gnn2gnn.report:report_sections",
    claims_old_train_form=True,
    pack_key=pack_key,
    run_packed=run_packed,
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
