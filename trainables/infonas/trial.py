"""One arch2vec or Info-NAS IO-model trial on NAS-Bench-101.

``model: arch2vec`` trains the graph VAE alone: an epoch is one pass over the training cells
(the training part of :func:`trainables.infonas.iodata.space_split`, at most ``max_cells`` of them).
With ``same_batches: true`` it follows the IO model's schedule instead, batch for batch (a
labelled batch contributes its networks' cells, with the VAE loss only): the paper's
"arch2vec trained concurrently with our model", the even comparison.

``model: io-embedding`` trains the IO model semi-supervised, as the paper: runs of
``labelled_run`` labelled batches (VAE loss on the batch's cells + ``l1_weight`` x L1 between
predicted and preprocessed output features) alternate with runs of ``unlabelled_run``
unlabelled batches (VAE loss only) drawn, cycling, from the same training cells as arch2vec;
an epoch is one pass over the labelled training pairs (training networks x IO images). The
IO-dataset comes from a pretraining folder (``io_data``, default
``results/pretrain-<profile>``; see ``gnn2gnn pretrain``); the space split must be the one the
pretraining used, so that "unseen" networks are also unseen by the VAE.

Per epoch both report the VAE loss parts and the reconstruction accuracy of ops and
adjacency (and whole cells) on held-out cells; the IO model also the labelled validation L1
on unseen images and on unseen networks, each beside the paper's mean-vector baseline.
At the end: validity and uniqueness of cells decoded from N(0, I) samples, test losses, and
the latent features of the benchmark's cells (encoder mean, averaged over a cell's present
nodes, as arch2vec feeds its predictors) as the ``latent`` table (and ``latent_e<N>`` after
each epoch N of ``latent_epochs``: the paper searches with 10- and 30-epoch features).
With ``evaluate`` (default) the trial then runs the Info-NAS evaluations on the final
features (:mod:`trainables.infonas.evaluate`): random-forest performance prediction per train size
and seed (table ``prediction``) and REINFORCE vs random search regret curves (table
``search``), on the labelled cells.
"""

from __future__ import annotations

import time

import numpy as np
import torch

from pipeline.config import ConfigError
from pipeline.experiment import Reporter, TrialResult, pick_device
from pipeline.nas.benchmarks import Benchmark, load_benchmark
from pipeline.nas.cells import table_to_dense
from trainables.infonas.arch2vec import Arch2Vec, IOModel
from trainables.infonas.config import (
    NUM_NODES,
    IOEmbeddingConfig,
    decode_to_cells,
    default_io_data,
)
from trainables.infonas.iodata import (
    IODataset,
    Preprocess,
    load_io_dataset,
    mean_baseline_l1,
    space_split,
)


