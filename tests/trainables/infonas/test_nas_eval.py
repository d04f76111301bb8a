"""Info-NAS evaluations: the prediction protocol and the searches, on real NAS-Bench-101."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import pearsonr
from sklearn.ensemble import RandomForestRegressor

from trainables import infonas
from trainables.infonas import evaluate as nas_eval


@pytest.fixture(scope="module")
def view(nb101):
    """Latent features of the labelled cells from a small real arch2vec (smoke scale)."""
    result = infonas.run_trial(
        {
            "model": "arch2vec",
            "profile": "smoke",
            "epochs": 4,
            "max_cells": 4096,
            "export": "labelled",
            "evaluate": False,
            "seed": 0,
        },
        bench=nb101,
    )
    latent = pd.DataFrame(result.tables["latent"])
    return nas_eval.search_view(latent, nb101)


@pytest.mark.slow
def test_view_is_the_labelled_cells_with_their_training_time(view, nb101):
    # labelled (the default label: every repeat seen) and with a training time (repeat 1's,
    # the search's clock): a few cells seen only in other repeats have none
    timed = nb101.labelled & nb101.extra["train_time_108_r1"].notna().to_numpy()
    assert len(view.acc) == int(timed.sum()) and 30_001 <= len(view.acc) < nb101.num_labelled
    row = nb101.lookup(view.hashes[0])
    assert view.acc[0] == pytest.approx(nb101.accuracy[row] / 100)
    assert view.cost[0] == nb101.extra["train_time_108_r1"].iloc[row]
    assert view.best == pytest.approx(np.nanmax(nb101.accuracy[timed]) / 100)


@pytest.mark.slow
def test_prediction_protocol_matches_sklearn_and_scipy(view):
    pool = np.arange(3000)  # a small real subset
    z, acc = view.z[pool], view.acc[pool]
    rows = nas_eval.predict_performance(z, acc, [200], [0, 1], trees=20)
    assert [(r["train_size"], r["seed"]) for r in rows] == [(200, 0), (200, 1)]
    for r in rows:
        perm = np.random.default_rng(r["seed"]).permutation(len(acc))
        tr, te = perm[:200], perm[200:]
        te = te[acc[te] > 0.8]  # the paper's filter
        assert r["n_test"] == len(te) < len(acc) - 200
        f = RandomForestRegressor(n_estimators=20, random_state=r["seed"]).fit(z[tr], acc[tr])
        pred = f.predict(z[te])
        assert r["rmse"] == pytest.approx(np.sqrt(np.mean((pred - acc[te]) ** 2)))
        assert r["pearson_r"] == pytest.approx(pearsonr(pred, acc[te])[0])
    assert rows[0]["rmse"] != rows[1]["rmse"]  # seeds draw different train sets


@pytest.mark.slow
def test_prediction_refuses_a_train_size_larger_than_the_pool(view):
    with pytest.raises(ValueError, match="train size"):
        nas_eval.predict_performance(view.z[:100], view.acc[:100], [100], [0])


@pytest.mark.slow
def test_reinforce_never_revisits_and_respects_the_budget(view):
    budget = 2e5
    for seed in range(3):
        run = nas_eval.reinforce_search(view, budget, seed)
        assert len(set(run.visited)) == len(run.visited)
        assert all(t <= budget for t in run.times[:-1])  # only the last query may cross it
        clock = np.cumsum(view.cost[run.visited])
        assert np.allclose(run.times, clock)
        assert run.found == view.acc[run.visited].tolist()
    rnd = nas_eval.random_search(view, budget, 0)
    assert len(set(rnd.visited)) == len(rnd.visited) and rnd.times[-2] <= budget < rnd.times[-1]


def test_regret_curve_is_best_minus_best_so_far():
    run = nas_eval.SearchRun([0, 1, 2], [10.0, 20.0, 30.0], [0.5, 0.9, 0.7])
    grid = np.array([5.0, 10.0, 25.0, 40.0])
    reg = run.regret(grid, 1.0)
    assert np.isnan(reg[0]) and np.allclose(reg[1:], [0.5, 0.1, 0.1])


@pytest.mark.slow
def test_reinforce_beats_random_search_on_fixed_seeds(view):
    """Smoke scale (a 4-epoch arch2vec, 2e5 simulated seconds, 10 runs each)."""
    rows = pd.DataFrame(nas_eval.search_rows(view, runs=10, budget=2e5))
    final = rows[rows["time"] == rows["time"].max()].groupby("method")["regret"].mean()
    print(final.to_dict())
    assert final["reinforce"] < final["random"]


@pytest.mark.slow
def test_evaluate_command_on_a_latent_table(view, tmp_path, capsys, data_dir):
    import json

    from pipeline.cli import main

    latent = pd.DataFrame({"hash": view.hashes, **{f"z{j}": view.z[:, j] for j in range(16)}})
    latent.to_parquet(tmp_path / "latent.parquet")
    args = [
        "evaluate",
        str(tmp_path / "latent.parquet"),
        "--sizes",
        "100",
        "--seeds",
        "2",
        "--runs",
        "2",
        "--budget",
        "50000",
        "--out",
        str(tmp_path / "ev"),
        "--json",
        "--data-dir",
        str(data_dir),
    ]
    assert main(args) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["label"] == "val_acc_108_mean" and out["search_cells"] == len(view.hashes)
    assert len(pd.read_parquet(tmp_path / "ev" / "prediction.parquet")) == 2
    search = pd.read_parquet(tmp_path / "ev" / "search.parquet")
    assert set(search["method"]) == {"reinforce", "random"} and search["time"].max() == 50000
    assert main(["evaluate", str(tmp_path / "missing.parquet")]) == 2
