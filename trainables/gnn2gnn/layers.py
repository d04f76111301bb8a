"""Dense, batched graph layers for small DAGs (N <= 8 nodes): a step is a few bmm calls."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class DirectedDenseConv(nn.Module):
    r"""Graph convolution on a directed, possibly weighted, dense adjacency.

    .. math::
        \mathbf{x}'_v = \mathbf{W}_1 \mathbf{x}_v + \mathbf{W}_2 \sum_{u \to v} a_{u,v}\,
        \mathbf{x}_u + \mathbf{W}_3 \sum_{v \to w} a_{v,w}\,\mathbf{x}_w + \mathbf{b}

    Messages flow both along edges (from predecessors) and against them (from successors),
    so that in a DAG the input node also learns about what follows it. The update is
    PyG's ``DenseGraphConv`` (sum aggregation) applied in both directions; it is written
    out here because the three projections are computed as ONE matmul (x W, split in
    three) followed by two bmm: on 7-8 node graphs the per-call overhead of three separate
    layers dominated the training step. Measured against the same function from two PyG
    ``DenseGraphConv`` (``benchmarks/pyg_layers.py``, NATS, ``cpu`` profile, one thread):
    the GNN2GNN training step at batch 32 takes 13.1 / 12.8 ms with this layer and 14.3 /
    14.6 ms with PyG's (two runs: 9-14% faster), so it is kept; generation at batch 4096
    was no faster (206 / 240 ms vs 199 / 198 ms) before the padded projection below.
    ``tests/pipeline/nas/test_pyg.py`` checks that both compute the same function (float64, 1e-5).

    Args:
        in_channels: node feature size.
        out_channels: output feature size.

    Shapes:
        x: [B, N, in_channels]; adj: [B, N, N] with ``adj[b, u, v]`` the weight of u -> v;
        mask: optional [B, N] (absent nodes get zero output); returns [B, N, out_channels].
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.lin = nn.Linear(in_channels, 3 * out_channels)

    def reset_parameters(self) -> None:
        self.lin.reset_parameters()

    def forward(self, x: Tensor, adj: Tensor, mask: Tensor | None = None) -> Tensor:
        h, n = self.out_channels, x.shape[-2]
        lead = x.shape[:-2]  # [B] or, packed trials, [P, B]
        y = self._project(x)
        if y.shape[-1] != 3 * h:  # padded (no gradient): see ``_project``
            y = y[..., : 3 * h]
        # split, not three slices: the backward of a slice is a zero tensor of y's size,
        # filled in (with 3H = 300 columns, 40% of a packed step's backward went to it)
        root, from_pred, from_succ = y.reshape(-1, n, 3 * h).split(h, dim=-1)
        a = adj.expand(*lead, n, n).reshape(-1, n, n)  # a shared DAG serves every trial
        out = root + torch.bmm(a.transpose(1, 2), from_pred) + torch.bmm(a, from_succ)
        out = out.view(*lead, n, h)
        if mask is not None:
            out = out * mask.unsqueeze(-1).to(out.dtype)
        return out

    def _project(self, x: Tensor) -> Tensor:
        """``self.lin(x)``. Generating many graphs on the CPU (no gradient, >= 4,096 node rows), the
        output width is padded to a multiple of 16 with zero rows of the weight: the CPU's
        sgemm runs about 1.5x faster at 304 outputs than at 300, and each output column is
        the same dot product as before, so the values are the same bit for bit
        (``tests/trainables/gnn2gnn/test_models.py``); the padding columns are never read.
        The weight is read only then: under spectral norm each read of ``lin.weight`` is a
        power iteration."""
        pad = -3 * self.out_channels % 16
        rows = x.numel() // max(1, x.shape[-1])
        cpu = x.device.type == "cpu"
        if pad and cpu and rows >= 4096 and not torch.is_grad_enabled() and not stacked(self.lin):
            w, b = self.lin.weight, self.lin.bias
            return F.linear(x, F.pad(w, (0, 0, 0, pad)), F.pad(b, (0, pad)))
        return dense(self.lin, x)

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}({self.in_channels}, {self.out_channels})"


