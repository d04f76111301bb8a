import numpy as np
import pytest

from pipeline.nas.cells import Cell, CellError, cells_to_dense, graph_hash, parse_cell
from pipeline.nas.spaces import ARCH2VEC_NB101_ORDER, NASBENCH101, NATSBENCH, get_space

INCEPTION_OPS = [
    "input",
    "conv1x1-bn-relu",
    "conv3x3-bn-relu",
    "conv3x3-bn-relu",
    "conv3x3-bn-relu",
    "maxpool3x3",
    "output",
]
INCEPTION_MATRIX = [
    [0, 1, 1, 1, 0, 1, 0],
    [0, 0, 0, 0, 0, 0, 1],
    [0, 0, 0, 0, 0, 0, 1],
    [0, 0, 0, 0, 1, 0, 0],
    [0, 0, 0, 0, 0, 0, 1],
    [0, 0, 0, 0, 0, 0, 1],
    [0, 0, 0, 0, 0, 0, 0],
]


def test_inception_cell_hash_matches_nasbench_readme():
    cell = Cell.from_lists(INCEPTION_OPS, INCEPTION_MATRIX)
    assert cell.hash(NASBENCH101) == "28cfc7874f6d200472e1a9dcd8650aa0"
    assert cell.is_valid(NASBENCH101)


def test_hash_is_invariant_to_vertex_relabelling():
    cell = Cell.from_lists(INCEPTION_OPS, INCEPTION_MATRIX)
    # swap interior vertices 1 and 2 (both feed only the output): same graph, other order
    perm = [0, 2, 1, 3, 4, 5, 6]
    adj = np.array(INCEPTION_MATRIX)[np.ix_(perm, perm)]
    other = Cell.from_lists([INCEPTION_OPS[i] for i in perm], adj)
    assert other != cell
    assert other.hash(NASBENCH101) == cell.hash(NASBENCH101)


def test_hash_accepts_numpy_ints_like_python_ints():
    adj = np.array(INCEPTION_MATRIX, dtype=np.int64)
    labels = [np.int64(x) for x in [-1, 1, 0, 0, 0, 2, -2]]
    assert graph_hash(adj, labels) == "28cfc7874f6d200472e1a9dcd8650aa0"


def test_prune_removes_vertices_off_every_path_keeping_order():
    ops = ["input", "conv3x3-bn-relu", "maxpool3x3", "conv1x1-bn-relu", "output"]
    adj = np.zeros((5, 5), dtype=int)
    adj[0, 1] = adj[1, 4] = 1  # on the path
    adj[0, 2] = 1  # dead end: reachable from input, does not reach output
    adj[3, 4] = 1  # not reachable from input
    pruned = Cell.from_lists(ops, adj).prune()
    assert pruned.ops == ("input", "conv3x3-bn-relu", "output")
    assert pruned.matrix_string() == "010001000"


def test_prune_without_path_is_none_and_parse_says_so():
    cell = Cell.from_matrix_string(["input", "conv3x3-bn-relu", "output"], "010000000")
    assert cell.prune() is None
    with pytest.raises(CellError, match="no input-to-output path"):
        parse_cell(NASBENCH101, ["input", "conv3x3-bn-relu", "output"], "010000000")


@pytest.mark.parametrize(
    "ops, matrix, message",
    [
        (["input", "conv5x5", "output"], "011001000", "unknown op 'conv5x5'"),
        (["input", "conv3x3-bn-relu", "output"], "0110010", "has 7 characters"),
        (["input", "conv3x3-bn-relu", "output"], "01100100x", "only '0' and '1'"),
        (["input", "conv3x3-bn-relu", "output"], "011101000", "upper-triangular"),
        (["conv3x3-bn-relu", "input", "output"], "011001000", "first op must be 'input'"),
    ],
)
def test_bad_cells_raise_clear_errors(ops, matrix, message):
    with pytest.raises(CellError, match=message):
        parse_cell(NASBENCH101, ops, matrix)


def test_more_than_seven_vertices_after_pruning_is_an_error():
    ops = ["input"] + ["conv3x3-bn-relu"] * 6 + ["output"]
    adj = np.zeros((8, 8), dtype=int)
    for i in range(7):
        adj[i, i + 1] = 1
    matrix = "".join(str(x) for x in adj.reshape(-1))
    with pytest.raises(CellError, match="8 vertices after pruning"):
        parse_cell(NASBENCH101, ops, matrix)
    # the same chain is fine in the 8-node NATS space once ops are renamed
    nats_ops = ["input"] + ["nor_conv_3x3"] * 6 + ["output"]
    _, pruned = parse_cell(NATSBENCH, nats_ops, matrix)
    assert pruned.is_valid(NATSBENCH)


def test_more_than_nine_edges_is_invalid():
    ops = ["input"] + ["conv3x3-bn-relu"] * 5 + ["output"]
    adj = np.triu(np.ones((7, 7), dtype=int), 1)  # 21 edges
    cell = Cell.from_lists(ops, adj)
    assert "21 edges > 9" in cell.validity_error(NASBENCH101)


def test_dense_tensors_put_output_on_last_slot():
    cell = Cell.from_lists(["input", "maxpool3x3", "output"], [[0, 1, 1], [0, 0, 1], [0, 0, 0]])
    x, a, mask = cells_to_dense([cell], NASBENCH101, 7)
    assert x.shape == (1, 7, 5) and a.shape == (1, 7, 7) and mask.shape == (1, 7)
    assert mask[0].tolist() == [True, True, False, False, False, False, True]
    assert x[0, 0].argmax() == 0 and x[0, 1].argmax() == 3 and x[0, 6].argmax() == 4
    assert x[0, 2:6].sum() == 0
    assert a[0, 0, 1] == a[0, 0, 6] == a[0, 1, 6] == 1 and a.sum() == 3


def test_one_vocabulary_per_space_and_conversion_at_the_edge():
    assert get_space("nasbench101") is NASBENCH101
    assert NASBENCH101.ops == (
        "input",
        "conv3x3-bn-relu",
        "conv1x1-bn-relu",
        "maxpool3x3",
        "output",
    )
    assert [NASBENCH101.hash_label(i) for i in range(5)] == [-1, 0, 1, 2, -2]
    assert NASBENCH101.reorder_from(ARCH2VEC_NB101_ORDER) == [0, 2, 1, 3, 4]
    with pytest.raises(ValueError, match="unknown search space"):
        get_space("darts")
