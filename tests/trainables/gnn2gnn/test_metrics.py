import math

import numpy as np
import pytest

from trainables.gnn2gnn.metrics import Reference, generation_metrics, reference_metrics


@pytest.fixture(scope="module")
def ref(nats):
    split = nats.split(top_n_removed=10, seed=0)
    return Reference.build(nats, split.train, acc_threshold=90.0), split


def test_metrics_on_a_hand_built_set(nats, ref):
    reference, split = ref
    best = int(np.argmax(nats.accuracy))  # in the top 5%, removed from training
    train_row = int(split.train[0])
    h_best, h_train = nats.hashes[best], nats.hashes[train_row]
    # a graph that passes the generic rules but is no NATS architecture ("f" * 32) is invalid:
    # the NATS table is complete, so being in the space means being in it
    hashes = [h_best, h_best, h_train, None, "f" * 32]
    m = generation_metrics(hashes, reference)
    assert m["n_generated"] == 5 and m["n_valid"] == 3 and m["n_known"] == 3
    assert m["n_unique"] == 2
    assert m["validity"] == pytest.approx(60.0)
    assert m["uniqueness"] == pytest.approx(100 * 2 / 3)
    assert m["novelty"] == pytest.approx(100 * 2 / 3)  # the best cell twice, not the train one
    assert m["in_benchmark"] == pytest.approx(100.0) and m["coverage"] == pytest.approx(100.0)
    train_in_top = {p: h_train in reference.top[p] for p in (5, 10, 50)}
    for p in (5, 10, 50):
        assert m[f"top{p}"] == pytest.approx(100 * (2 + train_in_top[p]) / 3)
    acc = [nats.accuracy[best]] * 2 + [nats.accuracy[train_row]]
    assert m["mean_acc"] == pytest.approx(np.mean(acc))
    assert m["acc_n"] == pytest.approx(100 * np.mean(np.array(acc) > 90.0))


def test_out_of_space_nats_graph_is_invalid_and_never_novel(nats, ref):
    # a chain of four 3x3 convolutions: valid by the generic rules, but deeper than any NATS
    # cell (its longest input-output path has at most 3 op nodes)
    from pipeline.nas.cells import Cell
    from pipeline.nas.spaces import NATSBENCH

    ops = ("input", *["nor_conv_3x3"] * 4, "output")
    adj = np.eye(6, k=1, dtype=np.uint8)
    found = Cell(ops, adj)
    assert found.is_valid(NATSBENCH)
    h = found.hash(NATSBENCH)
    assert not nats.in_space(h)
    m = generation_metrics([h, h], ref[0])
    assert m["validity"] == 0.0 and m["n_valid"] == 0 and math.isnan(m["novelty"])


def test_all_cells_metrics_are_known_cell_metrics_rescaled(nb101):
    split = nb101.split(top_n_removed=10, seed=0)
    reference = Reference.build(nb101, split.train, acc_threshold=90.0)
    rng = np.random.default_rng(0)
    rows = rng.choice(len(nb101), 400, replace=False)
    labelled = np.flatnonzero(nb101.labelled)
    rows = np.concatenate([rows, rng.choice(labelled, 100)])  # some known cells, repeats
    hashes = nb101.hashes[rows].tolist() + [None] * 7
    m = generation_metrics(hashes, reference)
    assert 0 < m["n_known"] < m["n_valid"] < m["n_generated"]
    for name in ("top5", "top10", "top50", "acc_n"):
        assert m[f"{name}_all"] == pytest.approx(m[name] * m["n_known"] / m["n_generated"])


def test_reference_rows_equal_their_analytic_values(nats, ref):
    reference, split = ref
    k = 10_000
    uniform, copy = reference_metrics(reference, k)
    m = len(nats)  # NATS is fully labelled
    assert uniform["reference"] == "uniform" and copy["reference"] == "copy_train"
    for p in (5, 10, 50):  # the best ceil(p% of M) cells, drawn with probability 1/M each
        assert uniform[f"top{p}"] == pytest.approx(100 * math.ceil(m * p / 100) / m)
        assert abs(uniform[f"top{p}"] - p) < 100 / m
    assert uniform["mean_acc"] == pytest.approx(nats.accuracy.mean())
    assert uniform["novelty"] == pytest.approx(100 * (1 - len(split.train) / m))
    assert uniform["n_unique"] == pytest.approx(m * (1 - (1 - 1 / m) ** k))
    assert copy["novelty"] == 0.0 and copy["top5"] == 0.0  # the best 10% were removed
    assert copy["mean_acc"] == pytest.approx(nats.accuracy[split.train].mean())
    assert copy["acc_n_all"] == pytest.approx(100 * np.mean(nats.accuracy[split.train] > 90))


def test_metrics_with_nothing_valid_are_nan_not_zero(ref):
    m = generation_metrics([None, None], ref[0])
    assert m["validity"] == 0.0
    assert math.isnan(m["novelty"]) and math.isnan(m["top10"]) and math.isnan(m["mean_acc"])


def test_partially_labelled_metrics_use_known_cells_only(nb101):
    split = nb101.split(top_n_removed=10, seed=0)
    reference = Reference.build(nb101, split.train, acc_threshold=90.0)
    unlabelled = nb101.hashes[np.flatnonzero(~nb101.labelled)[:3]].tolist()
    labelled = nb101.hashes[split.train[:1]].tolist()
    m = generation_metrics(unlabelled + labelled, reference)
    assert m["in_benchmark"] == 100.0
    assert m["coverage"] == pytest.approx(25.0)
    assert m["mean_acc"] == pytest.approx(nb101.accuracy[split.train[0]])
