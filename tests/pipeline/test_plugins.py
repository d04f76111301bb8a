"""A third experiment is one package and one entry point: a toy experiment made in a
temporary folder runs through ``gnn2gnn train`` and through a sweep (real Ray Tune, Parquet
and MLflow), and appears in ``--help``, with no change to the pipeline."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import mlflow
import pytest
import yaml

from pipeline.store.results import read_part, read_trials

ROOT = next(p for p in Path(__file__).resolve().parents if (p / "pyproject.toml").is_file())

TOY = """
from typing import Literal

import pydantic

from pipeline.config import StrictModel
from pipeline.experiment import Experiment
from pipeline.experiment import TrialResult


class ToyConfig(StrictModel):
    x: float = pydantic.Field(1.0, description="the toy's input")
    steps: int = pydantic.Field(3, ge=1, description="epochs")
    seed: int = 0
    profile: Literal["smoke", "cpu", "paper"] = "cpu"


def run_trial(config, reporter=None, progress=False):
    cfg = EXPERIMENT.make_config(config)
    epochs = []
    for epoch in range(cfg.steps):
        row = {"epoch": epoch, "score": cfg.x * (epoch + 1) + cfg.seed}
        epochs.append(row)
        if reporter is not None:
            reporter(row)
    return TrialResult(
        metrics={"score": epochs[-1]["score"]},
        epochs=epochs,
        state={},
        full_config=cfg.model_dump(),
    )


EXPERIMENT = Experiment(
    name="toy_paper",
    description="a toy experiment from a plugin package",
    config=ToyConfig,
    profiles={"smoke": {"steps": 2}, "cpu": {}, "paper": {"steps": 5}},
    run_trial=run_trial,
    progress_metric="score",
    run_name_fields=("x", "seed"),
)
"""


def _cli(args, env, **kw):
    return subprocess.run(
        [sys.executable, "-m", "pipeline.cli", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        **kw,
    )


def test_a_plugin_experiment_trains_from_the_command_line(plugin):
    plugin("toy_paper", TOY)
    env = dict(os.environ)
    help_text = _cli(["train", "toy_paper", "--help"], env).stdout
    assert "--x X" in help_text and "the toy's input" in help_text
    assert "default 1.0" in help_text and "profiles: smoke 2, paper 5" in help_text
    res = _cli(["train", "toy_paper", "--x", "2", "--profile", "smoke", "--json"], env)
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout) == {"score": 4.0}  # 2 steps: 2 * 2
    assert "epoch=1  score=4" in res.stderr  # progress on stderr, also with --json
    bad = _cli(["train", "toy_paper", "--steps", "0"], env)
    assert bad.returncode == 2 and "steps" in bad.stderr and "Traceback" not in bad.stderr


@pytest.mark.slow
def test_a_plugin_experiment_runs_as_a_sweep(plugin, tmp_path):
    plugin("toy_paper", TOY)
    sweep = tmp_path / "toy.yaml"
    sweep.write_text(
        yaml.safe_dump(
            {"name": "toy", "trainable": "toy_paper", "seeds": 2, "grid": {"x": [1.0, 2.0]}}
        )
    )
    results = tmp_path / "res"
    res = _cli(
        ["sweep", str(sweep), "--profile", "smoke", "--results", str(results)],
        dict(os.environ),
        timeout=600,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    assert "best score" in res.stderr  # the experiment's progress metric
    trials = read_trials(results / "toy")
    assert len(trials) == 4 and set(trials["status"]) == {"ok"}
    assert set(trials["trainable"]) == {"toy_paper"}
    got = {(r.x, r.seed): r.score for r in trials.itertuples()}
    assert got == {(1.0, 0): 2.0, (1.0, 1): 3.0, (2.0, 0): 4.0, (2.0, 1): 5.0}
    assert len(read_part(results / "toy", "epochs")) == 8
    client = mlflow.tracking.MlflowClient(f"sqlite:///{results / 'toy'}/mlflow.db")
    runs = client.search_runs([client.get_experiment_by_name("toy").experiment_id])
    assert sorted(r.info.run_name.rsplit("-", 1)[0] for r in runs) == [
        "x=1.0-seed=0",
        "x=1.0-seed=1",
        "x=2.0-seed=0",
        "x=2.0-seed=1",
    ]


def test_the_older_trial_result_form_still_works_with_a_warning():
    from pipeline.experiment import TrialResult

    with pytest.warns(DeprecationWarning, match="tables="):
        res = TrialResult({"m": 1}, [], generated=[{"hash": "h"}], frames={"latent": [{"z": 0}]})
    assert res.tables == {"generated": [{"hash": "h"}], "latent": [{"z": 0}]}
    with pytest.raises(TypeError, match="unexpected"):
        TrialResult({}, [], outputs=[])
    with pytest.warns(DeprecationWarning):  # positionally, as (metrics, epochs, generated)
        res = TrialResult({}, [], [{"hash": "h", "valid": True}])
    assert res.tables == {"generated": [{"hash": "h", "valid": True}]}
    with pytest.raises(ValueError, match="reserved"):
        TrialResult({}, [], {"epochs": []})


def test_an_install_from_before_a_rename_finds_the_experiment_by_its_new_name(plugin):
    from pipeline.experiment import experiments, get_experiment

    renamed = TOY.replace('name="toy_paper"', 'name="toy_new", aliases=("toy_old",)')
    plugin("toy_old", renamed)  # its entry point still has the older name
    assert "toy_new" in experiments() and "toy_old" not in experiments()
    with pytest.warns(FutureWarning, match="now called 'toy_new'"):
        assert get_experiment("toy_old").name == "toy_new"
