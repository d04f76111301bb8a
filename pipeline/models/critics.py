"""Discriminator and valuer: nu graph convolutions, pooling over present nodes, one dense layer."""

from __future__ import annotations

from itertools import pairwise

import torch
from torch import Tensor, nn

from pipeline.models.generators import Graphs
from pipeline.models.layers import DirectedDenseConv


class GraphCritic(nn.Module):
    """nu directed graph convolutions, sum pooling over present nodes, a dense output layer.

    Args:
        num_ops: K, the one-hot op size.
        nu: number of graph convolutions (the paper uses 2).
        hidden: hidden feature size.
        out_dim: outputs per graph (1: a logit or a regressed value).

    Shapes: Graphs(x [B, N, K], adj [B, N, N], mask [B, N]) -> [B, out_dim].
    """

    def __init__(self, *, num_ops: int, nu: int = 2, hidden: int = 64, out_dim: int = 1) -> None:
        super().__init__()
        assert nu >= 1, f"nu (graph convolutions) must be >= 1, got {nu}"
        dims = [num_ops] + [hidden] * nu
        self.convs = nn.ModuleList(DirectedDenseConv(a, b) for a, b in pairwise(dims))
        self.out = nn.Linear(hidden, out_dim)

    def forward(self, g: Graphs) -> Tensor:
        h = g.x
        for conv in self.convs:
            h = torch.relu(conv(h, g.adj))
        # absent nodes have zero features and no edges; excluding them from the pooling only
        # (not inside the convolutions) keeps gradients for edges that refinement removed
        return self.out((h * g.mask.unsqueeze(-1).to(h.dtype)).sum(dim=1))


class Discriminator(GraphCritic):
    """D: real (logit > 0) vs generated cells."""


class Valuer(GraphCritic):
    """V: mode ``C`` gives a logit for 'strong' (top half of the training set by accuracy);
    mode ``R`` regresses accuracy as a fraction (percent / 100)."""

    def __init__(self, *, num_ops: int, mode: str = "C", nu: int = 2, hidden: int = 64) -> None:
        assert mode in ("C", "R"), f"valuer mode must be 'C' or 'R', got {mode!r}"
        super().__init__(num_ops=num_ops, nu=nu, hidden=hidden, out_dim=1)
        self.mode = mode
