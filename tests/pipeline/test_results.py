"""The results dataset (per-trial Parquet parts) on hand-built trials: what readers see."""

from __future__ import annotations

import typing

import pandas as pd

from pipeline.cli.flags import yaml_value
from pipeline.store.results import ResultsStore, read_part, read_trials


def test_parts_with_different_column_types_read_as_one_dataset(tmp_path):
    store = ResultsStore(tmp_path / "s")
    store.record({"trial_id": "a", "status": "ok", "lr": 0.001, "n": 3})
    store.record({"trial_id": "b", "status": "failed", "lr": "1e-3", "error": "x"})
    store.record({"trial_id": "c", "status": "ok", "lr": 0.01, "n": None})
    trials = read_trials(tmp_path / "s").set_index("trial_id")
    assert len(trials) == 3 and trials.loc["b", "error"] == "x"
    assert ResultsStore(tmp_path / "s").finished_ids() == {"a", "c"}  # what --resume skips


def test_a_new_attempt_replaces_every_part_of_the_old_one(tmp_path):
    folder = tmp_path / "s"
    store = ResultsStore(folder)
    extra = tmp_path / "latent.parquet"
    pd.DataFrame({"z0": [1.0, 2.0]}).to_parquet(extra)
    epochs = pd.DataFrame({"epoch": [0, 1]})
    store.record({"trial_id": "t", "status": "ok"}, {"epochs": epochs, "latent": extra})
    assert len(read_part(folder, "latent")) == 2 and len(read_part(folder, "epochs")) == 2
    store.record({"trial_id": "t", "status": "failed", "error": "boom"})
    assert not (folder / "latent" / "t.parquet").exists()  # no stale part of the old attempt
    assert read_part(folder, "epochs").empty and len(read_trials(folder)) == 1


def test_parts_of_unfinished_or_failed_trials_are_not_read(tmp_path):
    folder = tmp_path / "s"
    store = ResultsStore(folder)
    store.record({"trial_id": "f", "status": "failed"})
    # a crash after a retry wrote its epochs but before its row: the failed row stands
    (folder / "epochs").mkdir(exist_ok=True)
    pd.DataFrame({"epoch": [0], "trial_id": ["f"]}).to_parquet(folder / "epochs" / "f.parquet")
    pd.DataFrame({"epoch": [0], "trial_id": ["x"]}).to_parquet(folder / "epochs" / "x.parquet")
    assert read_part(folder, "epochs").empty


def test_old_single_file_folders_are_read_with_new_parts(tmp_path):
    folder = tmp_path / "s"
    folder.mkdir()
    pd.DataFrame({"trial_id": ["a", "b"], "status": ["ok", "failed"], "mu": [1, 2]}).to_parquet(
        folder / "trials.parquet"
    )
    pd.DataFrame({"trial_id": ["a", "a"], "epoch": [0, 1]}).to_parquet(folder / "epochs.parquet")
    ResultsStore(folder).record({"trial_id": "b", "status": "ok", "mu": 2})
    trials = read_trials(folder).set_index("trial_id")
    assert len(trials) == 2 and trials.loc["b", "status"] == "ok"  # the part replaces the row
    assert len(read_part(folder, "epochs")) == 2


def test_command_line_values():
    text = typing.Optional[str]  # noqa: UP045
    choice = typing.Literal["cifar10", "ImageNet16-120"]
    assert yaml_value("--seed", "010", int) == 10  # decimal, not YAML's octal
    assert yaml_value("--lr", "1e-3", float) == 0.001
    assert yaml_value("--label", "no", text) == "no" and yaml_value("--label", "#x", text) == "#x"
    assert yaml_value("--dataset", "ImageNet16-120", choice) == "ImageNet16-120"
    assert yaml_value("--max-train-cells", "null", int | None) is None
    assert yaml_value("--cnn-channels", "[16, 32]", list[int]) == [16, 32]
    assert yaml_value("--minibatch-std", "false", bool) is False
