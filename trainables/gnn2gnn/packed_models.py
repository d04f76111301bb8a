"""The stacked weights of packed GNN2GNN trials, their batched forward passes and their
optimiser (see :mod:`trainables.gnn2gnn.packed`)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from pipeline.nas.graphs import Graphs, refine
from trainables.gnn2gnn.config import GNN2GNNConfig
from trainables.gnn2gnn.edgeform import edge_ops_to_graphs, op_entropy
from trainables.gnn2gnn.generators import fixed_io
from trainables.gnn2gnn.layers import (
    dropout_from_uniform,
    gumbel_from_uniform,
    gumbel_sigmoid_st,
    gumbel_softmax_st,
)
from trainables.gnn2gnn.trial import Trial


class Stacked:
    """The parameters of P modules of one architecture, stacked ([P, ...]) as leaves."""

    def __init__(self, modules: Sequence[nn.Module]) -> None:
        self.modules = list(modules)
        self.names = [name for name, _ in self.modules[0].named_parameters()]
        self.p: dict[str, Tensor] = {}
        for name in self.names:
            parts = [dict(m.named_parameters())[name].detach() for m in self.modules]
            self.p[name] = torch.stack(parts).requires_grad_(True)

    def params(self) -> list[Tensor]:
        return list(self.p.values())

    @torch.no_grad()
    def write_back(self) -> None:
        """Copy each trial's slice into its own module."""
        for i, module in enumerate(self.modules):
            own = dict(module.named_parameters())
            for name in self.names:
                own[name].copy_(self.p[name][i])

    def linear(self, name: str, x: Tensor) -> Tensor:
        """``nn.Linear`` ``name`` of every trial: x [P, ..., in] -> [P, ..., out]."""
        w = self.p[f"{name}.weight"]  # [P, out, in]
        b = self.p.get(f"{name}.bias")
        flat = x.reshape(x.shape[0], -1, x.shape[-1])
        if b is None:
            y = torch.bmm(flat, w.transpose(1, 2))
        else:
            y = torch.baddbmm(b.unsqueeze(1), flat, w.transpose(1, 2))
        return y.view(*x.shape[:-1], w.shape[1])

    def conv(self, name: str, x: Tensor, adj: Tensor) -> Tensor:
        """``DirectedDenseConv`` ``name``: x [P, B, N, in], adj [P * B, N, N] -> [P, B, N, out]."""
        y = self.linear(f"{name}.lin", x)
        p, b, n, _ = y.shape
        root, from_pred, from_succ = y.reshape(p * b, n, -1).split(y.shape[-1] // 3, dim=-1)
        out = root + torch.bmm(adj.transpose(1, 2), from_pred) + torch.bmm(adj, from_succ)
        return out.view(p, b, n, -1)


def _stack_draws(gens: Sequence[torch.Generator], shape: tuple, device, normal=False) -> Tensor:
    draw = torch.randn if normal else torch.rand
    return torch.stack([draw(shape, generator=g, device=device) for g in gens])


class PackedModels:
    """The P trials' G, D and V as stacked weights, and their packed forward passes."""

    def __init__(self, trials: Sequence[Trial]) -> None:
        self.trials = list(trials)
        t0 = self.trials[0]
        self.P, self.device, self.cfg = len(trials), t0.device, t0.cfg
        self.gen = Stacked([t.gen for t in trials])
        self.disc = Stacked([t.disc for t in trials])
        self.valuer = Stacked([t.valuer for t in trials])
        self.samplers = [t.sampler for t in trials]
        g = t0.gen
        self.n, self.num_ops, self.mu, self.noise_dim = g.num_nodes, g.num_ops, g.mu, g.noise_dim
        self.full_dag = getattr(g, "full_dag", None)  # the node-form generator's
        self.last_entropy: Tensor | None = None  # [P], edge-form generator with a bonus
        # per-trial temperature, broadcast over a flattened [P * B, ...] batch
        self.tau = torch.tensor([t.cfg.tau for t in trials], device=self.device)

    def _tau(self, b: int, dims: int) -> Tensor:
        return self.tau.repeat_interleave(b).view(-1, *([1] * dims))

    def generate(self, b: int) -> Graphs:
        """b cells per trial: Graphs over the flattened [P * b] batch (trial-major)."""
        if self.cfg.model == "gnn2gnn_edges":
            return self._generate_edge_form(b)
        P, n, dev, cfg = self.P, self.n, self.device, self.cfg
        h = _stack_draws(self.samplers, (b, n, self.noise_dim), dev, cfg.noise == "normal")
        full = self.full_dag.expand(P * b, -1, -1)
        for i in range(self.mu):
            h = torch.relu(self.gen.conv(f"convs.{i}", h, full))
        src = self.gen.linear("edge_src", h).reshape(P * b, n, -1)
        dst = self.gen.linear("edge_dst", h).reshape(P * b, n, -1)
        logits = self.trials[0].gen.edge_logits_from(src, dst)
        score = torch.sigmoid(logits) * full
        u = _stack_draws(self.samplers, (b, n, n), dev).view(P * b, n, n)
        edges = gumbel_sigmoid_st(logits, self._tau(b, 2), None, u=u) * full
        h_op = torch.relu(self.gen.conv("op_conv", h, edges * score))
        op_logits = self.gen.linear("op_out", h_op).reshape(P * b, n, -1)
        u = _stack_draws(self.samplers, (b, n, self.num_ops - 2), dev)
        noise = gumbel_from_uniform(u).view(P * b, n, -1)
        ops = gumbel_softmax_st(op_logits, self._tau(b, 2), None, noise=noise)
        return refine(fixed_io(ops), edges)

    def _generate_edge_form(self, b: int) -> Graphs:
        """``generate`` for ``gnn2gnn_edges`` (:class:`EdgeFormGenerator`), same draws."""
        P, dev, cfg, g0 = self.P, self.device, self.cfg, self.trials[0].gen
        h = _stack_draws(self.samplers, (b, 4, self.noise_dim), dev, cfg.noise == "normal")
        dag = g0.cell_dag.expand(P * b, -1, -1)
        for i in range(self.mu):
            h = torch.relu(self.gen.conv(f"convs.{i}", h, dag))
        logits = self.gen.linear("edge_src", h[:, :, g0.src]) + self.gen.linear(
            "edge_dst", h[:, :, g0.dst]
        )  # [P, b, 6, ops]
        if cfg.entropy_weight > 0:
            self.last_entropy = op_entropy(logits).mean((1, 2))
        shape = logits.shape[2:]
        noise = gumbel_from_uniform(_stack_draws(self.samplers, (b, *shape), dev))
        flat = logits.reshape(P * b, *shape)
        ops = gumbel_softmax_st(flat, self._tau(b, 2), None, noise=noise.view(P * b, *shape))
        return edge_ops_to_graphs(ops)

    def critic(self, w: Stacked, module: nn.Module, g: Graphs, groups: int = 1) -> Tensor:
        """D or V (``module`` gives the settings) of every trial on its own part of the
        flattened batch g ([P * M, ...]): [P, M] outputs."""
        P = self.P
        m_total, n, _ = g.x.shape
        m = m_total // P
        h = g.x.view(P, m, n, -1)
        for i in range(len(module.convs)):
            h = torch.relu(w.conv(f"convs.{i}", h, g.adj))
        mask = g.mask.view(P, m, n, 1).to(h.dtype)
        pooled = (h * mask).sum(dim=2)  # [P, m, H]
        if module.pooling == "mean":
            pooled = pooled / mask.sum(dim=2).clamp(min=1.0)
        if module.minibatch_std:
            parts = pooled.view(P, groups, -1, pooled.shape[-1])
            std = parts.std(dim=2, unbiased=False).mean(dim=-1)  # [P, groups]
            std = std.repeat_interleave(parts.shape[2], dim=1).unsqueeze(-1)
            pooled = torch.cat([pooled, std], dim=-1)
        if module.training and module.dropout > 0:
            u = _stack_draws(self.samplers, tuple(pooled.shape[1:]), self.device)
            pooled = dropout_from_uniform(pooled, module.dropout, u)
        return w.linear("out", pooled).squeeze(-1)


class PackedOptimizer:
    """SGD (momentum, weight decay) or Adam over stacked parameters, one learning rate per
    trial; the update of each trial's slice is torch's ``SGD`` / ``Adam`` update."""

    def __init__(self, params: list[Tensor], lr: Sequence[float], cfg: GNN2GNNConfig) -> None:
        self.params, self.cfg = params, cfg
        self.lr = torch.tensor(lr, dtype=params[0].dtype, device=params[0].device)
        self.state: list[dict] = [{} for _ in params]
        self.step_count = 0

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    @torch.no_grad()
    def step(self) -> None:
        cfg = self.cfg
        self.step_count += 1
        t = self.step_count
        for p, st in zip(self.params, self.state, strict=True):
            g = p.grad
            if g is None:
                continue
            lr = self.lr.view(-1, *([1] * (p.dim() - 1)))
            if cfg.weight_decay:
                g = g.add(p, alpha=cfg.weight_decay)
            if cfg.optimizer == "sgd":
                if cfg.momentum:
                    buf = st.get("momentum")
                    if buf is None:
                        buf = st["momentum"] = g.clone()
                    else:
                        buf.mul_(cfg.momentum).add_(g)
                    g = buf
                p.sub_(lr * g)
            else:
                b1, b2, eps = 0.9, 0.999, 1e-8
                if not st:
                    st["m"], st["v"] = torch.zeros_like(p), torch.zeros_like(p)
                st["m"].lerp_(g, 1 - b1)
                st["v"].mul_(b2).addcmul_(g, g, value=1 - b2)
                denom = (st["v"].sqrt() / math.sqrt(1 - b2**t)).add_(eps)
                p.sub_((lr / (1 - b1**t)) * st["m"] / denom)
