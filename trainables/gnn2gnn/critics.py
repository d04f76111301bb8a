"""Discriminator and valuer: nu graph convolutions, pooling over present nodes, one dense layer."""

from __future__ import annotations

from itertools import pairwise

import torch
from torch import Tensor, nn

from pipeline.nas.graphs import Graphs
from trainables.gnn2gnn.layers import DirectedDenseConv, dense, dropout_from_uniform


class GraphCritic(nn.Module):
    """nu directed graph convolutions, pooling over present nodes, a dense output layer.

    Args:
        num_ops: K, the one-hot op size.
        nu: number of graph convolutions (the paper uses 2).
        hidden: hidden feature size.
        out_dim: outputs per graph (1: a logit or a regressed value).
        pooling: ``"mean"`` (the authors' code) or ``"sum"`` over present nodes.
        dropout: dropout on the pooled features (the authors' code: 0.2).
        minibatch_std: append the batch standard deviation of the pooled features (averaged
            over features) to them before the dense layer, so the critic can see a batch
            that lacks variety (minibatch discrimination, the ProGAN form).
        spectral_norm: spectral normalisation of every weight matrix (Miyato et al. 2018).

    Shapes: Graphs(x [B, N, K], adj [B, N, N], mask [B, N]) -> [B, out_dim].
    """

    def __init__(
        self,
        *,
        num_ops: int,
        nu: int = 2,
        hidden: int = 64,
        out_dim: int = 1,
        pooling: str = "sum",
        dropout: float = 0.0,
        minibatch_std: bool = False,
        spectral_norm: bool = False,
    ) -> None:
        super().__init__()
        assert nu >= 1, f"nu (graph convolutions) must be >= 1, got {nu}"
        assert pooling in ("sum", "mean"), f"pooling must be 'sum' or 'mean', got {pooling!r}"
        dims = [num_ops] + [hidden] * nu
        self.convs = nn.ModuleList(DirectedDenseConv(a, b) for a, b in pairwise(dims))
        self.out = nn.Linear(hidden + int(minibatch_std), out_dim)
        self.pooling, self.dropout, self.minibatch_std = pooling, dropout, minibatch_std
        if spectral_norm:
            for conv in self.convs:
                conv.lin = nn.utils.parametrizations.spectral_norm(conv.lin)
            self.out = nn.utils.parametrizations.spectral_norm(self.out)

    def draws(self, batch_size: int, generator: torch.Generator | None = None) -> Tensor | None:
        """The dropout uniforms of a forward pass in training on ``batch_size`` graphs
        (None: no dropout)."""
        if not (self.training and self.dropout > 0):
            return None
        shape = (batch_size, self.out.in_features)
        # the bias: under spectral norm each read of the weight is a power iteration
        return torch.rand(shape, generator=generator, device=self.out.bias.device)

    def forward(
        self,
        g: Graphs,
        groups: int = 1,
        generator: torch.Generator | None = None,
        u: Tensor | None = None,
    ) -> Tensor:
        """``groups``: the batch is that many equal parts (e.g. real, then generated) whose
        minibatch statistics are taken apart. The dropout mask comes from ``u``
        (:meth:`draws`), else is drawn from ``generator`` (a trial's own stream), else
        from torch's global one."""
        h = g.x
        for conv in self.convs:
            h = torch.relu(conv(h, g.adj))
        # absent nodes have zero features and no edges; excluding them from the pooling only
        # (not inside the convolutions) keeps gradients for edges that refinement removed
        m = g.mask.unsqueeze(-1).to(h.dtype)
        pooled = (h * m).sum(dim=-2)  # [B, H] (packed trials: [P, B, H])
        if self.pooling == "mean":
            pooled = pooled / m.sum(dim=-2).clamp(min=1.0)
        if self.minibatch_std:
            parts = pooled.view(*pooled.shape[:-2], groups, -1, pooled.shape[-1])
            std = parts.std(dim=-2, unbiased=False).mean(dim=-1)  # [groups]
            std = std.repeat_interleave(parts.shape[-2], dim=-1).unsqueeze(-1)
            pooled = torch.cat([pooled, std], dim=-1)
        if u is None and generator is not None:
            u = self.draws(len(pooled), generator)
        if u is not None:
            pooled = dropout_from_uniform(pooled, self.dropout, u)
        elif self.training and self.dropout > 0:
            pooled = nn.functional.dropout(pooled, self.dropout, self.training)
        return dense(self.out, pooled)


class Discriminator(GraphCritic):
    """D: real (logit > 0) vs generated cells."""


class Valuer(GraphCritic):
    """V: mode ``C`` gives a logit for 'strong' (top half of the training set by accuracy);
    mode ``R`` regresses accuracy as a fraction (percent / 100)."""

    def __init__(self, *, num_ops: int, mode: str = "C", **kw) -> None:
        assert mode in ("C", "R"), f"valuer mode must be 'C' or 'R', got {mode!r}"
        super().__init__(num_ops=num_ops, out_dim=1, **kw)
        self.mode = mode
