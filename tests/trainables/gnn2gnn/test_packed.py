"""Trial packing: P GNN2GNN trials as one batched model give each trial its own training."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import numpy as np
import pytest
import torch
from scipy import stats

from trainables.gnn2gnn import EXPERIMENT, make_config, run_packed, run_trial
from trainables.gnn2gnn.packed import LOSS_NAMES, PackedTrainer, pack_key
from trainables.gnn2gnn.trial import Trial

SMOKE = {"benchmark": "natsbench", "profile": "smoke", "device": "cpu"}


def _first_steps(variants: list[dict], nats, steps: int = 1):
    """Losses and weights after ``steps`` steps, unpacked (one trial at a time) and packed
    (the same configs, fresh trials): the same batches, seeds and initial weights."""
    configs = [make_config({**SMOKE, **v}) for v in variants]
    alone = [Trial(c, nats) for c in configs]
    together = [Trial(c, nats) for c in configs]
    trainer = PackedTrainer(together)
    for t in alone + together:
        t.begin()
    idx = [t.epoch_order()[:32] for t in alone]
    assert all(torch.equal(i, t.epoch_order()[:32]) for i, t in zip(idx, together, strict=True))
    lam = [c.lam for c in configs]
    for _ in range(steps):
        single = [
            torch.stack(list(t.step(i, lam[n]).values()))
            for n, (t, i) in enumerate(zip(alone, idx, strict=True))
        ]
        packed = trainer.step(torch.stack(idx), lam)
    return torch.stack(single), packed, alone, together


@pytest.mark.parametrize(
    "common",
    [
        {},
        {"optimizer": "adam", "valuer": "R", "momentum": 0.0},
        {"optimizer": "sgd", "momentum": 0.9, "weight_decay": 1e-4, "pooling": "sum"},
        {"valuer_on_generated": False, "minibatch_std": False, "edge_scorer": "sigmoid"},
        {"model": "gnn2gnn_edges", "entropy_weight": 0.1},
    ],
)
def test_first_step_equals_the_unpacked_step(common, nats):
    """Three trials differing in seed, lambda, tau and lr: the first step's losses equal
    those of each trial trained alone (1e-5), and with SGD the weights after it too (Adam's
    first update, lr * g / (|g| + eps), turns rounding in gradients near eps into visible
    weight differences; packed trials step torch's own Adam, a parameter group each)."""
    variants = [
        {**common, "seed": 0, "lambda": 0.1, "tau": 0.1, "lr": 1e-3},
        {**common, "seed": 1, "lambda": 0.5, "tau": 0.5, "lr": 3e-3},
        {**common, "seed": 2, "lambda": 1.0, "tau": 1.0, "lr": 1e-2, "lr_critic": 2e-3},
    ]
    single, packed, alone, together = _first_steps(variants, nats)
    assert packed.shape == (3, len(LOSS_NAMES))
    torch.testing.assert_close(packed, single, atol=1e-5, rtol=1e-5)
    if common.get("optimizer") == "adam":
        return
    for a, b in zip(alone, together, strict=True):
        for m_a, m_b in ((a.gen, b.gen), (a.disc, b.disc), (a.valuer, b.valuer)):
            for (name, p_a), p_b in zip(m_a.named_parameters(), m_b.parameters(), strict=True):
                torch.testing.assert_close(p_b, p_a, atol=1e-5, rtol=1e-5, msg=name)


def test_packed_training_is_deterministic_and_reports_every_trial(nats):
    configs = [make_config({**SMOKE, "seed": s}) for s in (3, 4)]
    rows: list[list[dict]] = [[], []]
    reporters = [rows[0].append, rows[1].append]
    first = run_packed(configs, reporters, bench=nats)
    again = run_packed(configs, bench=nats)
    for a, b in zip(first, again, strict=True):
        assert a.metrics["packed"] == 2
        for key in ("top10", "mean_acc", "uniqueness", "validity", "selected_epoch"):
            assert a.metrics[key] == b.metrics[key] or (
                math.isnan(a.metrics[key]) and math.isnan(b.metrics[key])
            )
        assert [r["d_loss"] for r in a.epochs] == [r["d_loss"] for r in b.epochs]
    assert [len(r) for r in rows] == [configs[0].epochs] * 2
    assert rows[0][0]["d_loss"] != rows[1][0]["d_loss"]  # each trial its own losses
    # the structure reference rows come from each trial's untrained generator, as unpacked
    for cfg, res in zip(configs, first, strict=True):
        alone = run_trial(cfg, bench=nats)
        init = [r for r in res.tables["reference"] if r["reference"].startswith("init_")]
        assert len(init) == 2
        assert init == [r for r in alone.tables["reference"] if r["reference"].startswith("init_")]


@pytest.mark.slow
def test_packed_and_unpacked_final_metrics_are_statistically_the_same(nats):
    """5 seeds at the smoke profile, unpacked and packed: no final metric differs (Welch's
    t-test, p > 0.01; identical samples count as the same)."""
    seeds = range(5)
    alone = [run_trial({**SMOKE, "seed": s}, bench=nats).metrics for s in seeds]
    packed = [
        r.metrics
        for r in run_packed([make_config({**SMOKE, "seed": s}) for s in seeds], bench=nats)
    ]
    for key in ("validity", "uniqueness", "novelty", "top10", "mean_acc", "acc_n"):
        a = np.array([m[key] for m in alone])
        b = np.array([m[key] for m in packed])
        if np.allclose(a, b, equal_nan=True):
            continue
        p = stats.ttest_ind(a, b, equal_var=False, nan_policy="omit").pvalue
        assert p > 0.01, (key, a, b)


def test_which_trials_pack_together():
    base = {**SMOKE, "seed": 0}
    key = pack_key(make_config(base))
    assert key is not None
    for same in ({"seed": 5}, {"lambda": 0.5}, {"tau": 1.0}, {"lr": 0.01}, {"lr_critic": 0.1}):
        assert pack_key(make_config({**base, **same})) == key, same
    for other in ({"mu": 3}, {"hidden": 32}, {"optimizer": "adam"}, {"benchmark": "nasbench101"}):
        assert pack_key(make_config({**base, **other})) != key, other
    for alone in ({"model": "random"}, {"model": "molgan"}, {"entropy_weight": 0.1}):
        assert pack_key(make_config({**base, **alone})) is None, alone
    edges = {**base, "model": "gnn2gnn_edges", "entropy_weight": 0.1}
    assert pack_key(make_config(edges)) not in (None, key)
    assert pack_key(make_config({**edges, "seed": 3, "lr": 0.01})) == pack_key(make_config(edges))
    configs = [{**base, "seed": s} for s in range(5)] + [{**base, "model": "random"}]
    configs.insert(2, {**base, "mu": 3})
    assert EXPERIMENT.pack_groups(configs, 2) == [[0, 1], [2], [3, 4], [5], [6]]
    assert EXPERIMENT.pack_groups(configs, 1) == [[i] for i in range(7)]
    assert EXPERIMENT.pack_groups(configs, 8) == [[0, 1, 3, 4, 5], [2], [6]]


def test_mixed_trials_are_refused_with_the_reason(nats):
    t = [Trial(make_config({**SMOKE, "seed": 0}), nats)]
    with pytest.raises(ValueError, match="differ in more than"):
        PackedTrainer(t + [Trial(make_config({**SMOKE, "mu": 3}), nats)])
    with pytest.raises(ValueError, match="model 'random'"):
        PackedTrainer(t + [Trial(make_config({**SMOKE, "model": "random"}), nats)])


def test_cli_train_seeds_prints_one_json_line_per_seed(data_dir, tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "pipeline.cli", "train", "--benchmark", "natsbench"]
        + ["--profile", "smoke", "--seeds", "0,2", "--json", "--data-dir", str(data_dir)]
        + ["--out", str(tmp_path)],
        capture_output=True,
        text=True,
        check=True,
    )
    lines = [json.loads(line) for line in out.stdout.splitlines()]
    assert [r["seed"] for r in lines] == [0, 2]
    assert all(r["packed"] == 2 for r in lines)
    assert "packed" in out.stderr
    assert {p.name for p in tmp_path.iterdir()} == {"seed-0", "seed-2"}
    bad = subprocess.run(
        [sys.executable, "-m", "pipeline.cli", "train", "--seeds", "1,x"],
        capture_output=True,
        text=True,
    )
    assert bad.returncode != 0 and "--seeds" in bad.stderr
