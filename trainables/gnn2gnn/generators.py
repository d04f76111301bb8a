"""Generators of cells: GNN2GNN's GNN generator and the paper's three baselines.

Every generator returns a :class:`~pipeline.nas.graphs.Graphs` batch, refined (nodes off
every input-to-output path zeroed) so critics see the same form as real cells.
"""

from __future__ import annotations

from itertools import pairwise

import torch
from torch import Tensor, nn

from pipeline.nas.graphs import Graphs, refine
from trainables.gnn2gnn.layers import (
    GRAPH_CONVS,
    dense,
    gumbel_from_uniform,
    gumbel_sigmoid_st,
    gumbel_softmax_st,
)


def noise_convs(
    mu: int, tau: float, noise_dim: int, hidden: int, noise: str, conv: str = "directed"
) -> nn.ModuleList:
    """A GNN generator's ``mu`` graph convolutions (``conv``: a :data:`GRAPH_CONVS` name) over
    its random node features (the arguments checked)."""
    assert mu >= 1, f"mu (graph convolutions) must be >= 1, got {mu}"
    assert tau > 0, f"tau must be > 0, got {tau}"
    assert noise in ("uniform", "normal"), f"unknown noise {noise!r}"
    dims = [noise_dim] + [hidden] * mu
    assert conv in GRAPH_CONVS, f"unknown graph convolution {conv!r}"
    return nn.ModuleList(GRAPH_CONVS[conv](a, b) for a, b in pairwise(dims))


def noise_draw(noise: str):
    """The draw of a GNN generator's random node features: uniform in [0, 1) or normal."""
    return torch.rand if noise == "uniform" else torch.randn


def convolve(convs: nn.ModuleList, h: Tensor, dag: Tensor) -> Tensor:
    """Node features ``h`` [B, N, F] through ``convs`` with ReLU over the DAGs ``dag``."""
    for conv in convs:
        h = torch.relu(conv(h, dag))
    return h


def fixed_io(interior: Tensor) -> Tensor:
    """Interior op one-hots [B, N, K-2] -> full one-hots [B, N, K] with input on slot 0 and
    output on slot N-1 (their interior rows are ignored)."""
    b, n, _ = interior.shape
    x = nn.functional.pad(interior, (1, 1))
    io = torch.zeros_like(x)
    io[:, 0, 0] = 1.0
    io[:, n - 1, -1] = 1.0
    keep = torch.ones(1, n, 1, device=x.device, dtype=x.dtype)
    keep[:, 0] = 0.0
    keep[:, n - 1] = 0.0
    return x * keep + io


