import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.nas.cells import Cell, cells_to_dense, on_path_mask, table_to_dense
from pipeline.nas.decode import CellDecoder
from pipeline.nas.graphs import Graphs, refine
from pipeline.nas.spaces import NASBENCH101, NATSBENCH
from trainables.gnn2gnn.critics import Discriminator, Valuer
from trainables.gnn2gnn.generators import (
    ErdosRenyiGenerator,
    Generator,
    MolGANGenerator,
    RNNGenerator,
)
from trainables.gnn2gnn.layers import DirectedDenseConv, gumbel_sigmoid_st, gumbel_softmax_st

K = NASBENCH101.num_ops


def _generators(n=7):
    return [
        Generator(num_ops=K, num_nodes=n, mu=2, tau=0.1, noise_dim=8, hidden=16),
        MolGANGenerator(num_ops=K, num_nodes=n, tau=0.1, noise_dim=8, hidden=16),
        RNNGenerator(num_ops=K, num_nodes=n, tau=0.1, noise_dim=8, hidden=16),
        ErdosRenyiGenerator(num_ops=K, num_nodes=n, p=0.4),
    ]


@pytest.mark.parametrize("gen", _generators(), ids=lambda g: type(g).__name__)
def test_generator_shapes_masks_and_dag(gen):
    g = gen(64, torch.Generator().manual_seed(0))
    assert g.x.shape == (64, 7, K) and g.adj.shape == (64, 7, 7) and g.mask.shape == (64, 7)
    assert torch.all(torch.tril(g.adj) == 0), "edges only from earlier to later slots"
    assert set(g.x.detach().unique().tolist()) <= {0.0, 1.0}
    assert set(g.adj.detach().unique().tolist()) <= {0.0, 1.0}
    # present nodes carry exactly one op; absent nodes carry nothing and have no edges
    assert torch.equal(g.x.detach().sum(-1) == 1, g.mask)
    absent = ~g.mask
    assert g.adj.detach()[absent.unsqueeze(2).expand(-1, -1, 7)].sum() == 0
    assert g.adj.detach()[absent.unsqueeze(1).expand(-1, 7, -1)].sum() == 0


def test_dense_conv_matches_per_graph_computation():
    conv = DirectedDenseConv(5, 4)
    x = torch.randn(3, 6, 5)
    adj = torch.rand(3, 6, 6).triu(1)
    out = conv(x, adj)
    w_root, w_pred, w_succ = conv.lin.weight.split(4, 0)
    b_root = conv.lin.bias[:4]
    b_pred, b_succ = conv.lin.bias[4:8], conv.lin.bias[8:]
    for i in range(3):
        ref = (
            x[i] @ w_root.T
            + b_root
            + adj[i].T @ (x[i] @ w_pred.T + b_pred)
            + adj[i] @ (x[i] @ w_succ.T + b_succ)
        )
        assert torch.allclose(out[i], ref, atol=1e-5)
    assert repr(conv) == "DirectedDenseConv(5, 4)"


def test_dense_conv_gives_the_same_bits_on_large_batches_without_gradient():
    """Generation (no gradient, >= 4,096 node rows) pads the projection to a multiple of 16
    outputs for speed: the same values bit for bit, and the same with a gradient."""
    torch.manual_seed(0)
    conv = DirectedDenseConv(100, 100)  # 300 outputs, padded to 304
    x = torch.rand(600, 8, 100)
    adj = (torch.rand(600, 8, 8) < 0.5).float().triu(1)
    with torch.no_grad():
        padded = conv._project(x)
        plain = conv.lin(x)
        out = conv(x, adj)
    assert padded.shape[-1] == 304 and torch.equal(padded[..., :300], plain)
    root, pred, succ = plain.split(100, dim=-1)
    assert torch.equal(out, root + torch.bmm(adj.transpose(1, 2), pred) + torch.bmm(adj, succ))
    assert torch.equal(conv(x, adj).detach(), out)  # with a gradient: the plain projection


