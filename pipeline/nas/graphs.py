"""Dense graph batches: the common layout of generated cells, reachability, refinement.

A :class:`Graphs` batch holds one-hot ops ``x`` [B, N, K] in the search space's order (input
on slot 0), adjacency ``adj`` [B, N, N] (strictly upper-triangular, 0/1 in the forward pass,
straight-through gradients), and the node mask after refinement. Refinement
(:func:`refine`) is the non-differentiable last step: nodes off every input-to-output path
are zeroed, so critics see the same form as real cells.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import Tensor


class Graphs(NamedTuple):
    """A dense batch of cells (see module docstring)."""

    x: Tensor  # [B, N, K]
    adj: Tensor  # [B, N, N]
    mask: Tensor  # [B, N] bool: node present after refinement

    def detach(self) -> Graphs:
        return Graphs(self.x.detach(), self.adj.detach(), self.mask)


def on_path(adj: Tensor, source: Tensor, sink: Tensor) -> Tensor:
    """[B, N] bool: nodes forward-reachable from ``source`` AND backward-reachable from ``sink``
    (both [B, N] bool one-hot) along the 0/1 edges of ``adj`` [B, N, N].

    Reachability is the transitive closure of I + A by repeated squaring: ceil(log2 N)
    batched matmuls instead of a loop over graphs.
    """
    n = adj.shape[-1]
    reach = (adj.detach() > 0.5).to(torch.float32) + torch.eye(n, device=adj.device)
    for _ in range(max(1, math.ceil(math.log2(n)))):
        reach = torch.bmm(reach, reach).clamp(max=1.0)
    fwd = torch.bmm(source.to(torch.float32).unsqueeze(1), reach).squeeze(1) > 0
    bwd = torch.bmm(reach, sink.to(torch.float32).unsqueeze(2)).squeeze(2) > 0
    return fwd & bwd


def refine(x: Tensor, adj: Tensor, present: Tensor | None = None) -> Graphs:
    """Drop unsampled edges, absent and isolated nodes, and nodes off input-output paths.

    The input node is the one with op index 0, the output the one with the last op index.
    Graphs with no path keep their connected nodes (see below); the metrics count them
    invalid.
    """
    hard_x = x.detach() > 0.5
    if present is not None:
        adj = adj * (present.unsqueeze(2) & present.unsqueeze(1)).to(adj.dtype)
    keep = on_path(adj, hard_x[..., 0], hard_x[..., -1])
    # A graph with no input-output path has nothing to keep. Emptying it would leave the
    # critics nothing to judge and the generator no gradient, so it is left unrefined
    # (only isolated nodes dropped): the critics learn to reject it, the metrics count it
    # invalid.
    hard_adj = adj.detach() > 0.5
    connected = hard_adj.any(1) | hard_adj.any(2) | hard_x[..., 0] | hard_x[..., -1]
    keep = torch.where(keep[:, :1], keep, connected)
    if present is not None:
        keep = keep & present
    k = keep.to(x.dtype)
    # Straight-through: the forward pass drops the refined-away nodes and edges; the backward
    # pass is the identity, so the critics' gradients with respect to a missing edge or node
    # still reach the generator (otherwise a graph without an input-output path would give
    # no gradient at all, and a generator emitting such graphs could never recover).
    x_drop = x * (1.0 - k).unsqueeze(-1)
    adj_drop = adj * (1.0 - k.unsqueeze(2) * k.unsqueeze(1))
    return Graphs(x - x_drop.detach(), adj - adj_drop.detach(), keep)