class Generator(nn.Module):
    r"""GNN2GNN generator.

    A fully connected DAG on N nodes with random features goes through mu graph
    convolutions; each edge v -> w (v < w) is scored by a dense layer on
    :math:`x_v \| x_w` and sampled with a straight-through Gumbel-softmax at temperature tau;
    a further graph convolution over the score-weighted sampled graph gives op logits,
    sampled the same way over the interior ops. Input (slot 0) and output (slot N-1) are
    fixed; refinement comes last.

    Edge scorers (``edge_scorer``):

    - ``"softmax"`` (default; the authors' code): the dense layer gives two scores per edge
      (no edge, edge); each is normalised by a softmax over the incoming edges of w, and 0.5
      is added, :math:`s_c(v, w) = \mathrm{softmax}_{u < w}(e_c(u, w))_v + 0.5 \in
      [0.5, 1.5]`; the two-class Gumbel-softmax over :math:`(s_0, s_1)` makes an edge with
      probability :math:`\sigma(s_1 - s_0) \in [0.27, 0.73]`. The bounded probability keeps
      every edge in play: the generator cannot collapse onto one graph.
    - ``"sigmoid"``: one score per edge, :math:`p = \sigma(e(v, w))`, unbounded.

    Args:
        num_ops: K, size of the one-hot op vocabulary (input and output included).
        num_nodes: N, the maximum cell size.
        mu: number of graph convolutions before edge scoring.
        tau: Gumbel-softmax temperature.
        noise_dim: size of the random node features.
        hidden: hidden feature size.
        edge_scorer: ``"softmax"`` or ``"sigmoid"`` (above).
        conv: the graph convolution, ``"directed"`` (:class:`DirectedDenseConv`) or ``"gcn"``
            (:class:`DirectedGCNConv`, the authors' layer).
        noise: node features drawn ``"uniform"`` in [0, 1) (the authors') or ``"normal"``.
    """

    def __init__(
        self,
        *,
        num_ops: int,
        num_nodes: int,
        mu: int = 2,
        tau: float = 0.1,
        noise_dim: int = 32,
        hidden: int = 64,
        edge_scorer: str = "softmax",
        noise: str = "uniform",
        conv: str = "directed",
    ) -> None:
        super().__init__()
        assert edge_scorer in ("softmax", "sigmoid"), f"unknown edge scorer {edge_scorer!r}"
        self.convs = noise_convs(mu, tau, noise_dim, hidden, noise, conv)
        self.num_ops, self.num_nodes, self.mu, self.tau = num_ops, num_nodes, mu, tau
        self.noise_dim, self.edge_scorer, self.noise = noise_dim, edge_scorer, noise
        # dense layer on concat(x_v, x_w) == W_src x_v + W_dst x_w + b
        scores = 2 if edge_scorer == "softmax" else 1
        self.edge_src = nn.Linear(hidden, scores)
        self.edge_dst = nn.Linear(hidden, scores, bias=False)
        self.op_conv = GRAPH_CONVS[conv](hidden, hidden)
        self.op_out = nn.Linear(hidden, num_ops - 2)
        self.register_buffer("full_dag", torch.ones(num_nodes, num_nodes).triu(1))

    def draws(self, batch_size: int, generator: torch.Generator | None = None) -> tuple:
        """The random draws of one forward pass, in the order they are made: node features
        [B, N, noise_dim], edge uniforms [B, N, N], op uniforms [B, N, K-2]."""
        n, dev, draw = self.num_nodes, self.full_dag.device, noise_draw(self.noise)
        return (
            draw((batch_size, n, self.noise_dim), generator=generator, device=dev),
            torch.rand((batch_size, n, n), generator=generator, device=dev),
            torch.rand((batch_size, n, self.num_ops - 2), generator=generator, device=dev),
        )

    def forward(
        self,
        batch_size: int,
        generator: torch.Generator | None = None,
        draws: tuple | None = None,
        tau: float | Tensor | None = None,
        entropy: bool = False,
    ) -> Graphs | tuple[Graphs, Tensor]:
        """``batch_size`` cells from ``draws`` (:meth:`draws`; default: drawn from
        ``generator``) at temperature ``tau`` (default: the module's). With ``entropy``,
        also the mean entropy (nats) of the edge and op distributions, for a diversity
        bonus. Random draws are all made before the forward pass, so packed trials
        (``trainables.gnn2gnn.training``) run it once on their stacked weights, with each
        trial's own draws and a leading trial axis on every tensor ([P, B, ...]; tau [P,
        1, 1, 1])."""
        noise, u_edges, u_ops = draws if draws is not None else self.draws(batch_size, generator)
        tau = self.tau if tau is None else tau
        n = self.num_nodes
        lead = noise.shape[:-2]  # [B] or [P, B]
        full = self.full_dag.expand(*lead, n, n)
        h = convolve(self.convs, noise, full)
        logits = self.edge_logits(h)
        score = torch.sigmoid(logits) * full
        edges = gumbel_sigmoid_st(logits, tau, None, u=u_edges) * full
        h_op = torch.relu(self.op_conv(h, edges * score))
        op_logits = dense(self.op_out, h_op)
        ops = gumbel_softmax_st(op_logits, tau, None, noise=gumbel_from_uniform(u_ops))
        flat = refine(fixed_io(ops.reshape(-1, *ops.shape[-2:])), edges.reshape(-1, n, n))
        graphs = Graphs(*(f.view(*lead, *f.shape[1:]) for f in flat))
        if not entropy:
            return graphs
        p = torch.sigmoid(logits)
        ls = nn.functional.logsigmoid
        edge_h = -(p * ls(logits) + (1 - p) * ls(-logits)) * full
        op_l = op_logits[..., 1:-1, :]  # interior slots
        op_h = -(torch.softmax(op_l, -1) * torch.log_softmax(op_l, -1)).sum(-1).mean(-1)
        return graphs, (edge_h.sum((-2, -1)) / self.full_dag.sum() + op_h).mean(-1)

    def edge_logits(self, h: Tensor) -> Tensor:
        """[B, N, N] logit of edge v -> w: sigmoid of it is the edge probability (entries
        off the upper triangle are ignored by the caller)."""
        return self.edge_logits_from(dense(self.edge_src, h), dense(self.edge_dst, h))

    def edge_logits_from(self, src: Tensor, dst: Tensor) -> Tensor:
        """``edge_logits`` from the two dense layers' outputs ([B, N, S] each)."""
        if self.edge_scorer == "sigmoid":
            return src + dst.transpose(-1, -2)
        raw = src.unsqueeze(-2) + dst.unsqueeze(-3)  # [B, v, w, 2]
        incoming = self.full_dag.bool().unsqueeze(-1)  # v -> w exists for v < w
        # softmax over the sources v of each target w; column 0 has none (all masked, its
        # uniform weights are multiplied away by the caller's DAG mask)
        s = torch.softmax(raw.masked_fill(~incoming, -1e9), dim=-3) + 0.5
        return s[..., 1] - s[..., 0]


