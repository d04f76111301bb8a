"""The GAN update of P >= 1 GNN2GNN trials, written once.

:class:`Training` trains a list of :class:`~trainables.gnn2gnn.trial.Trial` s: one trial
(``Trial.run``) or P packed ones (:mod:`trainables.gnn2gnn.packed`) run the same step. Each
trial keeps its own modules, optimisers, RNG streams and shuffling; the step calls a
per-trial function (:func:`_generate`, :func:`_critic_losses`, :func:`_generator_losses`)

- for P = 1, on the trial's own modules, exactly the unpacked computation;
- for P > 1, once for all trials: the first trial's modules called
  (``torch.func.functional_call``) with every trial's parameters stacked ([P, ...],
  :meth:`Training.stack`). The models' forward passes take an optional leading trial axis
  ([P, B, ...]); their dense layers then run as one batched matmul over the P trials
  (``trainables.gnn2gnn.layers.dense``), so the ~900 small kernel launches of a step are
  paid once for P trials. Each trial's weights get exactly their own gradient (no weight
  is shared; the P losses are summed for one backward), and one optimiser with a parameter
  group per trial (its own learning rate, momentum and Adam moments) updates them.

Every random draw of the GNN2GNN generators and the critics (noise, Gumbel and dropout
uniforms) is made before the forward pass that uses it, from the trial's own ``sampler``
and in the order of the unpacked step (the baselines, one trial at a time, draw as they
go), so a packed
trial's first step equals the unpacked one to float rounding
(``tests/trainables/gnn2gnn/test_packed.py``). Within an epoch every shape is fixed (but
the last, shorter batch) and the step reads nothing back to the host (V's labels for
generated cells are looked up on the device, unless a trial has no device lookup; the
per-step losses are accumulated there and read once per epoch), as CUDA graphs would need.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor
from torch.func import functional_call
from torch.utils._pytree import tree_map

from pipeline.experiment import Reporter, TrialResult
from pipeline.nas.graphs import Graphs
from pipeline.nas.labels import RowLookup
from trainables.gnn2gnn.parts import lambda_at

# the per-step training figures, in the order of the step's output columns
LOSS_NAMES = (
    "d_loss",
    "v_loss",
    "g_loss",
    "gan_loss",
    "reward_loss",
    "d_real_acc",
    "d_fake_acc",
)
MODELS = ("gen", "disc", "valuer")


def _mean(x: Tensor, lead: int) -> Tensor:
    """The mean of each trial's part: of all of ``x`` (one trial), or per row of [P, ...]."""
    return x.mean() if not lead else x.flatten(1).mean(1)


def _loss(fn: Callable, x: Tensor, y: Tensor, lead: int, reduction: str = "mean", **kw):
    """A torch loss reduced per trial. One trial: the loss's own reduction, whose backward
    (e.g. (sigmoid(x) - y) * g / n) rounds differently from a separate mean's (the
    unpacked step's exact gradients); P trials: per row of [P, ...]."""
    if not lead:
        return fn(x, y, reduction=reduction, **kw)
    per = fn(x, y, reduction="none", **kw).flatten(1)
    return per.mean(1) if reduction == "mean" else per.sum(1)


def _sum(x: Tensor, lead: int) -> Tensor:
    return x.sum() if not lead else x.flatten(1).sum(1)


def _generate(m: dict, draws: tuple, tau, *, b: int, entropy: bool, lead: int):
    """Each trial's b generated cells (and the entropy of their distributions)."""
    return m["gen"](b, draws=draws, tau=tau, entropy=entropy)


