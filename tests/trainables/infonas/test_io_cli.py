"""Command-line errors of the IO-embedding commands: one line, exit 2, no traceback."""

from __future__ import annotations

import pytest

from pipeline.cli import main


def test_io_model_on_nats_is_refused(capsys):
    assert main(["train", "--model", "arch2vec", "--benchmark", "natsbench"]) == 2
    err = capsys.readouterr().err
    assert "benchmark" in err and "'nasbench101'" in err and "Traceback" not in err


def test_io_model_without_pretraining_says_what_to_run(capsys, tmp_path, data_dir):
    code = main(
        [
            "train",
            "--model",
            "io-embedding",
            "--profile",
            "smoke",
            "--io-data",
            str(tmp_path / "nothing"),
            "--data-dir",
            str(data_dir),
        ]
    )
    err = capsys.readouterr().err
    assert code == 2 and "gnn2gnn pretrain" in err


def test_pretrain_without_cifar_is_a_clear_error(capsys, tmp_path, data_dir):
    data = tmp_path / "data"
    data.mkdir()
    (data / "nasbench101.parquet").symlink_to(data_dir / "nasbench101.parquet")
    code = main(
        [
            "pretrain",
            "--profile",
            "smoke",
            "--data-dir",
            str(data),
            "--results",
            str(tmp_path / "out"),
        ]
    )
    err = capsys.readouterr().err
    assert code == 2 and "no CIFAR-10 found" in err and "cifar-10-python.tar.gz" in err


def test_the_older_experiment_name_still_works_with_a_message(tmp_path, capsys):
    from pipeline.experiment import validate_trial_config
    from pipeline.sweep.spec import load_sweep

    sweep = tmp_path / "old.yaml"
    sweep.write_text("name: old\ntrainable: io_embedding\nvariants: [{model: arch2vec}]\n")
    with pytest.warns(FutureWarning, match="'io_embedding' is now called 'infonas'"):
        spec = load_sweep(sweep, validate_trial_config)
    assert spec.trainable == "infonas"
    with pytest.raises(SystemExit) as done:  # `gnn2gnn train io_embedding --help`
        main(["train", "io_embedding", "--help"])
    assert done.value.code == 0 and "--latent" in capsys.readouterr().out