class DirectedGCNConv(nn.Module):
    r"""The GNN2GNN authors' generator layer: PyG's ``GCNConv`` on a dense, possibly
    weighted DAG, batched.

    .. math::
        \mathbf{x}'_v = \sum_{u \in \{v\} \cup \{u \to v\}}
        \frac{\hat a_{u,v}}{\sqrt{d_u d_v}}\, \mathbf{W} \mathbf{x}_u + \mathbf{b},
        \qquad \hat A = A + I, \quad d_v = \sum_u \hat a_{u,v}

    Messages come from predecessors only, through one weight matrix, with self-loops and
    symmetric normalisation by the in-degree (as ``GCNConv``'s ``gcn_norm``, which counts
    degrees at the edges' targets). ``tests/pipeline/nas/test_pyg.py`` checks it against
    ``GCNConv`` (float64, 1e-6). Shapes as :class:`DirectedDenseConv`.
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.lin = nn.Linear(in_channels, out_channels, bias=False)
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.xavier_uniform_(self.lin.weight)  # GCNConv's glorot initialisation
        nn.init.zeros_(self.bias)

    def forward(self, x: Tensor, adj: Tensor, mask: Tensor | None = None) -> Tensor:
        h, n = self.out_channels, x.shape[-2]
        lead = x.shape[:-2]  # [B] or, packed trials, [P, B]
        y = dense(self.lin, x).reshape(-1, n, h)
        a = adj.expand(*lead, n, n).reshape(-1, n, n)
        a = a + torch.eye(n, device=a.device, dtype=a.dtype)
        d = a.sum(-2).clamp(min=1e-12).rsqrt()  # [M, N]: in-degree + 1, ^ -1/2
        norm = d.unsqueeze(-1) * a * d.unsqueeze(-2)
        out = torch.bmm(norm.transpose(1, 2), y).view(*lead, n, h)
        bias = self.bias
        if bias.dim() == 2:  # packed trials: [P, H] against [P, B, N, H]
            bias = bias.view(bias.shape[0], *[1] * (out.dim() - 2), h)
        out = out + bias
        if mask is not None:
            out = out * mask.unsqueeze(-1).to(out.dtype)
        return out

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}({self.in_channels}, {self.out_channels})"


GRAPH_CONVS = {"directed": DirectedDenseConv, "gcn": DirectedGCNConv}


def stacked(lin: nn.Linear) -> bool:
    """True when ``lin`` holds packed trials' weights, [P, out, in] (``functional_call`` with
    stacked parameters; see ``trainables.gnn2gnn.training``). A parametrized weight (spectral
    norm) is never stacked, and is not read here: each read is a power iteration."""
    return not nn.utils.parametrize.is_parametrized(lin) and lin.weight.dim() == 3


def dense(lin: nn.Linear, x: Tensor) -> Tensor:
    """``lin(x)`` over x's last dim, as one 2-D matmul over its flattened leading dims (the
    same values: torch flattens a contiguous input so too). Packed trials (:func:`stacked`):
    x [P, ..., in] against each trial's own weights, one batched matmul."""
    if not stacked(lin):
        return lin(x.reshape(-1, x.shape[-1])).view(*x.shape[:-1], lin.out_features)
    w, b = lin.weight, lin.bias
    flat = x.reshape(x.shape[0], -1, x.shape[-1])
    if b is None:
        y = torch.bmm(flat, w.transpose(1, 2))
    else:
        y = torch.baddbmm(b.unsqueeze(1), flat, w.transpose(1, 2))
    return y.view(*x.shape[:-1], w.shape[1])


def gumbel_noise(shape: torch.Size, generator: torch.Generator | None, device) -> Tensor:
    """Standard Gumbel noise, drawn from ``generator`` (seeded sampling)."""
    return gumbel_from_uniform(torch.rand(shape, generator=generator, device=device))


def gumbel_from_uniform(u: Tensor) -> Tensor:
    """Standard Gumbel noise from uniform draws ``u`` in [0, 1)."""
    return -torch.log(-torch.log(u.clamp(1e-10, 1.0 - 1e-7)))


def gumbel_softmax_st(
    logits: Tensor,
    tau: float | Tensor,
    generator: torch.Generator | None,
    hard: bool = True,
    noise: Tensor | None = None,
) -> Tensor:
    """Straight-through Gumbel-softmax over the last dim: one-hot forward, soft gradients.

    ``noise``: Gumbel noise of ``logits``' shape, drawn by the caller (packed trials draw
    each trial's part from its own generator); by default drawn from ``generator``."""
    if noise is None:
        noise = gumbel_noise(logits.shape, generator, logits.device)
    y = F.softmax((logits + noise) / tau, dim=-1)
    if not hard:
        return y
    index = y.argmax(dim=-1, keepdim=True)
    y_hard = torch.zeros_like(y).scatter(-1, index, 1.0)
    return y_hard - y.detach() + y


def gumbel_sigmoid_st(
    logits: Tensor,
    tau: float | Tensor,
    generator: torch.Generator | None,
    u: Tensor | None = None,
) -> Tensor:
    """Two-class Gumbel-softmax (edge / no edge) with logits (l, 0): 0/1 forward, soft grads.

    ``sigmoid(logits)`` is the edge probability; the difference of two Gumbels is logistic,
    drawn here directly as log(u) - log(1 - u) from uniform ``u`` (given, or drawn from
    ``generator``).
    """
    if u is None:
        u = torch.rand(logits.shape, generator=generator, device=logits.device)
    u = u.clamp(1e-7, 1.0 - 1e-7)
    y = torch.sigmoid((logits + torch.log(u) - torch.log1p(-u)) / tau)
    y_hard = (y > 0.5).to(y.dtype)
    return y_hard - y.detach() + y


def dropout_from_uniform(x: Tensor, p: float, u: Tensor) -> Tensor:
    """Dropout of ``x`` with rate ``p`` from uniform draws ``u`` of its shape (kept where
    u >= p, scaled by 1 / (1 - p)): seeded by whoever drew ``u``."""
    return x * (u >= p).to(x.dtype) / (1.0 - p)