def _critic_losses(m: dict, real, fake, v_target, gen_t, u_d, u_v, *, valuer: str, lead: int):
    """Each trial's D and V losses (D on real vs the detached generated cells; V on real
    cells and, with ``gen_t``, on the generated cells whose label is known) and its D
    accuracy. ``lead``: 1 when every tensor has a leading trial axis (packed trials)."""
    bce = F.binary_cross_entropy_with_logits
    b = real.x.shape[lead]
    both = Graphs(*(torch.cat([x, y], dim=lead) for x, y in zip(real, fake, strict=True)))
    d_real, d_fake = m["disc"](both, groups=2, u=u_d).split(b, dim=lead)
    d_loss = _loss(bce, d_real, torch.ones_like(d_real), lead) + _loss(
        bce, d_fake, torch.zeros_like(d_fake), lead
    )
    v_input, v_weight = real, None
    if gen_t is not None:
        known = ~torch.isnan(gen_t)
        v_input = both
        v_target = torch.cat([v_target, torch.nan_to_num(gen_t)], dim=lead)
        v_weight = torch.cat([torch.ones_like(gen_t), known.to(gen_t.dtype)], dim=lead)
    v_out = m["valuer"](v_input, u=u_v).squeeze(-1)
    if valuer == "C":
        v_loss = _loss(bce, v_out, v_target, lead, "sum", weight=v_weight)
    else:
        per = F.mse_loss(v_out, v_target, reduction="none")
        v_loss = _sum(per * (1.0 if v_weight is None else v_weight), lead)
    v_loss = v_loss / (b if v_weight is None else _sum(v_weight, lead))
    real_acc = _mean((d_real.detach() > 0).float(), lead)
    fake_acc = _mean((d_fake.detach() < 0).float(), lead)
    stats = torch.stack([d_loss.detach(), v_loss.detach(), real_acc, fake_acc], dim=-1)
    return d_loss + v_loss, stats


def _generator_losses(
    m: dict, fake, entropy, lam, best_acc, u_d, u_v, *, valuer: str, weight: float, lead: int
):
    """Each trial's G loss against the updated critics: lambda * GAN + (1 - lambda) *
    reward, minus ``weight`` times the entropy bonus."""
    bce = F.binary_cross_entropy_with_logits
    d_fake = m["disc"](fake, u=u_d)
    gan_loss = _loss(bce, d_fake, torch.ones_like(d_fake), lead)
    v_fake = m["valuer"](fake, u=u_v)
    if valuer == "C":
        reward_loss = _loss(bce, v_fake, torch.ones_like(v_fake), lead)
    else:
        if lead:
            target = best_acc.view(-1, 1, 1).expand_as(v_fake)
        else:
            target = torch.full_like(v_fake, best_acc)
        reward_loss = _loss(F.mse_loss, v_fake, target, lead)
    g_loss = lam * gan_loss + (1.0 - lam) * reward_loss
    if entropy is not None:
        g_loss = g_loss - weight * entropy
    stats = torch.stack([g_loss.detach(), gan_loss.detach(), reward_loss.detach()], dim=-1)
    return g_loss, stats


def joint(optimizers: Sequence[torch.optim.Optimizer]) -> torch.optim.Optimizer:
    """One optimiser of the type and settings of ``optimizers`` over all their parameter
    groups (each keeps its own learning rate): the same update of every parameter (the
    fused kernels are elementwise), in one call instead of one per trial."""
    first = optimizers[0]
    groups = [dict(g) for o in optimizers for g in o.param_groups]
    return type(first)(groups, **first.defaults)


def _first(a: Any) -> Any:
    """The first trial's part of a per-trial argument (tensors, lists, tuples of them)."""
    if a is None:
        return None
    if isinstance(a, tuple):
        return type(a)(*map(_first, a)) if hasattr(a, "_fields") else tuple(map(_first, a))
    return a[0]


class _Stacked:
    """A module of the first trial called with every trial's parameters stacked ([P, ...],
    :meth:`Training.stack`): its forward, written with an optional leading trial axis, runs
    once for P trials."""

    def __init__(self, module: torch.nn.Module, params: dict[str, Tensor]) -> None:
        self.module, self.params = module, params

    def __call__(self, *args, **kwargs):
        return functional_call(self.module, self.params, args, kwargs)


