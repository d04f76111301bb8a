"""A GNN generator that samples NATS cells in their own form: one op per cell edge.

The paper's generator (:class:`trainables.gnn2gnn.generators.Generator`) samples node-form
graphs edge by edge. On NATS that reaches almost only cells of at most 5 nodes
(docs/reproduction.md, "What reproduces and what does not"), while most NATS cells have 6 to
8. This generator, beyond the paper, samples the op of each of the 6 edges of the 4-node
NATS cell (``none``, ``skip_connect``, ``nor_conv_1x1``, ``nor_conv_3x3``, ``avg_pool_3x3``)
and builds the node form with tensor operations, so every NATS architecture is one sample
away and the critics see the same node form as for every other generator.

Node form, as :func:`pipeline.nas.natsbench.arch_to_cell` builds it: slot 0 is the
input, slots 1-6 the op nodes of the edges in :data:`NATS_EDGES` order, slot 7 the output.
The producers of cell node j (the graph nodes whose outputs sum into it) are the input for
j = 0; for j > 0 the op nodes of j's incoming conv/pool edges and, through each incoming
skip edge from i, the producers of i. An op node on edge i -> j is fed by the producers of
i; the output by the producers of cell node 3. Every step is a product or a union
(a + b - ab) of 0/1 values, exact in the forward pass and differentiable through the
straight-through op samples; refinement then drops nodes off every input-output path.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from pipeline.nas.graphs import Graphs, refine
from pipeline.nas.spaces import NATSBENCH
from trainables.gnn2gnn.generators import convolve, noise_convs, noise_draw
from trainables.gnn2gnn.layers import dense, gumbel_from_uniform, gumbel_softmax_st

# The cell's edges (source, target), in the order arch strings list them and
# ``arch_to_cell`` numbers their op nodes (slot = position + 1).
NATS_EDGES = ((0, 1), (0, 2), (1, 2), (0, 3), (1, 3), (2, 3))
NUM_EDGE_OPS = 5  # none, skip_connect, nor_conv_1x1, nor_conv_3x3, avg_pool_3x3
NUM_SLOTS = len(NATS_EDGES) + 2


def op_entropy(logits: Tensor) -> Tensor:
    """Entropy (nats) of each edge's op distribution: logits [..., ops] -> [...]."""
    logp = torch.log_softmax(logits, -1)
    return -(logp.exp() * logp).sum(-1)


def edge_ops_to_graphs(ops: Tensor) -> Graphs:
    """Edge-op one-hots [B, 6, 5] (order of ``natsbench.EDGE_OPS``) -> refined node-form
    :class:`Graphs` with 8 slots and the NATS node-form op vocabulary (input, conv 1x1,
    conv 3x3, avg pool, output)."""
    b, dev, dt = ops.shape[0], ops.device, ops.dtype
    skip, op_nodes = ops[..., 1], ops[..., 2:]
    present = op_nodes.sum(-1)  # [B, 6]: the edge carries an op node
    slot = torch.eye(NUM_SLOTS, device=dev, dtype=dt)
    producers = [slot[0].expand(b, -1)]  # [B, 8] over slots, per cell node
    for j in range(1, 4):
        acc = torch.zeros(b, NUM_SLOTS, device=dev, dtype=dt)
        for e, (i, t) in enumerate(NATS_EDGES):
            if t != j:
                continue
            for term in (present[:, e : e + 1] * slot[e + 1], skip[:, e : e + 1] * producers[i]):
                acc = acc + term - acc * term  # union of 0/1 sets
        producers.append(acc)
    cols = [torch.zeros(b, NUM_SLOTS, device=dev, dtype=dt)]  # nothing feeds the input
    cols += [producers[i] * present[:, e : e + 1] for e, (i, _) in enumerate(NATS_EDGES)]
    cols.append(producers[3])
    adj = torch.stack(cols, dim=2)  # adj[b, u, v]: u -> v
    # node-form one-hots (input, the 3 interior ops in NATSBENCH order, output): the last
    # 3 edge ops are NATSBENCH's interior ops in the same order
    x = torch.zeros(b, NUM_SLOTS, NATSBENCH.num_ops, device=dev, dtype=dt)
    x[:, 0, 0] = 1.0
    x[:, -1, -1] = 1.0
    x = x + nn.functional.pad(op_nodes, (1, 1, 1, 1, 0, 0))
    # absent slots (none / skip edges) have zero rows in x and zero rows and columns in adj,
    # so refinement drops them as off every path, straight-through: a hard mask here would
    # cut the critics' gradient towards putting an op on such an edge
    return refine(x, adj)


