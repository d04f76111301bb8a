"""One GNN2GNN trial (or a baseline): train G, D and V on a benchmark, generate, evaluate.

``run_trial(config_dict)`` validates the config, trains, reports metrics each epoch through
a reporter callback and returns a :class:`TrialResult` (final metrics, generated cells,
model state). Same config and seed on the CPU give identical metrics.

Training follows the paper by default: 20 epochs over the training split, batch 32, SGD
lr 0.001; lambda = 1 for the first ``warmup_fraction`` of the epochs, then the configured
lambda; L_G = lambda * GAN loss + (1 - lambda) * reward loss, with the non-saturating GAN
loss -log D(G(z)) and reward loss BCE(V(G(z)), strong) (mode C) or
MSE(V(G(z)), best training accuracy) (mode R). D is trained on real vs generated cells;
V on the real training cells only (labels from the benchmark, no lookups in the loop).
"""

from __future__ import annotations

import math
import time
from typing import Literal

import numpy as np
import pydantic
import torch
import torch.nn.functional as F

from pipeline.benchmarks import Benchmark, load_benchmark
from pipeline.cells import table_to_dense
from pipeline.config import StrictModel, validate
from pipeline.decode import CellDecoder, TranslatingDecoder
from pipeline.metrics import Reference, generation_metrics
from pipeline.models import (
    Discriminator,
    ErdosRenyiGenerator,
    Generator,
    Graphs,
    MolGANGenerator,
    RNNGenerator,
    Valuer,
)
from pipeline.spaces import OP_TRANSFER
from trainables.common import Reporter, TrialResult, pick_device, run_under_tune

# Scale profiles change only sizes: epochs, how much of the training split, sample counts.
PROFILES: dict[str, dict] = {
    "smoke": {"epochs": 2, "max_train_cells": 256, "num_generated": 200},
    "cpu": {"epochs": 20, "max_train_cells": 4000, "num_generated": 1000},
    "paper": {"epochs": 20, "max_train_cells": None, "num_generated": 1000},
}

# Acc_n threshold (percent) per (benchmark, data set); the paper uses 90 on CIFAR-10.
DEFAULT_ACC_THRESHOLD = {"cifar10": 90.0, "cifar100": 70.0, "ImageNet16-120": 40.0}


class GNN2GNNConfig(StrictModel):
    """Typed config of one trial. ``lambda`` is accepted as the key for ``lam``."""

    model_config = pydantic.ConfigDict(extra="forbid", populate_by_name=True)

    benchmark: Literal["nasbench101", "natsbench"] = "nasbench101"
    dataset: Literal["cifar10", "cifar100", "ImageNet16-120"] = "cifar10"
    label: str | None = None
    data_dir: str | None = None
    model: Literal["gnn2gnn", "molgan", "rnn", "random"] = "gnn2gnn"
    mu: int = pydantic.Field(2, ge=1, le=8, description="generator graph convolutions")
    tau: float = pydantic.Field(0.1, gt=0, description="Gumbel-softmax temperature")
    lam: float = pydantic.Field(0.1, ge=0, le=1, alias="lambda", description="GAN/reward mix")
    valuer: Literal["C", "R"] = "C"
    top_n_removed: float = pydantic.Field(10.0, ge=0, lt=100)
    train_fraction: float = pydantic.Field(0.75, gt=0, le=1)
    epochs: int = pydantic.Field(20, ge=1)
    batch_size: int = pydantic.Field(32, ge=1)
    optimizer: Literal["sgd", "adam"] = "sgd"
    lr: float = pydantic.Field(0.001, gt=0)
    momentum: float = pydantic.Field(0.0, ge=0, lt=1)
    weight_decay: float = pydantic.Field(0.0, ge=0)
    warmup_fraction: float = pydantic.Field(0.5, ge=0, le=1, description="lambda=1 phase")
    hidden: int = pydantic.Field(32, ge=1, description="hidden size of G, D and V")
    noise_dim: int = pydantic.Field(16, ge=1, description="random node feature size")
    num_nodes: int | None = pydantic.Field(None, ge=2, description="N; default: space max")
    nu: int = pydantic.Field(2, ge=1, description="critic graph convolutions")
    valuer_on_generated: bool = pydantic.Field(
        True, description="also train V on generated cells labelled from the training split"
    )
    er_p: float = pydantic.Field(0.4, gt=0, lt=1, description="Erdos-Renyi edge probability")
    num_generated: int = pydantic.Field(1000, ge=1, description="K cells for the metrics")
    max_train_cells: int | None = pydantic.Field(None, ge=1)
    acc_threshold: float | None = None
    eval_benchmark: Literal["nasbench101", "natsbench"] | None = pydantic.Field(
        None, description="evaluate generated cells on another benchmark (transfer)"
    )
    eval_dataset: Literal["cifar10", "cifar100", "ImageNet16-120"] | None = None
    seed: int = 0
    profile: Literal["smoke", "cpu", "paper"] = "paper"
    device: Literal["auto", "cpu", "cuda"] = "auto"

    @pydantic.model_validator(mode="after")
    def _check(self) -> GNN2GNNConfig:
        if self.benchmark == "nasbench101" and self.dataset != "cifar10":
            raise ValueError("NAS-Bench-101 has CIFAR-10 only")
        if self.eval_benchmark == "nasbench101" and self.eval_dataset not in (None, "cifar10"):
            raise ValueError("NAS-Bench-101 has CIFAR-10 only")
        target = self.eval_benchmark or self.benchmark
        if target != self.benchmark and (self.benchmark, target) not in OP_TRANSFER:
            raise ValueError(f"no op mapping from {self.benchmark} to {target}")
        return self


