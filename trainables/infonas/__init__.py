"""Info-NAS (paper 004) as an experiment: arch2vec and the IO model on NAS-Bench-101
(``trial``), their config and profiles (``config``), the pretraining of the networks whose
outputs the IO model predicts (``pretrain``, command ``gnn2gnn pretrain``), prediction and
search on a latent table (command ``gnn2gnn evaluate``, :mod:`trainables.infonas.evaluate`), and the
tables and figures are in ``analysis.infonas``."""

from __future__ import annotations

import functools

from pipeline.experiment import Experiment, Reporter, StudyTask, TrialResult
from pipeline.nas.benchmarks import check_data_once
from pipeline.nas.table import Benchmark
from trainables.infonas.config import PROFILES, IOEmbeddingConfig, check
from trainables.infonas.trial import IOTrial


def run_trial(
    config: dict | IOEmbeddingConfig,
    reporter: Reporter | None = None,
    progress: bool = False,
    bench: Benchmark | None = None,
) -> TrialResult:
    """Validate ``config``, train one trial, and return its result."""
    return IOTrial(EXPERIMENT.make_config(config), bench).run(reporter, progress)


def start_pretraining(settings: dict, folder, **kwargs):
    """The study task ``pretrain``: :func:`trainables.infonas.pretrain.start_pretraining`."""
    from trainables.infonas.pretrain import start_pretraining as start

    return start(settings, folder, **kwargs)


def check_pretraining(settings: dict, profile: str, where: str) -> None:
    """The study's settings of the ``pretrain`` task: a valid pretraining config."""
    from trainables.infonas.pretrain_config import make_config as pretrain_config

    pretrain_config({"profile": profile, **settings}, where)


def preflight(config: IOEmbeddingConfig, data_dir: str | None) -> None:
    """What every trial of ``config`` reads, checked on the driver: the NAS-Bench-101 table
    and, for the IO model, a finished pretraining folder."""
    from trainables.infonas.config import default_io_data

    check_data_once("nasbench101", "cifar10", config.data_dir or data_dir, config.label)
    if config.model == "io-embedding" or config.same_batches:
        _check_io_folder(config.io_data or default_io_data(config.profile))


@functools.cache
def _check_io_folder(folder: str) -> None:
    from trainables.infonas.iodata import check_io_folder

    check_io_folder(folder)


EXPERIMENT = Experiment(
    name="infonas",
    aliases=("io_embedding",),
    description="Info-NAS: arch2vec and the IO model on NAS-Bench-101, with evaluations",
    config=IOEmbeddingConfig,
    profiles=PROFILES,
    run_trial=run_trial,
    takes_config=True,
    progress_metric="ops_acc",
    run_name_fields=("model", "same_batches", "seed"),
    tag_fields=("profile", "benchmark", "dataset", "model"),
    check=check,
    preflight=preflight,
    info_tags=("label", "coverage_note"),
    tasks={
        "pretrain": StudyTask(
            start_pretraining,
            provides="io_data",
            description="NAS-Bench-101 networks trained on CIFAR-10, and the IO-dataset",
            check=check_pretraining,
        )
    },
)


def make_config(data: dict, source: str = "trial config") -> IOEmbeddingConfig:
    """The validated config (profile values, then ``data``): ``EXPERIMENT.make_config``."""
    return EXPERIMENT.make_config(data, source)


__all__ = ["EXPERIMENT", "IOEmbeddingConfig", "IOTrial", "PROFILES", "make_config", "run_trial"]
