import math

import numpy as np
import pytest

from pipeline.metrics import Reference, generation_metrics


@pytest.fixture(scope="module")
def ref(nats):
    split = nats.split(top_n_removed=10, seed=0)
    return Reference.build(nats, split.train, acc_threshold=90.0), split


def test_metrics_on_a_hand_built_set(nats, ref):
    reference, split = ref
    best = int(np.argmax(nats.accuracy))  # in the top 5%, removed from training
    train_row = int(split.train[0])
    h_best, h_train = nats.hashes[best], nats.hashes[train_row]
    hashes = [h_best, h_best, h_train, None, "f" * 32]  # 4 valid, one outside the benchmark
    m = generation_metrics(hashes, reference)
    assert m["n_generated"] == 5 and m["n_valid"] == 4 and m["n_known"] == 3
    assert m["validity"] == pytest.approx(80.0)
    assert m["uniqueness"] == pytest.approx(75.0)  # 3 distinct of 4 valid
    assert m["novelty"] == pytest.approx(75.0)  # all but the training cell
    assert m["in_benchmark"] == pytest.approx(75.0) and m["coverage"] == pytest.approx(75.0)
    train_in_top = {p: h_train in reference.top[p] for p in (5, 10, 50)}
    for p in (5, 10, 50):
        assert m[f"top{p}"] == pytest.approx(100 * (2 + train_in_top[p]) / 3)
    acc = [nats.accuracy[best]] * 2 + [nats.accuracy[train_row]]
    assert m["mean_acc"] == pytest.approx(np.mean(acc))
    assert m["acc_n"] == pytest.approx(100 * np.mean(np.array(acc) > 90.0))


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