class Training:
    """Train ``trials`` through the same step; ``run`` returns their results in order. One
    trial, or several that pack: build those with ``trainables.gnn2gnn.packed.PackedTrainer``,
    which checks that they differ only where packed trials may (every other setting is
    read from the first trial). ``step`` called on its own (tests, benchmarks) leaves P
    trials' weights in the stack until ``unstack``; ``run`` unstacks after every epoch."""

    def __init__(self, trials: Sequence[Any]) -> None:
        """``trials``: :class:`~trainables.gnn2gnn.trial.Trial` s (not imported here: the
        trial module imports this one)."""
        if not trials:
            raise ValueError("no trials to train")
        self.trials = list(trials)
        t0 = self.trials[0]
        self.cfg, self.device, self.P = t0.cfg, t0.device, len(self.trials)
        if self.P > 1 and not all(hasattr(t.gen, "draws") for t in self.trials):
            raise ValueError(f"model {self.cfg.model!r} trains one trial at a time")
        self.models = {name: [getattr(t, name) for t in self.trials] for name in MODELS}
        self.params = {  # each trial's parameters by name, in the first trial's order
            name: [dict(m.named_parameters()) for m in mods] for name, mods in self.models.items()
        }
        self.stacked: dict[str, dict[str, Tensor]] | None = None  # see ``stack``
        if t0.trainable:
            self.opt_g, self.opt_dv = t0.opt_g, t0.opt_dv
            if self.P > 1:  # one optimiser, a parameter group per trial (its own rate)
                self.opt_g = joint([t.opt_g for t in self.trials])
                self.opt_dv = joint([t.opt_dv for t in self.trials])
        dev = self.device
        same = all(np.array_equal(t.train_rows, t0.train_rows) for t in self.trials)
        stack = lambda f: torch.stack([f(t) for t in self.trials])  # noqa: E731
        # the training cells: one copy when every trial trains on the same rows
        self.real = t0.real
        if not same:
            self.real = Graphs(*(stack(lambda t, f=f: t.real[f]) for f in range(3)))
        self.shared_data = same
        self.target = stack(lambda t: t.strong if t.cfg.valuer == "C" else t.acc)  # [P, n]
        self.best_acc = self._numbers([t.best_acc for t in self.trials])
        self.tau = None  # one trial: its generator's own
        if self.P > 1:  # broadcast over each trial's [B, N, ...] logits
            self.tau = self._numbers([t.cfg.tau for t in self.trials]).view(-1, 1, 1, 1)
        self.entropy = self.cfg.entropy_weight > 0 and self.cfg.model in (
            "gnn2gnn",
            "gnn2gnn_edges",
        )
        # V's labels for generated cells: looked up on the device (one lookup per benchmark),
        # or, where a trial has none, decoded on the host
        self.on_generated = self.cfg.valuer_on_generated and t0.trainable
        self.gen_target_t = None
        if self.on_generated and (self.P > 1 or t0.row_lookup is not None):
            lookups: dict[int, RowLookup] = {}
            for t in self.trials:
                if id(t.bench) not in lookups:
                    lookups[id(t.bench)] = t.row_lookup or RowLookup(t.bench, t.n, dev)
                t.use_device_labels(lookups[id(t.bench)])
            self.gen_target_t = stack(lambda t: t.gen_target_t)  # [P, len(bench) + 2]

    def _numbers(self, values: list[float]) -> list[float] | Tensor:
        """Per-trial numbers: Python floats for one trial (its exact arithmetic), else [P]."""
        return values if self.P == 1 else torch.tensor(values, device=self.device)

    def per_trial(self, fn: Callable, names: Sequence[str], *args, **const):
        """``fn(models, *args, lead=..., **const)`` for every trial, outputs [P, ...]. ``args``
        have a leading trial axis (or are None). One trial: ``fn`` gets the trial's own
        modules and its part of ``args`` (``lead=0``: exactly the unpacked computation). P
        trials: the first trial's modules called with every trial's parameters stacked
        (:meth:`stack`), and all of ``args`` (``lead=1``)."""
        if self.P == 1:
            own = {n: self.models[n][0] for n in names}
            out = fn(own, *map(_first, args), lead=0, **const)
            return tree_map(lambda x: x.unsqueeze(0), out)
        self.stack()
        models = {n: _Stacked(self.models[n][0], self.stacked[n]) for n in names}
        return fn(models, *args, lead=1, **const)

    def stack(self) -> None:
        """P trials: put each model's parameters in one [P, ...] tensor per name (a leaf that
        the packed forward reads), the trials' own parameters becoming its slices. They keep
        their identity, so the optimiser's state per parameter stays each trial's; backward
        fills the stack's gradient, whose slices are handed to them (``_hand_grads``), and
        the optimiser's update of a trial's parameters is an update of its slice. Done once
        per epoch: the step then stacks nothing. ``unstack`` undoes it."""
        if self.P == 1 or self.stacked is not None:
            return
        self.stacked = {}
        for name, own in self.params.items():
            self.stacked[name] = {}
            for k in own[0]:
                w = torch.stack([o[k].detach() for o in own]).requires_grad_(True)
                for i, o in enumerate(own):
                    o[k].data = w.data[i]
                self.stacked[name][k] = w

    def unstack(self) -> None:
        """Give each trial's parameters their own memory again (for evaluation, copies and
        saving, which would otherwise see the whole stack)."""
        if self.stacked is None:
            return
        for own in self.params.values():
            for o in own:
                for p in o.values():
                    p.data = p.data.clone()
                    p.grad = None  # a view of the stack's gradient
        self.stacked = None

    def _grad_leaves(self, *names: str) -> list[Tensor]:
        """The tensors that get the gradient of a backward pass of model ``names``."""
        if self.P == 1:
            return [p for n in names for p in self.params[n][0].values()]
        return [w for n in names for w in self.stacked[n].values()]

    def _hand_grads(self, *names: str) -> None:
        """P trials: each trial's parameter gets its slice of the stack's gradient."""
        if self.P == 1:
            return
        for n in names:
            for k, w in self.stacked[n].items():
                g, w.grad = w.grad, None
                for i, o in enumerate(self.params[n]):
                    o[k].grad = None if g is None else g[i]

    def _draws(self, name: str, b: int):
        """Each trial's draws for one forward pass of model ``name`` on b graphs, stacked."""
        draws = [m.draws(b, t.sampler) for m, t in zip(self.models[name], self.trials, strict=True)]
        if draws[0] is None:
            return None
        if isinstance(draws[0], tuple):
            return tuple(torch.stack(d) for d in zip(*draws, strict=True))
        return torch.stack(draws)

    def _real_batch(self, idx: Tensor) -> Graphs:
        """idx [P, b] -> the trials' real cells [P, b, ...]."""
        if self.shared_data:
            return Graphs(*(f[idx] for f in self.real))
        p = torch.arange(self.P, device=self.device).unsqueeze(1)
        return Graphs(*(f[p, idx] for f in self.real))

    def _fake(self, b: int):
        """Each trial's b generated cells [P, b, ...] and the entropy [P] (or None)."""
        t0 = self.trials[0]
        if not hasattr(t0.gen, "draws"):  # the baselines: one trial, drawing as they go
            return tree_map(lambda x: x.unsqueeze(0), t0.gen(b, t0.sampler)), None
        out = self.per_trial(
            _generate, ["gen"], self._draws("gen", b), self.tau, b=b, entropy=self.entropy
        )
        return out if self.entropy else (out, None)

    def _generated_targets(self, fake: Graphs) -> Tensor:
        """V's targets [P, b] for the generated cells (NaN: no label)."""
        if self.gen_target_t is not None:  # rows -2 and -1 are the table's last entries
            p, b = fake.x.shape[:2]
            rows = self.trials[0].row_lookup.rows(*(f.flatten(0, 1) for f in fake)).view(p, b)
            return self.gen_target_t.gather(1, rows % self.gen_target_t.shape[1])
        t = self.trials[0]
        one = Graphs(*(f[0] for f in fake))
        rows = t.decoder.rows(one, t.bench.index)
        return torch.as_tensor(t.valuer_targets(rows), device=self.device).unsqueeze(0)

    def step(self, idx: Tensor, lam: Sequence[float] | Tensor) -> Tensor:
        """One D, V and G update of every trial: idx [P, b] its batch of training rows, lam
        its lambda. D and V are updated first (real cells and the detached generated batch),
        then G against the updated critics. Returns the losses [P, len(LOSS_NAMES)]."""
        cfg, trials = self.cfg, self.trials
        b = idx.shape[1]
        real = self._real_batch(idx)
        fake, entropy = self._fake(b)
        detached = Graphs(*(f.detach() for f in fake))
        p = torch.arange(self.P, device=self.device).unsqueeze(1)
        v_target = self.target[p, idx]
        gen_t = self._generated_targets(fake) if self.on_generated else None
        u_d = self._draws("disc", 2 * b)
        u_v = self._draws("valuer", 2 * b if self.on_generated else b)
        dv_loss, dv_stats = self.per_trial(
            _critic_losses,
            ["disc", "valuer"],
            real,
            detached,
            v_target,
            gen_t,
            u_d,
            u_v,
            valuer=cfg.valuer,
        )
        self.opt_dv.zero_grad(set_to_none=True)
        dv_loss.sum().backward()
        self._hand_grads("disc", "valuer")
        self.opt_dv.step()
        u_d, u_v = self._draws("disc", b), self._draws("valuer", b)
        g_loss, g_stats = self.per_trial(
            _generator_losses,
            ["disc", "valuer"],
            fake,
            entropy,
            lam if isinstance(lam, Tensor) else self._numbers(list(lam)),
            self.best_acc,
            u_d,
            u_v,
            valuer=cfg.valuer,
            weight=cfg.entropy_weight,
        )
        self.opt_g.zero_grad(set_to_none=True)
        g_loss.sum().backward(inputs=self._grad_leaves("gen"))  # G grads only
        self._hand_grads("gen")
        self.opt_g.step()
        for t in trials:
            if t.shown is not t.gen:
                t.update_ema()
        return torch.cat([dv_stats[:, :2], g_stats, dv_stats[:, 2:]], dim=1)

    def run(
        self,
        reporters: Sequence[Reporter | None] | None = None,
        progress: bool = False,
        on_result: Callable[[int, TrialResult], None] | None = None,
    ) -> list[TrialResult]:
        """Train every epoch; after each, evaluate and select on each trial; finish each.
        ``on_result(i, result)`` is called as each result is ready."""
        trials, cfg, P = self.trials, self.cfg, self.P
        reporters = list(reporters) if reporters is not None else [None] * P
        for t in trials:
            t.begin()
        t0 = trials[0]
        steps, bs = t0.steps_per_epoch, cfg.batch_size
        bar = None
        if progress and t0.epochs:
            from tqdm import tqdm

            desc = cfg.model if P == 1 else f"packed x{P}"
            bar = tqdm(total=t0.epochs * steps, unit="step", desc=desc, mininterval=1.0)
        for epoch in range(max(t0.epochs, 1)):
            te = time.perf_counter()
            sums: list[dict] = [{} for _ in trials]
            if t0.trainable:
                lam = self._numbers([lambda_at(epoch, t.cfg) for t in trials])
                order = torch.stack([t.epoch_order() for t in trials])  # [P, n_train]
                acc = None
                try:
                    for s in range(steps):
                        out = self.step(order[:, s * bs : (s + 1) * bs], lam)
                        acc = out if acc is None else acc + out
                        if bar is not None:
                            bar.update(1)
                finally:
                    self.unstack()
                means = (acc / steps).tolist()
                sums = [dict(zip(LOSS_NAMES, m, strict=True)) for m in means]
            train_s = (time.perf_counter() - te) / P
            for i, t in enumerate(trials):
                row = t.end_epoch(epoch, sums[i], train_s, te, reporters[i])
            if bar is not None and P == 1:
                bar.set_postfix(top10=f"{row['top10']:.1f}", acc=f"{row['mean_acc']:.2f}")
        if bar is not None:
            bar.close()
        results = []
        for i, t in enumerate(trials):
            res = t.finish()
            if P > 1:
                res.metrics["packed"] = P
            results.append(res)
            if on_result is not None:
                on_result(i, res)
        return results
