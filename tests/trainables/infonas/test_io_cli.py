"""Command-line errors of the IO-embedding commands: one line, exit 2, no traceback."""

from __future__ import annotations

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