def make_config(data: dict, source: str = "trial config") -> GNN2GNNConfig:
    """Validate a config dict; the profile's sizes fill fields the dict does not set."""
    data = dict(data)
    profile = data.get("profile", "paper")
    if profile not in PROFILES:
        return validate(GNN2GNNConfig, data, source)  # reports the bad profile
    merged = {**{k: v for k, v in PROFILES[profile].items()}, **data}
    return validate(GNN2GNNConfig, merged, source)


def build_generator(cfg: GNN2GNNConfig, num_ops: int, n: int) -> torch.nn.Module:
    kw = {"num_ops": num_ops, "num_nodes": n}
    if cfg.model == "gnn2gnn":
        return Generator(**kw, mu=cfg.mu, tau=cfg.tau, noise_dim=cfg.noise_dim, hidden=cfg.hidden)
    if cfg.model == "molgan":
        return MolGANGenerator(**kw, tau=cfg.tau, noise_dim=cfg.noise_dim, hidden=2 * cfg.hidden)
    if cfg.model == "rnn":
        return RNNGenerator(**kw, tau=cfg.tau, noise_dim=cfg.noise_dim, hidden=cfg.hidden)
    return ErdosRenyiGenerator(**kw, p=cfg.er_p)


def _optimizer(cfg: GNN2GNNConfig, params) -> torch.optim.Optimizer:
    if cfg.optimizer == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay, fused=True)
    return torch.optim.SGD(
        params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay, fused=True
    )


def lambda_at(epoch: int, cfg: GNN2GNNConfig) -> float:
    """lambda for a 0-based epoch: 1 during the first warmup_fraction of the epochs."""
    return 1.0 if epoch < math.ceil(cfg.warmup_fraction * cfg.epochs) else cfg.lam


@torch.no_grad()
def generate(
    gen: torch.nn.Module,
    k: int,
    decoder: CellDecoder,
    generator: torch.Generator,
    chunk: int = 4096,
) -> tuple[np.ndarray, list[str | None]]:
    """K generated cells: their keys and canonical hashes (None = invalid)."""
    was_training = gen.training
    gen.eval()
    keys, hashes = [], []
    for start in range(0, k, chunk):
        dec = decoder.decode(gen(min(chunk, k - start), generator))
        keys.append(dec.keys)
        hashes.extend(dec.hashes)
    gen.train(was_training)
    return np.concatenate(keys), hashes


