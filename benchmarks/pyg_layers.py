"""Our fused dense layers vs torch-geometric's, in the steps that use them (run on demand;
prints JSON, asserts nothing; ``tests/pipeline/nas/test_pyg.py`` checks that the pairs
compute the same function).

    python benchmarks/pyg_layers.py [--threads 1] [--repeat 300]

- GNN2GNN: ``DirectedDenseConv`` (one matmul for the three projections, two bmm) vs the same
  function as two PyG ``DenseGraphConv`` (on A^T and on A); timed as the whole training
  step at batch 32 (``Trial.step``, NATS-Bench, ``cpu`` profile) with either layer in the
  generator and both critics, and as generation at batch 4096.
- arch2vec: a hand-written GIN layer ("ours") vs the project's ``GINLayer`` on PyG's
  ``DenseGINConv`` with the same MLP and batch norms; timed as the VAE's forward + loss +
  backward at batch 32 on NAS-Bench-101 cells.
"""

from __future__ import annotations

import argparse
import json
import time

import torch
import torch.nn.functional as F
from torch import nn
from torch_geometric.nn import DenseGraphConv


class PygDirectedConv(nn.Module):
    """DirectedDenseConv's function from two PyG DenseGraphConv layers."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.along = DenseGraphConv(in_channels, out_channels)  # root + messages from preds
        self.against = DenseGraphConv(in_channels, out_channels)  # messages from succs
        self.against.lin_root = None  # no second root term

    def forward(self, x, adj, mask=None):
        out = self.along(x, adj.transpose(1, 2))
        out = out + self.against.lin_rel(torch.matmul(adj, x))
        if mask is not None:
            out = out * mask.unsqueeze(-1).to(out.dtype)
        return out


class HandGINLayer(nn.Module):
    """arch2vec's GIN layer written by hand (the project's version before it moved onto
    PyG's DenseGINConv): the "before" of the VAE comparison."""

    def __init__(self, cin: int, hidden: int) -> None:
        super().__init__()
        self.eps = nn.Parameter(torch.zeros(1))
        self.mlp = nn.Sequential(
            nn.Linear(cin, hidden), nn.BatchNorm1d(hidden), nn.ReLU(), nn.Linear(hidden, hidden)
        )
        self.bn = nn.BatchNorm1d(hidden)

    def forward(self, h, adj):
        b, n, _ = h.shape
        agg = (1 + self.eps) * h + torch.bmm(adj, h)
        return F.relu(self.bn(self.mlp(agg.reshape(b * n, -1)))).reshape(b, n, -1)


def timed(fn, repeat: int) -> float:
    for _ in range(max(3, repeat // 10)):
        fn()
    start = time.perf_counter()
    for _ in range(repeat):
        fn()
    return (time.perf_counter() - start) / repeat


def gnn2gnn(layer: str, repeat: int) -> dict:
    import trainables.gnn2gnn.critics as critics
    import trainables.gnn2gnn.generators as generators
    from trainables.gnn2gnn import Trial, make_config
    from trainables.gnn2gnn.layers import DirectedDenseConv

    cls = DirectedDenseConv if layer == "ours" else PygDirectedConv
    critics.DirectedDenseConv = generators.DirectedDenseConv = cls
    try:
        trial = Trial(make_config({"benchmark": "natsbench", "profile": "cpu", "device": "cpu"}))
    finally:
        critics.DirectedDenseConv = generators.DirectedDenseConv = DirectedDenseConv
    idx = torch.arange(32)
    step = timed(lambda: trial.step(idx, 0.1), repeat)
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        gen = timed(lambda: trial.gen.eval()(4096, g), max(3, repeat // 30))
    return {"step_ms_batch32": round(step * 1e3, 3), "generate_4096_ms": round(gen * 1e3, 1)}


def vae(layer: str, repeat: int) -> dict:
    import trainables.infonas.arch2vec as arch2vec
    from pipeline.nas.benchmarks import load_benchmark
    from pipeline.nas.cells import table_to_dense

    bench = load_benchmark("nasbench101")
    rows = torch.arange(32).numpy()
    x, adj, _ = table_to_dense(
        bench.ops[rows], bench.adjacency[rows], bench.num_vertices[rows], 5, 7
    )
    original = arch2vec.GINLayer  # on PyG's DenseGINConv
    arch2vec.GINLayer = HandGINLayer if layer == "ours" else original
    try:
        torch.manual_seed(0)
        model = arch2vec.Arch2Vec(5, 7)
    finally:
        arch2vec.GINLayer = original
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    g = torch.Generator().manual_seed(0)

    def step():
        loss, _ = model.loss(model(x, adj, g), x, adj)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return {"vae_step_ms_batch32": round(timed(step, repeat) * 1e3, 3)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=300)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    out: dict = {"threads": args.threads}
    for layer in ("ours", "pyg"):
        out[layer] = {**gnn2gnn(layer, args.repeat), **vae(layer, args.repeat)}
    out["pyg_over_ours"] = {k: round(out["pyg"][k] / out["ours"][k], 2) for k in out["ours"]}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
