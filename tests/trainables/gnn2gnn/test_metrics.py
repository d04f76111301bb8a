import math

import numpy as np
import pandas as pd
import pytest

from pipeline.nas.decode import pack_keys
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


# --- the authors' semantics (metrics: authors) ---------------------------------------------


def _slots(cells, space, n):
    """Cells -> (codes [B, n] with absent = num_ops, adjacency [B, n, n]) in their own
    vertex order, as a generator's slots."""
    codes = np.full((len(cells), n), space.num_ops, dtype=np.int64)
    adj = np.zeros((len(cells), n, n), dtype=np.uint8)
    for i, (ops, a) in enumerate(cells):
        codes[i, : len(ops)] = [space.op_index(o) for o in ops]
        adj[i, : len(ops), : len(ops)] = a
    return codes, adj


def test_authors_form_prunes_keeps_no_path_as_two_vertices_and_has_no_edge_rule():
    from pipeline.nas.cells import Cell
    from pipeline.nas.spaces import NASBENCH101 as S
    from trainables.gnn2gnn.metrics import authors_form

    c3, c1, mp = "conv3x3-bn-relu", "conv1x1-bn-relu", "maxpool3x3"
    dead = np.zeros((4, 4), dtype=np.uint8)
    dead[0, 1] = dead[1, 3] = dead[0, 2] = 1  # node 2 has no output: pruned
    nopath = np.zeros((3, 3), dtype=np.uint8)
    nopath[0, 1] = 1  # input -> conv, nothing reaches the output
    dense = np.eye(7, k=1, dtype=np.uint8)  # a chain (6 edges) and 4 skips: 10 edges
    dense[0, 2] = dense[0, 3] = dense[1, 4] = dense[2, 6] = 1
    assert not Cell(("input", c3, c1, mp, c3, c1, "output"), dense).is_valid(S)  # clean: > 9
    lower = np.zeros((3, 3), dtype=np.uint8)
    lower[0, 2] = lower[2, 1] = lower[0, 1] = 1  # input -> output -> conv: a backward edge
    cells = [
        (("input", c3, mp, "output"), dead),
        (("input", c1, "output"), nopath),
        (("input", c3, c1, mp, c3, c1, "output"), dense),
        ((c3, "input", "output"), np.eye(3, k=1, dtype=np.uint8)),  # input not first
        (("input", c3, "output"), lower),
    ]
    codes, adj, valid = authors_form(*_slots(cells, S, 7), S.num_ops)
    assert valid.tolist() == [True, True, True, False, False]
    k = S.num_ops
    assert codes[0, :3].tolist() == [0, S.op_index(c3), k - 1] and (codes[0, 3:] == k).all()
    assert adj[0, :3, :3].astype(int).tolist() == [[0, 1, 0], [0, 0, 1], [0, 0, 0]]
    assert codes[1, :2].tolist() == [0, k - 1] and (codes[1, 2:] == k).all()
    assert adj[1].sum() == 1 and adj[1, 0, 1]
    assert adj[2].sum() == 10  # authors: valid, no 9-edge rule


def test_authors_match_is_by_stored_labelling_not_by_isomorphism(nb101):
    from pipeline.nas.cells import Cell
    from pipeline.nas.spaces import NASBENCH101 as S
    from trainables.gnn2gnn.metrics import AuthorsTable

    c3, c1 = "conv3x3-bn-relu", "conv1x1-bn-relu"
    a = np.zeros((4, 4), dtype=np.uint8)
    a[0, 1] = a[0, 2] = a[1, 3] = a[2, 3] = 1  # two parallel branches
    row = nb101.lookup(Cell(("input", c3, c1, "output"), a).hash(S))
    stored = nb101.cell(row)
    swapped = (stored.ops[0], stored.ops[2], stored.ops[1], stored.ops[3])
    assert Cell(swapped, a).hash(S) == nb101.hashes[row]  # isomorphic: the same clean cell
    labelled = np.flatnonzero(nb101.labelled)
    table = AuthorsTable.build(nb101, labelled[:100], acc_threshold=90.0, slots=7)
    codes, adj = _slots([(stored.ops, stored.adjacency), (swapped, a)], S, 7)
    m = table.metrics(codes, adj)
    assert m["validity_authors"] == 100.0 and m["n_matched_authors"] == 1.0
    assert m["in_benchmark_authors"] == 50.0 and m["uniqueness_authors"] == 100.0