class Trial:
    """State of one trial; ``run`` trains and evaluates (see the module docstring)."""

    def __init__(self, cfg: GNN2GNNConfig, bench: Benchmark | None = None) -> None:
        self.cfg = cfg
        self.device = pick_device(cfg.device)
        self.bench = bench or load_benchmark(
            cfg.benchmark, cfg.dataset, cfg.data_dir, label=cfg.label
        )
        space = self.bench.space
        self.n = cfg.num_nodes or space.max_vertices
        self.split = self.bench.split(cfg.top_n_removed, cfg.train_fraction, cfg.seed)
        rows, strong = self.split.train, self.split.strong
        if cfg.max_train_cells is not None and len(rows) > cfg.max_train_cells:
            pick = np.sort(
                np.random.default_rng(cfg.seed + 1).choice(len(rows), cfg.max_train_cells, False)
            )
            rows, strong = rows[pick], strong[pick]
        self.train_rows = rows
        x, a, m = table_to_dense(
            self.bench.ops[rows],
            self.bench.adjacency[rows],
            self.bench.num_vertices[rows],
            space.num_ops,
            self.n,
        )
        dev = self.device
        self.real = Graphs(x.to(dev), a.to(dev), m.to(dev))
        self.strong = torch.as_tensor(strong, dtype=torch.float32, device=dev)
        self.acc = torch.as_tensor(
            self.bench.accuracy[rows] / 100.0, dtype=torch.float32, device=dev
        )
        torch.manual_seed(cfg.seed)
        self.gen = build_generator(cfg, space.num_ops, self.n).to(dev)
        self.disc = Discriminator(num_ops=space.num_ops, nu=cfg.nu, hidden=cfg.hidden).to(dev)
        self.valuer = Valuer(
            num_ops=space.num_ops, mode=cfg.valuer, nu=cfg.nu, hidden=cfg.hidden
        ).to(dev)
        self.trainable = cfg.model != "random"
        if self.trainable:
            self.opt_g = _optimizer(cfg, self.gen.parameters())
            # D and V share no parameters and their losses see generated cells detached, so
            # one backward of d_loss + v_loss and one optimiser step over both is exactly
            # their two separate updates, at half the per-step overhead.
            self.opt_dv = _optimizer(cfg, [*self.disc.parameters(), *self.valuer.parameters()])
        self.sampler = torch.Generator(device=dev).manual_seed(cfg.seed)
        self.decoder = CellDecoder(space, self.n)
        # Evaluation benchmark: the training one, or (transfer) another whose cells are read
        # from the generated graphs by op renaming. Novelty is then measured against the
        # target's own training split (same rule and seed), so a transfer row compares with
        # the row trained on the target.
        self.eval_bench, self.eval_decoder = self.bench, self.decoder
        eval_train = self.split.train
        target = cfg.eval_benchmark or cfg.benchmark
        target_ds = cfg.eval_dataset or ("cifar10" if target == "nasbench101" else cfg.dataset)
        if (target, target_ds) != (cfg.benchmark, cfg.dataset):
            self.eval_bench = load_benchmark(target, target_ds, cfg.data_dir)
            if target != cfg.benchmark:
                self.eval_decoder = TranslatingDecoder(
                    self.decoder, self.eval_bench.space, OP_TRANSFER[(cfg.benchmark, target)]
                )
            eval_split = self.eval_bench.split(cfg.top_n_removed, cfg.train_fraction, cfg.seed)
            eval_train = eval_split.train
        thr = cfg.acc_threshold
        if thr is None:
            thr = DEFAULT_ACC_THRESHOLD[self.eval_bench.dataset]
        self.acc_threshold = thr
        self.reference = Reference.build(self.eval_bench, eval_train, thr)
        self.best_acc = float(self.acc.max())
        # V's targets for generated cells, by benchmark row: the training split's own labels;
        # NaN (ignored) for cells outside it, so held-out and removed cells never leak in.
        target = np.full(len(self.bench) + 2, np.nan, dtype=np.float32)  # +2: rows -2, -1
        target[-2:] = 0.0  # invalid (-2) and outside the search space (-1): weak / accuracy 0
        train_target = (
            self.split.strong
            if cfg.valuer == "C"
            else self.bench.accuracy[self.split.train] / 100.0
        )
        target[self.split.train] = train_target
        self.gen_target = target

    def step(self, idx: torch.Tensor, lam: float) -> dict[str, torch.Tensor]:
        """One D, V and G update on a batch of real training cells (indices ``idx``).

        D and V are updated first (on real cells and the detached generated batch), then G
        against the updated critics."""
        real = Graphs(self.real.x[idx], self.real.adj[idx], self.real.mask[idx])
        b = len(idx)
        fake = self.gen(b, self.sampler)
        ones = torch.ones(b, 1, device=self.device)
        zeros = torch.zeros(b, 1, device=self.device)
        # discriminator
        both = Graphs(*(torch.cat([r, f.detach()]) for r, f in zip(real, fake, strict=True)))
        d_real, d_fake = self.disc(both).split(b)
        d_loss = F.binary_cross_entropy_with_logits(
            d_real, ones
        ) + F.binary_cross_entropy_with_logits(d_fake, zeros)
        # valuer, on real training cells
        v_target = self.strong[idx] if self.cfg.valuer == "C" else self.acc[idx]
        v_input = real
        v_weight = None
        if self.cfg.valuer_on_generated:
            gen_t = torch.as_tensor(
                self.gen_target[self.decoder.rows(fake, self.bench.index)], device=self.device
            )
            known = ~torch.isnan(gen_t)
            v_input = both
            v_target = torch.cat([v_target, torch.nan_to_num(gen_t)])
            v_weight = torch.cat([torch.ones(b, device=self.device), known.float()])
        v_out = self.valuer(v_input).squeeze(1)
        if self.cfg.valuer == "C":
            v_loss = F.binary_cross_entropy_with_logits(
                v_out, v_target, weight=v_weight, reduction="sum"
            )
        else:
            v_loss = (
                F.mse_loss(v_out, v_target, reduction="none")
                * (1.0 if v_weight is None else v_weight)
            ).sum()
        v_loss = v_loss / (b if v_weight is None else v_weight.sum())
        self.opt_dv.zero_grad(set_to_none=True)
        (d_loss + v_loss).backward()
        self.opt_dv.step()
        # generator
        gan_loss = F.binary_cross_entropy_with_logits(self.disc(fake), ones)
        v_fake = self.valuer(fake)
        if self.cfg.valuer == "C":
            reward_loss = F.binary_cross_entropy_with_logits(v_fake, ones)
        else:
            reward_loss = F.mse_loss(v_fake, torch.full_like(v_fake, self.best_acc))
        g_loss = lam * gan_loss + (1.0 - lam) * reward_loss
        self.opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        self.opt_g.step()
        return {
            "d_loss": d_loss.detach(),
            "v_loss": v_loss.detach(),
            "g_loss": g_loss.detach(),
            "gan_loss": gan_loss.detach(),
            "reward_loss": reward_loss.detach(),
            "d_real_acc": (d_real.detach() > 0).float().mean(),
            "d_fake_acc": (d_fake.detach() < 0).float().mean(),
        }

    def evaluate(self, epoch: int) -> tuple[dict, np.ndarray, list[str | None]]:
        eval_gen = torch.Generator(device=self.device).manual_seed(self.cfg.seed * 7919 + epoch)
        keys, hashes = generate(self.gen, self.cfg.num_generated, self.eval_decoder, eval_gen)
        return generation_metrics(hashes, self.reference), keys, hashes

    def run(self, reporter: Reporter | None = None, progress: bool = False) -> TrialResult:
        cfg = self.cfg
        t0 = time.perf_counter()
        rng = np.random.default_rng(cfg.seed)
        n_train = len(self.train_rows)
        steps_per_epoch = math.ceil(n_train / cfg.batch_size)
        epochs = cfg.epochs if self.trainable else 0
        bar = None
        if progress and epochs:
            from tqdm import tqdm

            bar = tqdm(total=epochs * steps_per_epoch, unit="step", desc=cfg.model, mininterval=1.0)
        rows: list[dict] = []
        metrics: dict = {}
        keys: np.ndarray = np.zeros(0, dtype=np.int64)
        hashes: list[str | None] = []
        for epoch in range(max(epochs, 1)):
            te = time.perf_counter()
            sums: dict[str, float] = {}
            lam = lambda_at(epoch, cfg)
            if self.trainable:
                order = torch.as_tensor(rng.permutation(n_train), device=self.device)
                acc = None
                for s in range(steps_per_epoch):
                    out = self.step(order[s * cfg.batch_size : (s + 1) * cfg.batch_size], lam)
                    stacked = torch.stack(list(out.values()))
                    acc = stacked if acc is None else acc + stacked
                    if bar is not None:
                        bar.update(1)
                sums = dict(zip(out.keys(), (acc / steps_per_epoch).tolist(), strict=True))
            train_s = time.perf_counter() - te
            metrics, keys, hashes = self.evaluate(epoch)
            row = {
                "epoch": epoch + 1 if self.trainable else 0,
                "lambda": lam,
                **sums,
                **metrics,
                "train_seconds": train_s,
                "epoch_seconds": time.perf_counter() - te,
                "steps": steps_per_epoch if self.trainable else 0,
            }
            rows.append(row)
            if bar is not None:
                bar.set_postfix(top10=f"{metrics['top10']:.1f}", acc=f"{metrics['mean_acc']:.2f}")
            if reporter is not None:
                reporter(row)
        if bar is not None:
            bar.close()
        final = {
            **metrics,
            "wall_seconds": time.perf_counter() - t0,
            "steps_per_second": (epochs * steps_per_epoch)
            / max(sum(r["train_seconds"] for r in rows), 1e-9)
            if self.trainable
            else 0.0,
        }
        return TrialResult(
            metrics=final,
            epochs=rows,
            generated=self.generated_rows(keys, hashes),
            state=self.state_dict(),
            info=self.info(),
            full_config=cfg.model_dump(by_alias=True),
        )

    def generated_rows(self, keys: np.ndarray, hashes: list[str | None]) -> list[dict]:
        out = []
        for i, (key, h) in enumerate(zip(keys.tolist(), hashes, strict=True)):
            cell = self.eval_decoder.cell(key)
            row = self.eval_bench.lookup(h) if h is not None else None
            acc = self.eval_bench.accuracy[row] if row is not None else float("nan")
            out.append(
                {
                    "index": i,
                    "valid": h is not None,
                    "hash": h,
                    "ops": list(cell.ops) if cell is not None else [],
                    "adjacency": cell.adjacency.reshape(-1).tolist() if cell is not None else [],
                    "accuracy": None if math.isnan(acc) else float(acc),
                    "in_train": h in self.reference.train_hashes if h is not None else False,
                }
            )
        return out

    def state_dict(self) -> dict:
        return {
            "generator": {k: v.cpu() for k, v in self.gen.state_dict().items()},
            "discriminator": {k: v.cpu() for k, v in self.disc.state_dict().items()},
            "valuer": {k: v.cpu() for k, v in self.valuer.state_dict().items()},
        }

    def info(self) -> dict:
        b = self.eval_bench  # the metrics (label, coverage) rest on the evaluation benchmark
        return {
            "benchmark": self.bench.name,
            "dataset": self.bench.dataset,
            "eval_benchmark": b.name,
            "eval_dataset": b.dataset,
            **b.label_info(),
            "num_train": int(len(self.train_rows)),
            "num_removed_top": int(len(self.split.removed_top)),
            "num_nodes": self.n,
            "acc_threshold": self.acc_threshold,
            "device": str(self.device),
        }


def run_trial(
    config: dict,
    reporter: Reporter | None = None,
    progress: bool = False,
    bench: Benchmark | None = None,
) -> TrialResult:
    """Validate ``config``, train one trial, and return its result."""
    cfg = make_config(config)
    return Trial(cfg, bench).run(reporter, progress)


def validate_config(config: dict, where: str = "trial config") -> GNN2GNNConfig:
    """Validate a trial config (ConfigError naming ``where`` and the field)."""
    return make_config(config, where)


def tune_trial(config: dict) -> None:
    """Ray Tune entry point (see :func:`trainables.common.run_under_tune`)."""
    run_under_tune(config, run_trial)
