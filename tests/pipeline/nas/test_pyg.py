"""torch-geometric: benchmark cells as PyG datasets, generated cells as Data, and PyG's
layers as the reference for the project's fused dense layers."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch_geometric.data import Batch
from torch_geometric.loader import DataLoader
from torch_geometric.nn import DenseGINConv, DenseGraphConv, GINConv, global_add_pool

from pipeline.nas.pyg import BenchmarkDataset, generated_data


@pytest.fixture(scope="module")
def nats_ds(nats, tmp_path_factory):
    return BenchmarkDataset(nats, tmp_path_factory.mktemp("pyg"))


def test_nats_dataset_matches_the_lookup_command_and_trains_a_pyg_gin(nats_ds, nats, data_dir):
    assert len(nats_ds) == 5256 == len(nats)
    row = int(np.nanargmax(nats.accuracy))  # the best NATS cell
    cell = nats.cell(row)
    res = subprocess.run(
        [sys.executable, "-m", "pipeline.cli", "data", "lookup", "--benchmark", "natsbench"]
        + ["--ops", ",".join(cell.ops), "--matrix", cell.matrix_string()]
        + ["--data-dir", str(data_dir), "--json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == 0, res.stderr
    looked = json.loads(res.stdout)
    d = nats_ds[row]
    assert d.hash == looked["hash"] and d.num_nodes == looked["num_vertices"]
    assert [nats_ds.space.ops[i] for i in d.x.argmax(1).tolist()] == looked["ops"]
    v = looked["num_vertices"]
    adj = np.zeros((v, v), dtype=int)
    adj[d.edge_index[0].numpy(), d.edge_index[1].numpy()] = 1
    assert "".join(map(str, adj.reshape(-1))) == looked["matrix"]
    assert d.edge_index.shape[1] == looked["num_edges"]
    assert d.y.item() == pytest.approx(looked["accuracy"], abs=1e-4)
    # the project's seeded split, as index tensors
    split = nats_ds.split(10, 0.75, 0)
    ref = nats.split(10, 0.75, 0)
    assert np.array_equal(split["train"].numpy(), ref.train)
    parts = [set(split[k].tolist()) for k in ("removed_top", "train", "held_out")]
    assert sum(map(len, parts)) == len(set().union(*parts)) == int(nats.labelled.sum())
    # a 2-layer PyG GIN predicting accuracy over one batch of the loader
    torch.manual_seed(0)
    convs = torch.nn.ModuleList(
        GINConv(
            torch.nn.Sequential(torch.nn.Linear(c, 32), torch.nn.ReLU(), torch.nn.Linear(32, 32))
        )
        for c in (nats_ds.num_node_features, 32)
    )
    head = torch.nn.Linear(32, 1)
    batch = next(iter(DataLoader(nats_ds[split["train"]], batch_size=64, shuffle=True)))
    h = batch.x
    for conv in convs:
        h = F.relu(conv(h, batch.edge_index))
    pred = head(global_add_pool(h, batch.batch)).squeeze(1)
    loss = F.mse_loss(pred, batch.y / 100)
    loss.backward()
    assert pred.shape == (64,) and torch.isfinite(loss) and batch.num_graphs == 64
    assert all(p.grad is not None for p in convs.parameters())


@pytest.mark.slow
def test_nasbench101_dataset_has_every_cell(nb101, tmp_path):
    ds = BenchmarkDataset(nb101, tmp_path)
    assert len(ds) == 423_624
    for row in (0, 12345, len(ds) - 1):
        d, cell = ds[row], nb101.cell(row)
        assert d.hash == nb101.hashes[row] and d.num_nodes == cell.num_vertices
        adj = np.zeros((cell.num_vertices,) * 2, dtype=np.uint8)
        adj[d.edge_index[0].numpy(), d.edge_index[1].numpy()] = 1
        assert np.array_equal(adj, cell.adjacency)
    assert np.isnan(ds.y.numpy()).sum() == len(ds) - int(nb101.labelled.sum())
    again = BenchmarkDataset(nb101, tmp_path)  # from processed/ this time
    assert again[12345].hash == ds[12345].hash


def test_generated_cells_read_back_as_pyg_data(data_dir):
    from trainables.gnn2gnn import run_trial

    res = run_trial({"benchmark": "natsbench", "profile": "smoke", "data_dir": str(data_dir)})
    import pandas as pd

    frame = pd.DataFrame(res.tables["generated"])
    graphs = generated_data(frame, "natsbench")
    assert len(graphs) == int(frame["valid"].sum()) > 0
    batch = Batch.from_data_list(graphs)
    assert batch.num_graphs == len(graphs) and batch.x.shape[1] == 5
    first = frame[frame["valid"]].iloc[0]
    assert graphs[0].hash == first["hash"] and graphs[0].num_nodes == len(first["ops"])


def test_arch2vec_gin_layer_on_pygs_dense_gin_conv_is_arch2vecs_formula():
    """The GIN layer runs on PyG's DenseGINConv (as fast as a hand-written one); it must
    compute arch2vec's h <- BN(ReLU(MLP((1 + eps) h + A h)))."""
    from trainables.infonas.arch2vec import GINLayer

    torch.manual_seed(0)
    layer = GINLayer(5, 16).double().eval()
    assert isinstance(layer.conv, DenseGINConv)
    with torch.no_grad():
        layer.eps.fill_(0.3)
        for bn in (layer.mlp[1], layer.bn):  # non-trivial running statistics
            bn.running_mean.uniform_(-1, 1)
            bn.running_var.uniform_(0.5, 2)
    h = torch.randn(8, 7, 5, dtype=torch.float64)
    adj = (torch.rand(8, 7, 7) < 0.4).double()
    adj = adj + adj.transpose(1, 2)  # arch2vec's symmetrised adjacency
    agg = (1 + 0.3) * h + torch.bmm(adj, h)
    by_hand = F.relu(layer.bn(layer.mlp(agg.reshape(-1, 5)))).reshape(8, 7, 16)
    assert torch.allclose(layer(h, adj), by_hand, atol=1e-5, rtol=0)