def test_authors_denominators_and_ranking(nb101):
    from pipeline.nas.spaces import NASBENCH101 as S
    from trainables.gnn2gnn.metrics import AuthorsTable

    labelled = np.flatnonzero(nb101.labelled)
    n = len(labelled)
    order = labelled[np.argsort(nb101.accuracy[labelled], kind="stable")]
    train = order[: n // 2]  # the weaker half
    table = AuthorsTable.build(nb101, train, acc_threshold=91.0, slots=7)
    finite = np.isfinite(table.rank)
    assert finite.sum() == n and table.rank[finite].min() == pytest.approx(100.0 / n)
    for p in (5, 10, 50):  # the authors' percentile: 100 - i / n * 100 <= p
        assert (table.rank <= p).sum() == n - math.ceil(n * (1 - p / 100))
    best, weak = int(order[-1]), int(order[0])
    unlabelled = int(np.flatnonzero(~nb101.labelled)[0])
    cells = [nb101.cell(r) for r in (best, best, weak, unlabelled)]
    slots = [(c.ops, c.adjacency) for c in cells]
    slots.append(((S.interior_ops[0], "input", "output"), np.eye(3, k=1, dtype=np.uint8)))
    m = table.metrics(*_slots(slots, S, 7))
    assert m["validity_authors"] == 80.0  # the last is invalid; all of it is in K = 5
    assert m["n_matched_authors"] == 4.0 and m["n_known_authors"] == 3.0
    assert m["top5_authors"] == pytest.approx(40.0)  # the best twice, over all K
    assert m["uniqueness_authors"] == pytest.approx(60.0)  # encodings seen exactly once
    assert m["novelty_authors"] == pytest.approx(60.0)  # valid and not a training cell
    acc = nb101.accuracy[[best, best, weak]]
    assert m["mean_acc_authors"] == pytest.approx(acc.mean())  # over matched known cells
    assert m["acc_n_authors"] == pytest.approx(100 * np.mean(acc >= 91.0))


def test_authors_nats_table_holds_every_architectures_labelling(nats):
    from trainables.gnn2gnn.metrics import AuthorsTable

    forms = nats.labellings()
    assert len(forms.row) > len(nats) and set(forms.row.tolist()) == set(range(len(nats)))
    table = AuthorsTable.build(nats, np.arange(10), acc_threshold=90.0, slots=8)
    assert len(nats) < len(table.keys) <= len(forms.row)
    # each labelling of a cell is matched, with the lowest accuracy among its duplicates
    codes = np.full((len(forms.row), 8), nats.space.num_ops, dtype=np.int64)
    v = forms.ops.shape[1]
    codes[:, :v] = np.where(forms.ops >= 0, forms.ops, nats.space.num_ops)
    m = table.metrics(codes, forms.adjacency)
    assert m["in_benchmark_authors"] == 100.0 and m["validity_authors"] == 100.0
    # the same computed apart: per raw encoding the lowest accuracy, averaged over all forms
    keys = pack_keys(codes, forms.adjacency, nats.space.num_ops)
    lowest = pd.Series(forms.accuracy).groupby(keys).transform("min")
    assert m["mean_acc_authors"] == pytest.approx(lowest.mean())
    n = len(table.keys)  # the percentile over the de-duplicated encodings
    assert (table.rank <= 5).sum() == n - math.ceil(n * 0.95)


def test_keys_round_trip_and_transfer_renames_slots(nb101, nats):
    from pipeline.nas.decode import CellDecoder, TranslatingDecoder, unpack_keys
    from pipeline.nas.spaces import NASBENCH101, NATSBENCH, OP_TRANSFER

    rng = np.random.default_rng(0)
    codes = rng.integers(0, NASBENCH101.num_ops + 1, size=(50, 7))
    adj = np.triu(rng.integers(0, 2, size=(50, 7, 7)), 1).astype(np.uint8)
    keys = pack_keys(codes, adj, NASBENCH101.num_ops)
    back_codes, back_adj = unpack_keys(keys, 7, NASBENCH101.num_ops)
    assert (back_codes == codes).all() and (back_adj == adj).all()
    source = CellDecoder(NASBENCH101, 7, table=nb101)
    moved = TranslatingDecoder(source, NATSBENCH, OP_TRANSFER[("nasbench101", "natsbench")])
    renamed, same_adj = moved.slots(keys)
    assert (same_adj == adj).all()
    for c, r in zip(codes.ravel().tolist(), renamed.ravel().tolist(), strict=True):
        if c == NASBENCH101.num_ops:
            assert r == NATSBENCH.num_ops  # absent stays absent
        else:
            name = NASBENCH101.ops[c]
            assert NATSBENCH.ops[r] == moved.mapping[name]
