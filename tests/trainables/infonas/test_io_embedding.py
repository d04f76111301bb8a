"""IO-dataset preprocessing, arch2vec / IO-model trials, pretraining through Ray."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pandas as pd
import pytest
import torch

from pipeline.store.results import read_part, read_trials
from trainables import infonas
from trainables.infonas import IOTrial, make_config
from trainables.infonas.arch2vec import Arch2Vec
from trainables.infonas.config import decode_to_cells
from trainables.infonas.iodata import (
    Preprocess,
    load_io_dataset,
    mean_baseline_l1,
    preprocess_network,
)


def test_preprocessing_by_hand():
    # 2 images, 3 features, 2 classes; no scaling so the arithmetic is visible
    f = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    w = np.array([[0.5, -1.0, 2.0], [3.0, 0.0, 1.0]])
    b = np.array([0.25, -2.0])
    labels = np.array([0, 1])
    out = preprocess_network(f, w, b, labels, Preprocess(scale="none"))
    # image 0, class 0: features+1 = [1,2,3,1], weights [0.5,-1,2,0.25] -> sorted by weight
    # desc: 2 (f 3), 0.5 (f 1), 0.25 (bias 1), -1 (f 2) -> products [6, 0.5, 0.25, -2]
    # image 1, class 1: [4,5,6,1] x [3,0,1,-2] -> sorted: 3 (4), 1 (6), 0 (5), -2 (1)
    assert np.allclose(out, [[6, 0.5, 0.25, -2], [12, 6, 0, -2]])
    top = preprocess_network(f, w, b, labels, Preprocess(scale="none", top_k=2))
    assert np.allclose(top, [[6, 0.5], [12, 6]])
    # global scaling: one mean/std over all of the network's outputs, before the bias
    g = preprocess_network(f, w, b, labels, Preprocess(scale="global"))
    z = (f - 3.5) / f.std()
    assert np.isclose(g[0, 0], z[0, 2] * 2.0) and np.isclose(g[0, 2], 0.25)


@pytest.mark.slow
def test_labelled_unlabelled_schedule(nb101, pretrained):
    folder, _ = pretrained
    cfg = make_config(
        {
            "model": "io-embedding",
            "profile": "smoke",
            "io_data": str(folder),
            "export": "none",
            "labelled_run": 3,
            "unlabelled_run": 2,
            "evaluate": False,
        }
    )
    trial = IOTrial(cfg, nb101)
    trial._cell_order, trial._cursor = trial.rng.permutation(len(trial.train_rows)), 0
    kinds = "".join(k for k, _ in trial._schedule())
    n_lab = -(-len(trial.io.splits["train"]) // cfg.batch_size)  # every labelled pair once
    assert kinds.count("l") == n_lab
    runs = [(k, len(list(g))) for k, g in itertools.groupby(kinds)]
    labelled = [n for k, n in runs if k == "l"]
    assert [k for k, _ in runs] == ["l", "u"] * len(labelled)  # strictly alternating runs
    assert all(n == 3 for n in labelled[:-1]) and 1 <= labelled[-1] <= 3  # last may be short
    assert all(n == 2 for k, n in runs if k == "u")
    schedule = trial._schedule()
    pairs = np.concatenate([p for k, p in schedule if k == "l"])
    assert len({tuple(p) for p in pairs.tolist()}) == len(trial.io.splits["train"])


@pytest.mark.slow
def test_io_dataset_splits(pretrained):
    folder, summary = pretrained
    assert summary["finished"] == 3 and not summary["failed"]
    io = load_io_dataset(folder)
    images = json.loads((folder / "images.json").read_text())
    assert set(io.splits) == {
        "train",
        "valid_networks",
        "valid_images",
        "test_seen_networks",
        "test_unseen_networks",
    }
    tr, vn = io.splits["train"], io.splits["valid_networks"]
    assert tr.targets.shape == (2, len(images["io"]), io.dim)
    assert not set(tr.networks) & set(vn.networks)  # unseen networks are unseen
    assert io.splits["valid_images"].image_set == "test"
    # targets are standardised with the train split's column statistics
    flat = tr.targets.reshape(-1, io.dim)
    assert np.allclose(flat.mean(0), 0, atol=1e-4)
    assert mean_baseline_l1(vn.targets) > 0
    out = io.save(folder / "io_check")
    index = pd.read_parquet(out / "index.parquet")
    assert set(index["split"]) == set(io.splits)
    assert np.load(out / "train.npy").shape == tr.targets.shape


@pytest.mark.slow
def test_pretraining_reruns_nothing_finished(pretrained, data_dir):
    from trainables.infonas.pretrain import run_pretraining

    folder, _ = pretrained
    nets = pd.read_parquet(folder / "networks.parquet")
    assert len(nets) == 3 and set(nets["role"]) == {"train", "valid"}
    assert nets["test_acc"].between(0, 100).all() and (nets["seconds"] > 0).all()
    for h in nets["hash"]:
        files = {p.name for p in (folder / "networks" / h).iterdir()}
        assert {"checkpoint.pt", "features.npz", "done.json"} <= files
    before = {h: (folder / "networks" / h / "done.json").stat().st_mtime_ns for h in nets["hash"]}
    again = run_pretraining({"profile": "smoke", "data_dir": str(data_dir)}, folder, log=print)
    assert again["trained_now"] == 0 and again["finished"] == 3
    after = {h: (folder / "networks" / h / "done.json").stat().st_mtime_ns for h in nets["hash"]}
    assert before == after
    with pytest.raises(ValueError, match="another"):
        run_pretraining({"profile": "smoke", "data_dir": str(data_dir), "stem_channels": 4}, folder)


def test_decoding_the_targets_gives_back_the_cells(nb101):
    from pipeline.nas.cells import table_to_dense

    rows = np.arange(0, len(nb101), 5000)
    x, a, _ = table_to_dense(nb101.ops[rows], nb101.adjacency[rows], nb101.num_vertices[rows], 5, 7)
    classes = Arch2Vec.op_targets(x).numpy()
    hashes = decode_to_cells(classes, a.numpy().astype(np.uint8), nb101)
    assert hashes == nb101.hashes[rows].tolist()


@pytest.mark.slow
def test_arch2vec_reconstruction_improves(nb101):
    cfg = {
        "model": "arch2vec",
        "profile": "smoke",
        "epochs": 8,
        "max_cells": 2048,
        "export": "none",
        "seed": 1,
    }
    result = infonas.run_trial(cfg, bench=nb101)
    first, last = result.epochs[0], result.epochs[-1]
    assert last["vae_loss"] < first["vae_loss"]
    assert last["ops_acc"] > first["ops_acc"] + 0.1
    assert last["adj_acc"] > first["adj_acc"]
    again = infonas.run_trial(cfg, bench=nb101)  # same seed, same numbers on the CPU
    assert again.epochs[-1]["vae_loss"] == last["vae_loss"]


@pytest.mark.slow
def test_io_trial_reports_validation_losses_and_baselines(nb101, pretrained):
    folder, _ = pretrained
    result = infonas.run_trial(
        {"model": "io-embedding", "profile": "smoke", "io_data": str(folder), "latent_epochs": [1]},
        bench=nb101,
    )
    row = result.epochs[-1]
    for key in ("unseen_images", "unseen_networks"):
        assert row[f"val_l1_{key}"] > 0 and row[f"baseline_l1_{key}"] > 0
    assert row["labelled_batches"] > 0 and row["unlabelled_batches"] > 0
    latent = pd.DataFrame(result.tables["latent"])
    assert len(latent) == nb101.num_labelled and latent.filter(like="z").shape[1] == 16
    early = pd.DataFrame(result.tables["latent_e1"])  # after epoch 1 of 2
    assert early["hash"].tolist() == latent["hash"].tolist()
    assert not np.allclose(early["z0"], latent["z0"])
    pred = pd.DataFrame(result.tables["prediction"])
    assert set(pred["train_size"]) == {100, 250} and len(pred) == 6
    # the pretrained networks are never in the prediction pool
    # every labelled cell with a training time (the search's clock) is searched
    timed = nb101.labelled & nb101.extra["train_time_108_r1"].notna().to_numpy()
    assert result.metrics["search_cells"] == int(timed.sum())
    assert 0 <= result.metrics["validity"] <= 100
    assert torch.is_tensor(next(iter(result.state["model"].values())))


@pytest.fixture(scope="session")
def io_sweep(tmp_path_factory, pretrained, data_dir):
    """sweeps/io_embedding.yaml at smoke (2 seeds) through the CLI: real Ray Tune trials,
    Parquet and MLflow; the trials find the pretraining at results/pretrain-smoke."""
    import subprocess
    import sys
    from pathlib import Path

    import yaml

    root = next(p for p in Path(__file__).resolve().parents if (p / "pyproject.toml").is_file())
    work = tmp_path_factory.mktemp("io_sweep")
    (work / "results").mkdir()
    (work / "results" / "pretrain-smoke").symlink_to(pretrained[0])
    spec = yaml.safe_load((root / "sweeps" / "io_embedding.yaml").read_text())
    spec["seeds"] = 1
    (work / "io.yaml").write_text(yaml.safe_dump(spec))
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "pipeline.cli",
            "sweep",
            "io.yaml",
            "--profile",
            "smoke",
            "--results",
            "results",
            "--data-dir",
            str(data_dir),
        ],
        cwd=work,
        capture_output=True,
        text=True,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    return work / "results" / "io_embedding", json.loads(res.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_io_sweep_writes_parquet_tables_and_mlflow(io_sweep):
    import mlflow

    folder, summary = io_sweep
    assert summary["trials"] == 3 and not summary["failed"]
    trials = read_trials(folder)
    assert sorted(trials["model"]) == ["arch2vec", "arch2vec", "io-embedding"]
    assert sorted(trials["same_batches"]) == [False, False, True]
    assert (trials["status"] == "ok").all() and (trials["trainable"] == "infonas").all()
    io_rows = trials[trials["model"] == "io-embedding"]
    assert io_rows["val_l1_unseen_images"].notna().all()
    epochs = read_part(folder, "epochs")
    assert set(epochs["trial_id"]) == set(trials["trial_id"])
    for name in ("latent", "prediction", "search"):
        for tid in trials["trial_id"]:
            assert (folder / name / f"{tid}.parquet").is_file(), (name, tid)
    client = mlflow.MlflowClient(summary["mlflow"])
    exp = client.get_experiment_by_name("io_embedding")
    runs = client.search_runs([exp.experiment_id])
    assert len(runs) == 3 and {r.info.status for r in runs} == {"FINISHED"}
    arts = {a.path for a in client.list_artifacts(runs[0].info.run_id)}
    assert {"latent.parquet", "prediction.parquet", "search.parquet"} <= arts


@pytest.mark.slow
def test_infonas_tables_and_figures_from_the_sweep(io_sweep, tmp_path):
    from analysis.infonas import per_trial
    from analysis.report import write_report
    from analysis.stats import mean_ci

    folder, _ = io_sweep
    report = write_report(folder.parent, tmp_path)
    text = report.read_text()
    assert "Info-NAS" in text and "0.018 ± 0.001" in text and "arch2vec (IO batches)" in text
    for stem in ("prediction", "training", "search"):
        for ext in ("md", "csv", "tex"):
            assert (tmp_path / f"infonas_{stem}_io_embedding.{ext}").is_file()
    for fig in ("prediction", "regret", "validation_loss", "reconstruction"):
        png = tmp_path / f"infonas_{fig}_io_embedding.png"
        assert png.stat().st_size > 10_000
    # the table's numbers are the Parquet numbers
    pred = per_trial(folder, "prediction")
    table = pd.read_csv(tmp_path / "infonas_prediction_io_embedding.csv")
    for _, row in table[~table["model"].str.contains("published")].iterrows():
        g = pred[(pred.model == row["model"]) & (pred.train_size == row["train_size"])]
        assert np.isclose(row["rmse_mean"], g["rmse"].mean())
        mean, half, n = mean_ci(g["rmse"].to_numpy())
        assert f"± {half:.4f} (n={n})" in row["rmse"]
    tex = (tmp_path / "infonas_search_io_embedding.tex").read_text()
    assert tex.count(r"\begin{tabular}") == 1 and tex.count("{") == tex.count("}")


@pytest.mark.slow
def test_arch2vec_on_the_io_batches_follows_the_io_schedule(nb101, pretrained):
    folder, _ = pretrained
    base = {"profile": "smoke", "io_data": str(folder), "export": "none", "evaluate": False}
    io = IOTrial(make_config({**base, "model": "io-embedding"}), nb101)
    a2v = IOTrial(make_config({**base, "model": "arch2vec", "same_batches": True}), nb101)
    for t in (io, a2v):
        t._cell_order, t._cursor = t.rng.permutation(len(t.train_rows)), 0
    s_io, s_a2v = io._schedule(), a2v._schedule()
    assert [k for k, _ in s_io] == [k for k, _ in s_a2v]
    assert all(np.array_equal(p, q) for (_, p), (_, q) in zip(s_io, s_a2v, strict=True))
    assert np.array_equal(io.train_rows, a2v.train_rows)  # the same unlabelled cells
    result = a2v.run()
    assert "val_l1_unseen_images" not in result.metrics  # arch2vec predicts nothing
    assert result.epochs[-1]["labelled_batches"] > 0


def test_same_batches_is_for_arch2vec_only():
    from pipeline.config import ConfigError

    with pytest.raises(ConfigError, match="same_batches"):
        make_config({"model": "io-embedding", "same_batches": True})
