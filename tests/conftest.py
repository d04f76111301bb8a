"""Shared fixtures: the real benchmark tables from the data folder (../shared/data in CI)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import pipeline  # noqa: E402,F401  -- sets Ray's loopback settings before any test imports Ray

if "GNN2GNN_CACHE" not in os.environ:  # the decoded CIFAR-10 cache: one per test session
    import tempfile

    os.environ["GNN2GNN_CACHE"] = tempfile.mkdtemp(prefix="gnn2gnn-cache-")


@pytest.fixture(scope="session")
def data_dir():
    from pipeline.paths import resolve_data_dir

    return resolve_data_dir()


@pytest.fixture(scope="session")
def nb101(data_dir):
    from pipeline.nas.benchmarks import load_benchmark

    return load_benchmark("nasbench101", data_dir=data_dir)


@pytest.fixture(scope="session")
def nats(data_dir):
    from pipeline.nas.benchmarks import load_benchmark

    return load_benchmark("natsbench", "cifar10", data_dir=data_dir)


@pytest.fixture(scope="session")
def smoke_results(tmp_path_factory):
    """The smoke sweep run once through the CLI (real Ray, Parquet, MLflow):
    (results folder, the command's JSON summary, its progress log)."""
    out = tmp_path_factory.mktemp("results")
    root = Path(__file__).resolve().parent.parent
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "pipeline.cli",
            "sweep",
            "sweeps/smoke.yaml",
            "--profile",
            "smoke",
            "--results",
            str(out),
        ],
        cwd=root,
        capture_output=True,
        text=True,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    return out, json.loads(res.stdout.strip().splitlines()[-1]), res.stderr


@pytest.fixture(scope="session")
def cifar(data_dir):
    """Real CIFAR-10 (the shared JPEG zip), decoded once into the session's cache."""
    from trainables.infonas.cifar10 import load_cifar10

    return load_cifar10(data_dir)


@pytest.fixture(scope="session")
def pretrained(tmp_path_factory, data_dir, cifar):
    """Smoke pretraining through real Ray tasks: (folder, the run's summary)."""
    from trainables.infonas.pretrain import run_pretraining

    folder = tmp_path_factory.mktemp("pretrain")
    summary = run_pretraining({"profile": "smoke", "data_dir": str(data_dir)}, folder, log=print)
    return folder, summary


def install_plugin(folder: Path, module: str, source: str, monkeypatch) -> Path:
    """An experiment package as a user would install it, without pip: ``<module>.py`` and
    a ``*.dist-info`` with its ``gnn2gnn.experiments`` entry point in ``folder``, put on
    ``sys.path`` and ``PYTHONPATH`` (Ray workers and subprocesses find it too)."""
    from pipeline.experiment import experiments

    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{module}.py").write_text(source)
    info = folder / f"{module}-0.1.dist-info"
    info.mkdir(exist_ok=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {module}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(
        f"[gnn2gnn.experiments]\n{module} = {module}:EXPERIMENT\n"
    )
    monkeypatch.syspath_prepend(str(folder))
    old = os.environ.get("PYTHONPATH")
    monkeypatch.setenv("PYTHONPATH", str(folder) + (os.pathsep + old if old else ""))
    experiments.cache_clear()
    return folder


@pytest.fixture
def plugin(tmp_path, monkeypatch):
    """Install an experiment plugin for one test: ``plugin(module, source) -> folder``."""
    from pipeline.experiment import experiments

    yield lambda module, source: install_plugin(tmp_path / "plugin", module, source, monkeypatch)
    experiments.cache_clear()
