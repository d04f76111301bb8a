"""Shared fixtures: the real benchmark tables from the data folder (../shared/data in CI)."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")


@pytest.fixture(scope="session")
def data_dir():
    from pipeline.paths import resolve_data_dir

    return resolve_data_dir()


@pytest.fixture(scope="session")
def nb101(data_dir):
    from pipeline.benchmarks import load_benchmark

    return load_benchmark("nasbench101", data_dir=data_dir)


@pytest.fixture(scope="session")
def nats(data_dir):
    from pipeline.benchmarks import load_benchmark

    return load_benchmark("natsbench", "cifar10", data_dir=data_dir)