class IOTrial:
    def __init__(self, cfg: IOEmbeddingConfig, bench: Benchmark | None = None) -> None:
        self.cfg = cfg
        torch.manual_seed(cfg.seed)
        self.rng = np.random.default_rng(cfg.seed)
        self.gen = torch.Generator().manual_seed(cfg.seed)
        self.device = pick_device(cfg.device)
        self.bench = bench or load_benchmark("nasbench101", label=cfg.label, data_dir=cfg.data_dir)
        b = self.bench
        train_rows, valid_rows = space_split(len(b), cfg.valid_fraction, cfg.split_seed)
        self.io: IODataset | None = None
        self.predicts = cfg.model == "io-embedding"
        if self.predicts or cfg.same_batches:
            # unlabelled cells: the same as arch2vec's at the same seed (the training networks
            # are in that part of the split too; the unseen networks are not)
            self.io = self._load_io()
        if cfg.max_cells is not None and cfg.max_cells < len(train_rows):
            train_rows = np.sort(self.rng.choice(train_rows, cfg.max_cells, replace=False))
        if cfg.valid_cells < len(valid_rows):
            valid_rows = np.sort(self.rng.choice(valid_rows, cfg.valid_cells, replace=False))
        self.train_rows, self.valid_rows = train_rows, valid_rows
        self.train_x, self.train_a = self._dense(train_rows)
        self.valid_x, self.valid_a = self._dense(valid_rows)
        vae = Arch2Vec(b.space.num_ops, NUM_NODES, cfg.hidden, cfg.latent, cfg.layers, cfg.dropout)
        if self.io is not None:
            self._prepare_labelled()
        if self.predicts:
            assert self.io is not None
            self.model: torch.nn.Module = IOModel(
                vae, self.io.dim, cfg.net_dim, cfg.head_hidden, tuple(cfg.cnn_channels)
            )
        else:
            self.model = vae
        self.vae = vae
        self.model.to(self.device)
        self.opt = torch.optim.Adam(
            self.model.parameters(), lr=cfg.lr, betas=(0.9, 0.999), fused=True
        )
        self.steps = 0

    # --- data -----------------------------------------------------------------------------

    def _load_io(self) -> IODataset:
        cfg = self.cfg
        folder = cfg.io_data or default_io_data(cfg.profile)  # a folder or a URI
        from trainables.infonas.cifar10 import load_cifar10

        self.cifar = load_cifar10(cfg.data_dir)
        io = load_io_dataset(
            folder,
            Preprocess(scale=cfg.scale, top_k=cfg.top_k, normalize=cfg.normalize),
            seed=cfg.seed,
            cifar=self.cifar,
        )
        pre = io.pretrain_config
        if (pre.get("seed", 0), pre.get("valid_fraction", 0.1)) != (
            cfg.split_seed,
            cfg.valid_fraction,
        ):
            raise ConfigError(
                f"{folder} was pretrained with space split seed {pre.get('seed')} / valid "
                f"fraction {pre.get('valid_fraction')}; set split_seed/valid_fraction to match"
            )
        return io

    def _dense(self, rows: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        b = self.bench
        x, a, _ = table_to_dense(
            b.ops[rows], b.adjacency[rows], b.num_vertices[rows], b.space.num_ops, NUM_NODES
        )
        return x.to(self.device), a.to(self.device)

    def _prepare_labelled(self) -> None:
        from trainables.infonas.cifar10 import to_tensor

        io = self.io
        assert io is not None
        data = self.cifar
        self.images = {
            "io": to_tensor(data.train_x[io.io_images], self.device),
            "test": to_tensor(data.test_x[io.test_images], self.device),
        }
        self.net_cells = {}
        for name, split in io.splits.items():
            rows = np.array([self.bench.lookup(h) for h in split.networks])
            self.net_cells[name] = self._dense(rows)
        self.targets = {
            name: torch.from_numpy(s.targets).to(self.device) for name, s in io.splits.items()
        }

    # --- steps ----------------------------------------------------------------------------

    def _vae_loss(self, x: torch.Tensor, a: torch.Tensor):
        out = self.vae(x, a, self.gen)
        loss, parts = self.vae.loss(out, x, a)
        return out, loss, parts

    def unlabelled_step(self, idx: torch.Tensor) -> dict[str, float]:
        x, a = self.train_x[idx], self.train_a[idx]
        _, loss, parts = self._vae_loss(x, a)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        self.steps += 1
        return {"vae_loss": loss.detach(), **{k: v.detach() for k, v in parts.items()}}

    def labelled_step(self, pairs: np.ndarray) -> dict[str, float]:
        nets = torch.from_numpy(pairs[:, 0]).to(self.device)
        imgs = torch.from_numpy(pairs[:, 1]).to(self.device)
        cx, ca = self.net_cells["train"]
        x, a = cx[nets], ca[nets]
        out, loss, parts = self._vae_loss(x, a)
        if not self.predicts:  # arch2vec on the same batches: the cells, VAE loss only
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            self.opt.step()
            self.steps += 1
            return {"vae_loss": loss.detach(), **parts}
        pred = self.model.predict(out.z, self.images["io"][imgs])
        l1 = torch.nn.functional.l1_loss(pred, self.targets["train"][nets, imgs])
        total = loss + self.cfg.l1_weight * l1
        self.opt.zero_grad(set_to_none=True)
        total.backward()
        self.opt.step()
        self.steps += 1
        return {"vae_loss": loss.detach(), "train_l1": l1.detach(), **parts}

    # --- evaluation -----------------------------------------------------------------------

    @torch.no_grad()
    def reconstruction(self) -> dict[str, float]:
        self.model.eval()
        sums: dict[str, float] = {}
        for i in range(0, len(self.valid_x), 4096):
            x, a = self.valid_x[i : i + 4096], self.valid_a[i : i + 4096]
            out = self.vae(x, a)
            for k, v in self.vae.reconstruction(out, x, a).items():
                sums[k] = sums.get(k, 0.0) + float(v)
        self.model.train()
        return {
            "ops_acc": sums["ops_correct"] / sums["ops_total"],
            "adj_acc": sums["adj_correct"] / sums["adj_total"],
            "exact_recon": sums["exact"] / len(self.valid_x),
        }

    @torch.no_grad()
    def labelled_loss(self, split: str) -> float:
        """Mean L1 over every (network, image) pair of a split; embeddings computed once."""
        self.model.eval()
        io = self.io
        assert io is not None
        x, a = self.net_cells[split]
        z = self.vae.encode(x, a)[0]
        net = self.model.net_embed(z.flatten(1))
        images = self.images[io.splits[split].image_set]
        img = torch.cat([self.model.cnn(images[i : i + 500]) for i in range(0, len(images), 500)])
        target = self.targets[split]
        total = 0.0
        for n in range(len(net)):
            feats = torch.cat([net[n].expand(len(img), -1), img], dim=1)
            total += float(torch.abs(self.model.head(feats) - target[n]).mean())
        self.model.train()
        return total / len(net)

    @torch.no_grad()
    def sample_validity(self) -> dict[str, float]:
        g = torch.Generator().manual_seed(self.cfg.seed + 7)
        z = torch.randn(self.cfg.num_samples, NUM_NODES, self.cfg.latent, generator=g)
        self.model.eval()
        ops, adj = self.vae.decode_cells(z.to(self.device))
        self.model.train()
        hashes = decode_to_cells(ops.cpu().numpy(), adj.cpu().numpy(), self.bench)
        valid = [h for h in hashes if h is not None]
        known = [h for h in valid if self.bench.lookup(h) is not None]
        return {
            "validity": 100.0 * len(valid) / len(hashes),
            "uniqueness": 100.0 * len(set(valid)) / max(1, len(valid)),
            "in_benchmark": 100.0 * len(known) / max(1, len(valid)),
        }

    @torch.no_grad()
    def latent_rows(self) -> dict[str, list]:
        """Encoder means averaged over each cell's present nodes, for the exported cells."""
        b = self.bench
        if self.cfg.export == "none":
            return {}
        rows = np.flatnonzero(b.labelled) if self.cfg.export == "labelled" else np.arange(len(b))
        self.model.eval()
        chunks = []
        for i in range(0, len(rows), 8192):
            r = rows[i : i + 8192]
            x, a = self._dense(r)
            mu = self.vae.encode(x, a)[0]
            mask = (x.sum(-1) > 0).float()
            chunks.append(((mu * mask[..., None]).sum(1) / mask.sum(1, keepdim=True)).cpu())
        self.model.train()
        z = torch.cat(chunks).numpy().astype(np.float32)
        table: dict[str, list] = {"hash": b.hashes[rows].tolist()}
        for j in range(z.shape[1]):
            table[f"z{j}"] = z[:, j].tolist()
        return table

    # --- loop -----------------------------------------------------------------------------

    def _schedule(self) -> list[tuple[str, np.ndarray]]:
        """One epoch's batches in order: ("l", pairs) / ("u", cell indices)."""
        cfg, bs = self.cfg, self.cfg.batch_size
        n_cells = len(self.train_rows)
        if self.io is None:
            perm = self.rng.permutation(n_cells)
            return [("u", perm[i : i + bs]) for i in range(0, n_cells, bs)]
        pairs = self.io.splits["train"].pairs
        perm = self.rng.permutation(len(pairs))
        labelled = [pairs[perm[i : i + bs]] for i in range(0, len(pairs), bs)]
        out: list[tuple[str, np.ndarray]] = []
        for start in range(0, len(labelled), cfg.labelled_run):
            out += [("l", p) for p in labelled[start : start + cfg.labelled_run]]
            for _ in range(cfg.unlabelled_run):
                if self._cursor + bs > len(self._cell_order):
                    self._cell_order, self._cursor = self.rng.permutation(n_cells), 0
                out.append(("u", self._cell_order[self._cursor : self._cursor + bs]))
                self._cursor += bs
        return out

    def run(self, reporter: Reporter | None = None, progress: bool = False) -> TrialResult:
        cfg = self.cfg
        t0 = time.time()
        self._cell_order, self._cursor = self.rng.permutation(len(self.train_rows)), 0
        epochs: list[dict] = []
        train_seconds = 0.0
        frames: dict[str, dict] = {}
        for epoch in range(1, cfg.epochs + 1):
            te = time.time()
            sums: dict[str, torch.Tensor] = {}
            counts: dict[str, int] = {}
            schedule = self._schedule()
            for kind, batch in schedule:
                if kind == "u":
                    parts = self.unlabelled_step(torch.from_numpy(batch).to(self.device))
                else:
                    parts = self.labelled_step(batch)
                for k, v in parts.items():
                    sums[k] = sums.get(k, 0.0) + v.detach()
                    counts[k] = counts.get(k, 0) + 1
            train_seconds += time.time() - te
            row = {"epoch": epoch, **{k: float(v) / counts[k] for k, v in sums.items()}}
            row["labelled_batches"] = sum(1 for k, _ in schedule if k == "l")
            row["unlabelled_batches"] = sum(1 for k, _ in schedule if k == "u")
            row.update(self.reconstruction())
            if self.predicts:
                for split, key in (
                    ("valid_images", "unseen_images"),
                    ("valid_networks", "unseen_networks"),
                ):
                    row[f"val_l1_{key}"] = self.labelled_loss(split)
                    row[f"baseline_l1_{key}"] = mean_baseline_l1(self.io.splits[split].targets)
            if epoch in cfg.latent_epochs and epoch < cfg.epochs:
                early = self.latent_rows()
                if early:
                    frames[f"latent_e{epoch}"] = early
            row["seconds"] = time.time() - t0
            epochs.append(row)
            if reporter:
                reporter(row)
            if progress:
                shown = {k: round(v, 4) for k, v in row.items() if isinstance(v, float)}
                print(f"epoch {epoch}/{cfg.epochs} {shown}", flush=True)
        metrics = {k: v for k, v in epochs[-1].items() if k not in ("epoch",)}
        metrics.update(self.sample_validity())
        if self.predicts:
            for split in ("test_seen_networks", "test_unseen_networks"):
                metrics[f"l1_{split}"] = self.labelled_loss(split)
                metrics[f"baseline_l1_{split}"] = mean_baseline_l1(self.io.splits[split].targets)
        metrics["steps_per_second"] = self.steps / max(train_seconds, 1e-9)
        latent = self.latent_rows()
        metrics["latent_cells"] = len(latent.get("hash", []))
        if latent:
            frames["latent"] = latent
        if cfg.evaluate and latent:
            te = time.time()
            frames.update(self.evaluate(latent, metrics))
            metrics["eval_seconds"] = time.time() - te
        metrics["seconds"] = time.time() - t0
        state = {k: v.detach().cpu() for k, v in self.model.state_dict().items()}
        return TrialResult(
            metrics=metrics,
            epochs=epochs,
            tables=frames,
            state={"model": state},
            info=self.info(),
            full_config=cfg.model_dump(),
        )

    def evaluate(self, latent: dict, metrics: dict) -> dict[str, list[dict]]:
        """Performance prediction and REINFORCE vs random search on the latent features
        (labelled cells only; the pretrained networks are left out of the prediction pool)."""
        from trainables.infonas.evaluate import evaluate_latent

        cfg = self.cfg
        found, frames = evaluate_latent(
            latent,
            self.bench,
            cfg.predict_sizes,
            cfg.predict_seeds,
            cfg.search_runs,
            cfg.search_budget,
            cfg.predict_threshold,
            exclude=set(self.io.networks["hash"]) if self.io is not None else set(),
        )
        found.pop("label")
        metrics.update(found)
        return frames

    def info(self) -> dict:
        b = self.bench
        out = {
            "benchmark": b.name,
            "dataset": b.dataset,
            **b.label_info(),
            "num_train_cells": int(len(self.train_rows)),
            "num_valid_cells": int(len(self.valid_rows)),
            "device": str(self.device),
        }
        if self.io is not None:
            out["io_data"] = self.cfg.io_data or default_io_data(self.cfg.profile)
            out["io_dim"] = self.io.dim
            for name, s in self.io.splits.items():
                out[f"io_{name}_pairs"] = len(s)
        return out