def test_dense_conv_reads_a_spectral_norm_weight_once_per_forward():
    """Each read of a spectral-norm weight runs a power iteration: one read per call."""
    conv = DirectedDenseConv(8, 8)
    conv.lin = torch.nn.utils.parametrizations.spectral_norm(conv.lin)
    calls = []
    conv.lin.parametrizations.weight[0].register_forward_hook(lambda *a: calls.append(1))
    x, adj = torch.rand(4, 5, 8), torch.rand(4, 5, 5).triu(1)
    conv(x, adj)
    with torch.no_grad():
        conv(torch.rand(1000, 5, 8), torch.rand(1000, 5, 5).triu(1))  # 5,000 rows
    assert len(calls) == 2


@pytest.mark.parametrize("mode", ["C", "R"])
def test_critics_output_one_value_per_graph_and_ignore_absent_nodes(mode):
    cell = Cell.from_lists(["input", "maxpool3x3", "output"], [[0, 1, 1], [0, 0, 1], [0, 0, 0]])
    x, a, m = cells_to_dense([cell], NASBENCH101, 7)
    for critic in (Discriminator(num_ops=K, nu=2, hidden=8), Valuer(num_ops=K, mode=mode)):
        out = critic(Graphs(x, a, m))
        assert out.shape == (1, 1)
        # padding slots are absent: junk features there must not change the output
        x2 = x.clone()
        x2[0, 3] = 5.0
        assert torch.allclose(critic(Graphs(x2, a, m)), out)


def test_table_to_dense_matches_per_cell_conversion(nb101):
    rows = np.arange(0, 200)
    x, a, m = table_to_dense(nb101.ops[rows], nb101.adjacency[rows], nb101.num_vertices[rows], K, 7)
    x2, a2, m2 = cells_to_dense([nb101.cell(int(r)) for r in rows], NASBENCH101, 7)
    assert torch.equal(x, x2) and torch.equal(a, a2) and torch.equal(m, m2)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), which=st.integers(0, 3), n=st.sampled_from([7, 8]))
def test_generated_cells_are_valid_dags_after_refinement(seed, which, n):
    """Property: whatever the seed, a refined graph is either a DAG whose every node lies on
    an input-output path (input first, output last), or flagged invalid."""
    space = NASBENCH101 if n == 7 else NATSBENCH
    gen = _generators(n)[which]
    g = gen(32, torch.Generator().manual_seed(seed))
    dec = CellDecoder(space, n)
    out = dec.decode(g)
    for key, h in zip(out.keys.tolist(), out.hashes, strict=True):
        cell = dec.cell(key)
        if h is None:
            continue
        assert cell.ops[0] == "input" and cell.ops[-1] == "output"
        assert np.all(np.tril(cell.adjacency) == 0)
        assert on_path_mask(cell.adjacency).all()
        assert cell.is_valid(space) and cell.hash(space) == h


def test_refine_keeps_only_nodes_on_paths_and_leaves_pathless_graphs_connected():
    x = torch.zeros(2, 4, K)
    x[:, 0, 0] = 1
    x[:, 1, 1] = 1
    x[:, 2, 2] = 1
    x[:, 3, -1] = 1
    adj = torch.zeros(2, 4, 4)
    adj[0, 0, 1] = adj[0, 1, 3] = adj[0, 0, 2] = 1  # node 2 is a dead end
    adj[1, 0, 1] = adj[1, 2, 3] = 1  # no path at all
    g = refine(x, adj)
    assert g.mask[0].tolist() == [True, True, False, True]
    assert g.adj[0].sum() == 2 and g.x[0, 2].sum() == 0
    assert g.mask[1].tolist() == [True, True, True, True]  # kept whole: critics reject it
    assert CellDecoder(NASBENCH101, 4).decode(g).valid.tolist() == [True, False]


def test_straight_through_gumbel_carries_gradients():
    logits = torch.randn(16, 6, requires_grad=True)
    y = gumbel_softmax_st(logits, 0.5, torch.Generator().manual_seed(0))
    assert torch.all(y.detach().sum(-1) == 1)
    (y * torch.arange(6.0)).sum().backward()
    assert logits.grad is not None and logits.grad.abs().sum() > 0
    e = torch.randn(16, requires_grad=True)
    s = gumbel_sigmoid_st(e, 0.5, torch.Generator().manual_seed(0))
    assert set(s.detach().unique().tolist()) <= {0.0, 1.0}
    s.sum().backward()
    assert e.grad.abs().sum() > 0


