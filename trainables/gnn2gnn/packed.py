"""Trial packing: P GNN2GNN trials that share shapes trained as one batched model.

Trials pack when they differ only in ``seed``, ``lambda``, ``tau``, ``lr`` and
``lr_critic`` (:func:`pack_key` is equal). Each keeps its own :class:`Trial` (data split,
RNG streams, evaluation, selection, result); only the training step is shared: the
generators', discriminators' and valuers' weights are stacked along a leading trial
dimension ([P, ...]) and every dense layer runs as one batched matmul over the P trials, so
the ~900 small kernel launches of a step are paid once for P trials instead of P times.

Per trial, exactly as the unpacked step (``Trial.step``):

- the noise, Gumbel and dropout draws come from the trial's own ``sampler`` in the same
  order, and the training batches from its own shuffling stream;
- losses are the trial's own means; the P losses are summed for one backward, which gives
  each trial's weights exactly its own gradient (no weight is shared);
- optimiser state (momentum, Adam moments) is per trial, with the trial's learning rate.

At the same seed and initial weights the first step's losses equal the unpacked ones to
float rounding (``tests/trainables/gnn2gnn/test_packed.py``); later steps drift apart by
rounding only, which GAN training amplifies, so packed and unpacked runs agree
statistically, not bitwise. After every epoch the stacked weights are copied back into each
trial's modules, which are then evaluated and selected on exactly as in an unpacked run.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from pipeline.experiment import Reporter, TrialResult
from pipeline.nas.graphs import Graphs
from pipeline.nas.labels import RowLookup
from trainables.gnn2gnn.config import GNN2GNNConfig
from trainables.gnn2gnn.packed_models import PackedModels, PackedOptimizer
from trainables.gnn2gnn.parts import lambda_at
from trainables.gnn2gnn.trial import Trial

# fields packed trials may differ in; every other field must be equal
PACKABLE_FIELDS = ("seed", "lam", "tau", "lr", "lr_critic")
LOSS_NAMES = (
    "d_loss",
    "v_loss",
    "g_loss",
    "gan_loss",
    "reward_loss",
    "d_real_acc",
    "d_fake_acc",
)


def packable(cfg: GNN2GNNConfig) -> str | None:
    """None when a trial with this config can be packed, else the reason why not."""
    if cfg.model not in ("gnn2gnn", "gnn2gnn_edges"):
        return f"model {cfg.model!r} (only the GNN2GNN generators pack)"
    if cfg.entropy_weight > 0 and cfg.model == "gnn2gnn":
        return "entropy_weight > 0 (packs with gnn2gnn_edges only)"
    if cfg.spectral_norm:
        return "spectral_norm"
    if cfg.generator_ema > 0:
        return "generator_ema > 0"
    return None


def pack_key(cfg: GNN2GNNConfig) -> tuple | None:
    """Trials with equal keys can be packed together (None: this one cannot be packed)."""
    if packable(cfg) is not None:
        return None
    data = cfg.model_dump(exclude=set(PACKABLE_FIELDS))
    if cfg.split_seed is None:  # the split follows the seed: the data differ per trial
        data["seed"] = cfg.seed
    return tuple(sorted((k, repr(v)) for k, v in data.items()))


class PackedTrainer:
    """Train P packable trials (see module docstring) together; ``run`` returns their
    results in order."""

    def __init__(self, trials: Sequence[Trial]) -> None:
        if not trials:
            raise ValueError("nothing to pack")
        self.trials = list(trials)
        keys = {pack_key(t.cfg) for t in self.trials}
        if None in keys or len(keys) > 1:
            why = [packable(t.cfg) for t in self.trials if packable(t.cfg)]
            raise ValueError(
                "these trials cannot be packed together: "
                + (why[0] if why else f"they differ in more than {', '.join(PACKABLE_FIELDS)}")
            )
        t0 = self.trials[0]
        self.cfg, self.device, self.P = t0.cfg, t0.device, len(self.trials)
        self.models = PackedModels(self.trials)
        self.opt_g = PackedOptimizer(
            self.models.gen.params(), [t.cfg.lr for t in self.trials], self.cfg
        )
        self.opt_dv = PackedOptimizer(
            self.models.disc.params() + self.models.valuer.params(),
            [t.cfg.lr_critic or t.cfg.lr for t in self.trials],
            self.cfg,
        )
        same = all(np.array_equal(t.train_rows, t0.train_rows) for t in self.trials)
        # the training cells: shared when every trial trains on the same rows
        self.real = (
            t0.real
            if same
            else Graphs(
                *(torch.stack([getattr(t.real, f) for t in self.trials]) for f in Graphs._fields)
            )
        )
        self.shared_data = same
        self.strong = torch.stack([t.strong for t in self.trials])  # [P, n_train]
        self.acc = torch.stack([t.acc for t in self.trials])
        self.best_acc = torch.tensor([t.best_acc for t in self.trials], device=self.device)
        # V's targets for generated cells: rows by tensor ops (``pipeline.nas.labels``; on P x b
        # graphs faster than the decoder's per-graph cache, whose misses cost md5 hashing)
        if self.cfg.valuer_on_generated:
            lookups: dict[int, RowLookup] = {}  # one per benchmark object, shared
            for t in self.trials:
                if id(t.bench) not in lookups:
                    lookups[id(t.bench)] = t.row_lookup or RowLookup(t.bench, t.n, t.device)
                t.use_device_labels(lookups[id(t.bench)])
            self.gen_target_t = torch.stack([t.gen_target_t for t in self.trials])

    def _real_batch(self, idx: Tensor) -> Graphs:
        """idx [P, b] -> the trials' real cells, flattened [P * b, ...]."""
        if self.shared_data:
            return Graphs(*(f[idx.reshape(-1)] for f in self.real))
        p = torch.arange(self.P, device=self.device).unsqueeze(1)
        return Graphs(*(f[p, idx].flatten(0, 1) for f in self.real))

    def step(self, idx: Tensor, lam: Tensor) -> Tensor:
        """One packed D, V and G update; idx [P, b] rows per trial, lam [P]. Returns the
        losses [P, len(LOSS_NAMES)] (the unpacked step's, per trial)."""
        cfg, P, dev, mods = self.cfg, self.P, self.device, self.models
        b = idx.shape[1]
        real = self._real_batch(idx)
        fake = mods.generate(b)
        t0 = self.trials[0]

        def bce(logits: Tensor, target: float) -> Tensor:  # [P, m] -> per-trial mean [P]
            y = torch.full_like(logits, target)
            return F.binary_cross_entropy_with_logits(logits, y, reduction="none").mean(1)

        # discriminator on [real_p ; fake_p] per trial
        def per_trial_cat(a: Tensor, c: Tensor) -> Tensor:
            return torch.cat([a.view(P, b, *a.shape[1:]), c.view(P, b, *c.shape[1:])], 1).flatten(
                0, 1
            )

        fd = fake.detach()
        both = Graphs(*(per_trial_cat(r, f) for r, f in zip(real, fd, strict=True)))
        d_out = mods.critic(mods.disc, t0.disc, both, groups=2)  # [P, 2b]
        d_real, d_fake = d_out[:, :b], d_out[:, b:]
        d_loss = bce(d_real, 1.0) + bce(d_fake, 0.0)
        # valuer on real training cells (and generated ones the protocol labels)
        p_idx = torch.arange(P, device=dev).unsqueeze(1)
        v_target = (self.strong if cfg.valuer == "C" else self.acc)[p_idx, idx]  # [P, b]
        if cfg.valuer_on_generated:
            rows = t0.row_lookup.rows(fake.x, fake.adj, fake.mask).view(P, b)
            gen_t = self.gen_target_t.gather(1, rows % self.gen_target_t.shape[1])
            known = ~torch.isnan(gen_t)
            v_in = both
            v_target = torch.cat([v_target, torch.nan_to_num(gen_t)], 1)
            v_weight = torch.cat([torch.ones(P, b, device=dev), known.float()], 1)
        else:
            v_in, v_weight = real, torch.ones(P, b, device=dev)
        v_out = mods.critic(mods.valuer, t0.valuer, v_in)
        if cfg.valuer == "C":
            per = F.binary_cross_entropy_with_logits(v_out, v_target, reduction="none")
        else:
            per = F.mse_loss(v_out, v_target, reduction="none")
        v_loss = (per * v_weight).sum(1) / v_weight.sum(1)
        self.opt_dv.zero_grad()
        (d_loss + v_loss).sum().backward()
        self.opt_dv.step()
        # generator against the updated critics
        gan_loss = bce(mods.critic(mods.disc, t0.disc, fake), 1.0)
        v_fake = mods.critic(mods.valuer, t0.valuer, fake)
        if cfg.valuer == "C":
            reward_loss = bce(v_fake, 1.0)
        else:
            reward_loss = ((v_fake - self.best_acc.unsqueeze(1)) ** 2).mean(1)
        g_loss = lam * gan_loss + (1.0 - lam) * reward_loss
        if mods.last_entropy is not None:  # diversity bonus (gnn2gnn_edges)
            g_loss = g_loss - cfg.entropy_weight * mods.last_entropy
        self.opt_g.zero_grad()
        g_loss.sum().backward(inputs=self.opt_g.params)  # no critic weight grads
        self.opt_g.step()
        return torch.stack(
            [
                d_loss.detach(),
                v_loss.detach(),
                g_loss.detach(),
                gan_loss.detach(),
                reward_loss.detach(),
                (d_real.detach() > 0).float().mean(1),
                (d_fake.detach() < 0).float().mean(1),
            ],
            dim=1,
        )

    def run(
        self,
        reporters: Sequence[Reporter | None] | None = None,
        progress: bool = False,
        on_result: Callable[[int, TrialResult], None] | None = None,
    ) -> list[TrialResult]:
        """Train all epochs packed; evaluate, select and finish each trial as ``Trial.run``
        does. ``on_result(i, result)`` is called as each result is ready."""
        trials, cfg = self.trials, self.cfg
        reporters = list(reporters) if reporters is not None else [None] * self.P
        for t in trials:
            t.begin()
        steps, bs = trials[0].steps_per_epoch, cfg.batch_size
        bar = None
        if progress:
            from tqdm import tqdm

            bar = tqdm(total=cfg.epochs * steps, unit="step", desc=f"packed x{self.P}")
        for epoch in range(cfg.epochs):
            te = time.perf_counter()
            lam = torch.tensor([lambda_at(epoch, t.cfg) for t in trials], device=self.device)
            order = torch.stack([t.epoch_order() for t in trials])  # [P, n_train]
            acc = None
            for s in range(steps):
                out = self.step(order[:, s * bs : (s + 1) * bs], lam)
                acc = out if acc is None else acc + out
                if bar is not None:
                    bar.update(1)
            means = (acc / steps).tolist()
            train_s = time.perf_counter() - te
            self.write_back()
            for i, t in enumerate(trials):
                sums = dict(zip(LOSS_NAMES, means[i], strict=True))
                t.end_epoch(epoch, sums, train_s / self.P, te, reporters[i])
        if bar is not None:
            bar.close()
        results = []
        for i, t in enumerate(trials):
            res = t.finish()
            res.metrics["packed"] = self.P
            results.append(res)
            if on_result is not None:
                on_result(i, res)
        return results

    def write_back(self) -> None:
        for w in (self.models.gen, self.models.disc, self.models.valuer):
            w.write_back()


def run_packed(
    configs: Sequence[GNN2GNNConfig],
    reporters: Sequence[Reporter | None] | None = None,
    progress: bool = False,
    bench=None,
) -> list[TrialResult]:
    """Build the trials and train them packed (one group; see :class:`PackedTrainer`)."""
    first = Trial(configs[0], bench)  # its tables serve every trial of the group
    trials = [first] + [Trial(cfg, first.bench) for cfg in configs[1:]]
    return PackedTrainer(trials).run(reporters, progress)