def test_directed_conv_equals_two_pyg_dense_graph_convs():
    """Ours: x W_root + b_root + A^T (x W_pred + b_pred) + A (x W_succ + b_succ). With the
    message biases at zero it is DenseGraphConv on A^T (root and bias) plus DenseGraphConv
    on A (no root, no bias)."""
    from trainables.gnn2gnn.layers import DirectedDenseConv

    torch.manual_seed(0)
    ours = DirectedDenseConv(6, 4).double()
    along, against = DenseGraphConv(6, 4).double(), DenseGraphConv(6, 4).double()
    with torch.no_grad():
        ours.lin.bias[4:].zero_()
        w_root, w_pred, w_succ = ours.lin.weight.split(4, dim=0)
        along.lin_root.weight.copy_(w_root)
        along.lin_rel.weight.copy_(w_pred)
        along.lin_rel.bias.copy_(ours.lin.bias[:4])
        against.lin_root.weight.zero_()
        against.lin_rel.weight.copy_(w_succ)
        against.lin_rel.bias.zero_()
    x = torch.randn(5, 8, 6, dtype=torch.float64)
    adj = torch.triu((torch.rand(5, 8, 8) < 0.5).double(), 1) * torch.rand(5, 8, 8).double()
    mask = torch.rand(5, 8) < 0.8
    theirs = (along(x, adj.transpose(1, 2)) + against(x, adj)) * mask.unsqueeze(-1)
    assert torch.allclose(ours(x, adj, mask), theirs, atol=1e-5, rtol=0)


def test_gcn_conv_equals_pyg_gcnconv_on_each_weighted_dag():
    """``generator_conv: gcn`` is PyG's GCNConv (self-loops, symmetric normalisation by the
    in-degree, messages along the edges) on every graph of a dense batch, and packed trials
    (a leading trial axis, each trial its own weights) give each trial's own result."""
    from torch.func import functional_call, stack_module_state
    from torch_geometric.nn import GCNConv

    from trainables.gnn2gnn.layers import DirectedGCNConv

    torch.manual_seed(0)
    ours = DirectedGCNConv(6, 4).double()
    theirs = GCNConv(6, 4).double()
    with torch.no_grad():
        ours.bias.normal_()
        theirs.lin.weight.copy_(ours.lin.weight)
        theirs.bias.copy_(ours.bias)
    x = torch.randn(5, 8, 6, dtype=torch.float64)
    adj = torch.triu((torch.rand(5, 8, 8) < 0.5).double(), 1) * torch.rand(5, 8, 8).double()
    got = ours(x, adj)
    for b in range(5):
        src, dst = adj[b].nonzero(as_tuple=True)
        want = theirs(x[b], torch.stack([src, dst]), adj[b, src, dst])
        assert torch.allclose(got[b], want, atol=1e-6, rtol=0), b
    other = DirectedGCNConv(6, 4).double()
    params, _ = stack_module_state([ours, other])
    packed = functional_call(ours, params, (torch.stack([x, x]), adj))
    assert torch.allclose(packed[0], got, atol=1e-12) and torch.allclose(packed[1], other(x, adj))