def test_generator_gradients_reach_edge_scores_and_op_logits():
    gen = Generator(num_ops=K, num_nodes=7, mu=2, tau=1.0, noise_dim=8, hidden=16)
    disc = Discriminator(num_ops=K, hidden=16)
    disc(gen(32, torch.Generator().manual_seed(1))).sum().backward()
    for name in ("edge_src.weight", "edge_dst.weight", "op_out.weight", "convs.0.lin.weight"):
        grad = dict(gen.named_parameters())[name].grad
        assert grad is not None and grad.abs().sum() > 0, name


def test_decoder_refuses_more_slots_than_its_key_holds():
    # 9 slots: the largest key, every slot absent (code K) and every pair an edge, fits
    for space in (NASBENCH101, NATSBENCH):
        assert space.max_slots == 9
        k, n = space.num_ops, 9
        g = Graphs(torch.zeros(1, n, k), torch.ones(1, n, n).triu(1), torch.zeros(1, n, dtype=bool))
        assert CellDecoder(space, n).keys(g)[0] == (k + 1) ** n * 2 ** (n * (n - 1) // 2) - 1
        with pytest.raises(ValueError, match="64-bit"):
            CellDecoder(space, 10)


def test_decoder_hashes_match_cell_hash_and_cache():
    gen = ErdosRenyiGenerator(num_ops=K, num_nodes=7, p=0.35)
    dec = CellDecoder(NASBENCH101, 7)
    g = gen(500, torch.Generator().manual_seed(3))
    first = dec.decode(g)
    for key, h in list(zip(first.keys.tolist(), first.hashes, strict=True))[:100]:
        if h is not None:
            assert dec.cell(key).hash(NASBENCH101) == h
    again = dec.decode(g)
    assert again.hashes == first.hashes


def test_edge_form_generator_builds_the_official_node_form_of_every_nats_architecture(
    nats, data_dir
):
    """Every one of the 15,625 NATS architectures, fed as edge-op one-hots, comes out as
    the node-form cell ``arch_to_cell`` gives (same canonical hash; no path: invalid)."""
    import pandas as pd

    from pipeline.nas import natsbench
    from trainables.gnn2gnn.edgeform import NATS_EDGES, EdgeFormGenerator, edge_ops_to_graphs

    archs = pd.read_parquet(data_dir / "natsbench_tss.parquet", columns=["arch_str"]).arch_str
    idx = []
    for arch in archs:
        ops = {
            (src, j + 1): op for j, e in enumerate(natsbench.parse_arch_str(arch)) for op, src in e
        }
        idx.append([natsbench.EDGE_OPS.index(ops[e]) for e in NATS_EDGES])
    one_hot = torch.nn.functional.one_hot(torch.tensor(idx), len(natsbench.EDGE_OPS)).float()
    got = CellDecoder(NATSBENCH, 8, table=nats).decode(edge_ops_to_graphs(one_hot)).hashes
    want = [c.hash(NATSBENCH) if (c := natsbench.arch_to_cell(a)) else None for a in archs]
    assert len(got) == 15_625 and got == want
    assert sum(h is None for h in got) == 341
    # sampled cells reach every node count of the table, and gradients reach the op logits
    gen = EdgeFormGenerator(mu=2, tau=1.0, noise_dim=8, hidden=16)
    g = gen(2000, torch.Generator().manual_seed(0))
    sizes = set(g.mask.sum(1).tolist())
    assert {2, 5, 6, 7, 8} <= sizes
    Discriminator(num_ops=NATSBENCH.num_ops, hidden=16)(g).sum().backward()
    for name in ("edge_src.weight", "edge_dst.weight", "convs.0.lin.weight"):
        grad = dict(gen.named_parameters())[name].grad
        assert grad is not None and grad.abs().sum() > 0, name