class EdgeFormGenerator(nn.Module):
    """GNN2GNN's generator on the NATS cell itself (module docstring).

    Random node features on the 4 cell nodes go through ``mu`` directed graph convolutions
    over the complete 4-node DAG; each edge i -> j gets op logits from a dense layer on
    :math:`x_i \\| x_j`, sampled with a straight-through Gumbel-softmax at temperature tau.

    Args:
        mu: graph convolutions; tau: Gumbel-softmax temperature; noise_dim: size of the
        random features; hidden: feature size; noise: ``"uniform"`` in [0, 1) or ``"normal"``.
    """

    num_nodes = NUM_SLOTS
    num_ops = NATSBENCH.num_ops  # of the node form it returns

    def __init__(
        self,
        *,
        mu: int = 2,
        tau: float = 0.1,
        noise_dim: int = 32,
        hidden: int = 64,
        noise: str = "uniform",
        conv: str = "directed",
    ) -> None:
        super().__init__()
        self.convs = noise_convs(mu, tau, noise_dim, hidden, noise, conv)
        self.mu, self.tau, self.noise_dim, self.noise = mu, tau, noise_dim, noise
        self.edge_src = nn.Linear(hidden, NUM_EDGE_OPS)
        self.edge_dst = nn.Linear(hidden, NUM_EDGE_OPS, bias=False)
        self.register_buffer("cell_dag", torch.ones(4, 4).triu(1))
        self.register_buffer("src", torch.tensor([i for i, _ in NATS_EDGES]))
        self.register_buffer("dst", torch.tensor([j for _, j in NATS_EDGES]))

    def draws(self, batch_size: int, generator: torch.Generator | None = None) -> tuple:
        """The random draws of one forward pass, in order: node features [B, 4, noise_dim]
        and the edges' op uniforms [B, 6, 5]."""
        dev = self.cell_dag.device
        draw = noise_draw(self.noise)
        noise = draw((batch_size, 4, self.noise_dim), generator=generator, device=dev)
        shape = (batch_size, len(NATS_EDGES), NUM_EDGE_OPS)
        return noise, torch.rand(shape, generator=generator, device=dev)

    def forward(
        self,
        batch_size: int,
        generator: torch.Generator | None = None,
        draws: tuple | None = None,
        tau: float | Tensor | None = None,
        entropy: bool = False,
    ) -> Graphs | tuple[Graphs, Tensor]:
        """As :meth:`Generator.forward <trainables.gnn2gnn.generators.Generator.forward>`;
        the entropy is that of the edges' op distributions."""
        noise, u_ops = draws if draws is not None else self.draws(batch_size, generator)
        tau = self.tau if tau is None else tau
        lead = noise.shape[:-2]  # [B] or, packed trials, [P, B]
        h = convolve(self.convs, noise, self.cell_dag.expand(*lead, 4, 4))
        src, dst = h[..., self.src, :], h[..., self.dst, :]
        logits = dense(self.edge_src, src) + dense(self.edge_dst, dst)  # [..., 6, 5]
        ops = gumbel_softmax_st(logits, tau, None, noise=gumbel_from_uniform(u_ops))
        flat = edge_ops_to_graphs(ops.reshape(-1, *ops.shape[-2:]))
        graphs = Graphs(*(f.view(*lead, *f.shape[1:]) for f in flat))
        return (graphs, op_entropy(logits).mean((-2, -1))) if entropy else graphs