class MolGANGenerator(nn.Module):
    """MolGAN-like baseline: node types and adjacency generated at once from one noise vector
    by an MLP, both Gumbel-sampled (straight-through); input/output fixed; then refinement."""

    def __init__(
        self,
        *,
        num_ops: int,
        num_nodes: int,
        tau: float = 0.1,
        noise_dim: int = 32,
        hidden: int = 128,
    ) -> None:
        super().__init__()
        self.num_ops, self.num_nodes, self.tau, self.noise_dim = num_ops, num_nodes, tau, noise_dim
        self.mlp = nn.Sequential(
            nn.Linear(noise_dim, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU()
        )
        self.edge_out = nn.Linear(hidden, num_nodes * num_nodes)
        self.op_out = nn.Linear(hidden, num_nodes * (num_ops - 2))
        self.register_buffer("full_dag", torch.ones(num_nodes, num_nodes).triu(1))

    def forward(self, batch_size: int, generator: torch.Generator | None = None) -> Graphs:
        n = self.num_nodes
        z = torch.randn(
            batch_size, self.noise_dim, generator=generator, device=self.full_dag.device
        )
        h = self.mlp(z)
        edge_logits = self.edge_out(h).view(batch_size, n, n)
        edges = gumbel_sigmoid_st(edge_logits, self.tau, generator) * self.full_dag
        ops = gumbel_softmax_st(self.op_out(h).view(batch_size, n, -1), self.tau, generator)
        return refine(fixed_io(ops), edges)


class RNNGenerator(nn.Module):
    """RNN baseline (D-VAE-like): from the input node, append one node at a time with a GRU;
    each new node gets an op from {interior ops, output} and edges from earlier nodes; choosing
    ``output`` stops the graph (forced at the last slot). Straight-through Gumbel throughout."""

    def __init__(
        self,
        *,
        num_ops: int,
        num_nodes: int,
        tau: float = 0.1,
        noise_dim: int = 32,
        hidden: int = 64,
    ) -> None:
        super().__init__()
        self.num_ops, self.num_nodes, self.tau, self.noise_dim = num_ops, num_nodes, tau, noise_dim
        self.init = nn.Linear(noise_dim, hidden)
        self.cell = nn.GRUCell(num_ops, hidden)
        self.op_out = nn.Linear(hidden, num_ops - 1)  # interior ops + output (stop)
        self.edge_q = nn.Linear(hidden, hidden)
        self.edge_k = nn.Linear(hidden, hidden, bias=False)
        self.edge_b = nn.Parameter(torch.zeros(1))

    def forward(self, batch_size: int, generator: torch.Generator | None = None) -> Graphs:
        n, k = self.num_nodes, self.num_ops
        dev = self.init.weight.device
        z = torch.randn(batch_size, self.noise_dim, generator=generator, device=dev)
        h = torch.tanh(self.init(z))
        x_prev = torch.zeros(batch_size, k, device=dev)
        x_prev[:, 0] = 1.0
        xs, states, cols = [x_prev], [h], []  # states[j]: GRU state that produced node j
        alive = torch.ones(batch_size, device=dev)
        present = [torch.ones(batch_size, dtype=torch.bool, device=dev)]
        for t in range(1, n):
            h = self.cell(xs[-1], h)
            logits = self.op_out(h)
            if t == n - 1:  # must stop: force output
                logits = torch.full_like(logits, -1e4)
                logits[:, -1] = 0.0
            choice = gumbel_softmax_st(logits, self.tau, generator)  # [B, K-1]
            x_t = nn.functional.pad(choice, (1, 0)) * alive.unsqueeze(1)
            q = self.edge_q(h).unsqueeze(1)  # [B, 1, H]
            keys = self.edge_k(torch.stack(states, 1))  # [B, t, H]: nodes 0..t-1
            e_logits = (q * keys).sum(-1) / keys.shape[-1] ** 0.5 + self.edge_b
            col = gumbel_sigmoid_st(e_logits, self.tau, generator) * alive.unsqueeze(1)
            cols.append(nn.functional.pad(col, (0, n - t)))
            present.append(alive > 0.5)
            xs.append(x_t)
            states.append(h)
            alive = alive * (1.0 - choice[:, -1].detach())
        x = torch.stack(xs, 1)
        adj = torch.stack([torch.zeros_like(cols[0])] + cols, 2)  # column t: edges into t
        return refine(x, adj, torch.stack(present, 1))


class ErdosRenyiGenerator(nn.Module):
    """Erdos-Renyi baseline: each edge v -> w (v < w) with probability p, interior ops uniform;
    input/output fixed; then refinement. Nothing to train."""

    def __init__(self, *, num_ops: int, num_nodes: int, p: float = 0.4) -> None:
        super().__init__()
        assert 0 < p < 1, f"edge probability p must be in (0, 1), got {p}"
        self.num_ops, self.num_nodes, self.p = num_ops, num_nodes, p
        self.register_buffer("full_dag", torch.ones(num_nodes, num_nodes).triu(1))

    def forward(self, batch_size: int, generator: torch.Generator | None = None) -> Graphs:
        n, dev = self.num_nodes, self.full_dag.device
        edges = (torch.rand(batch_size, n, n, generator=generator, device=dev) < self.p).float()
        edges = edges * self.full_dag
        idx = torch.randint(0, self.num_ops - 2, (batch_size, n), generator=generator, device=dev)
        ops = nn.functional.one_hot(idx, self.num_ops - 2).float()
        return refine(fixed_io(ops), edges)
