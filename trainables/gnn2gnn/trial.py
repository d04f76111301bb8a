"""One GNN2GNN trial (or a baseline): train G, D and V on a benchmark, generate, evaluate.

``run_trial(config)`` validates the config (a dict; a validated Config is taken as it is),
trains, reports metrics each epoch through a reporter callback and returns a
:class:`TrialResult` (metrics of the selected and of the final epoch, generated cells,
model state, reference rows). Same config and seed on the CPU give identical metrics.

Training: 20 epochs over the training split, batch 32, lr 0.001; lambda = 1 for the first
``warmup_fraction`` of the epochs, then the configured lambda; L_G = lambda * GAN loss +
(1 - lambda) * reward loss, with the non-saturating GAN loss -log D(G(z)) and reward loss
BCE(V(G(z)), strong) (mode C) or MSE(V(G(z)), best training accuracy) (mode R). D is
trained on real vs generated cells; V on the real training cells and on the generated ones
whose label the protocol allows. The default recipe (Adam, the bounded edge scorer, mean
pooling and dropout in the critics, ...) and the measurements behind each choice are in the
docs/reproduction.md ("How the default recipe was chosen").

Protocols (``protocol``):

- ``clean`` (default): V's labels for generated cells come from the cells the trial trains
  on only; held-out, removed-top and validation cells are never looked up. The kept epoch
  is chosen from training-split labels only: of the epoch's generated cells that are
  training-split cells (trained on, or in the validation part ``val_fraction`` that is
  never trained on), the percentage in the split's best 10% (``split_top_share``), each
  distinct cell counted once where labels are sparse (``select_cells``: NB101's labelled
  subset) and every generated cell on a fully labelled table (NATS). Chosen by
  measurement over the per-epoch curves of 5 seeds on both benchmarks, checked on 5 more
  (docs/reproduction.md, "How the default recipe was chosen").
- ``authors``: what the authors' code does, which leaks test information: V's labels for
  generated cells come from the whole benchmark, and the kept epoch is the one with the best
  Top-10 (over all generated cells) measured on the whole benchmark. It exists to show how
  much of the published numbers that leak explains.

The trial's metrics are those of the kept (selected) epoch's generator, re-evaluated on
``num_generated`` cells; ``last_<metric>`` are the last epoch's, and ``selected_epoch``
says which was kept.
"""

from __future__ import annotations

import copy
import math
import time

import numpy as np
import torch

import trainables.gnn2gnn.parts as parts
from pipeline.experiment import Reporter, TrialResult, pick_device
from pipeline.nas.benchmarks import Benchmark, load_benchmark
from pipeline.nas.cells import table_to_dense
from pipeline.nas.decode import CellDecoder, TranslatingDecoder, slots_to_graphs
from pipeline.nas.graphs import Graphs
from pipeline.nas.labels import RowLookup
from pipeline.nas.spaces import OP_TRANSFER
from trainables.gnn2gnn.config import DEFAULT_ACC_THRESHOLD, GNN2GNNConfig
from trainables.gnn2gnn.critics import Discriminator, Valuer
from trainables.gnn2gnn.metrics import (
    AuthorsTable,
    Reference,
    generation_metrics,
    reference_metrics,
)
from trainables.gnn2gnn.outputs import generated_rows, trial_info, trial_state
from trainables.gnn2gnn.parts import build_generator, choose_rows, generate, lambda_at, optimizer
from trainables.gnn2gnn.training import LOSS_NAMES, Training


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
        self.split_seed = cfg.seed if cfg.split_seed is None else cfg.split_seed
        self.split = self.bench.split(cfg.top_n_removed, cfg.train_fraction, self.split_seed)
        r = choose_rows(cfg, self.split, self.bench, self.split_seed)
        self.train_rows, self.train_strong, self.val_rows = r.train, r.train_strong, r.val
        self.strong_threshold, self.num_val_strong = r.strong_threshold, r.num_val_strong
        rows, strong = self.train_rows, self.train_strong
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
        critic = {
            "num_ops": space.num_ops,
            "nu": cfg.nu,
            "hidden": cfg.critic_hidden,
            "pooling": cfg.pooling,
            "dropout": cfg.critic_dropout,
            "spectral_norm": cfg.spectral_norm,
        }
        # the generator that is evaluated: G itself, or a moving average of its weights
        self.shown = copy.deepcopy(self.gen) if cfg.generator_ema > 0 else self.gen
        self.shown.requires_grad_(self.shown is self.gen)
        self.disc = Discriminator(**critic, minibatch_std=cfg.minibatch_std).to(dev)
        self.valuer = Valuer(**critic, mode=cfg.valuer).to(dev)
        self.trainable = cfg.model != "random"
        if self.trainable:
            self.opt_g = optimizer(cfg, self.gen.parameters(), cfg.lr)
            # D and V share no parameters and their losses see generated cells detached, so
            # one backward of d_loss + v_loss and one optimiser step over both is exactly
            # their two separate updates, at half the per-step overhead.
            self.opt_dv = optimizer(
                cfg, [*self.disc.parameters(), *self.valuer.parameters()], cfg.lr_critic or cfg.lr
            )
        self.sampler = torch.Generator(device=dev).manual_seed(cfg.seed)
        self.decoder = CellDecoder(space, self.n, table=self.bench)
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
            eval_split = self.eval_bench.split(
                cfg.top_n_removed, cfg.train_fraction, self.split_seed
            )
            eval_train = eval_split.train
        thr = cfg.acc_threshold
        if thr is None:
            thr = DEFAULT_ACC_THRESHOLD[self.eval_bench.dataset]
        self.acc_threshold = thr
        self.reference = Reference.build(self.eval_bench, eval_train, thr)
        # the authors' metric semantics: every result's columns with metrics: authors, and
        # the structure reference rows always
        self.authors_table = AuthorsTable.build(self.eval_bench, eval_train, thr, self.n)
        # graphs given as slots are decoded by table lookup in the evaluation space (a
        # transfer trial's renaming decoder would hash 100,000 reference cells in Python)
        self.slot_decoder = self.eval_decoder
        if not isinstance(self.eval_decoder, CellDecoder):
            n_eval = max(self.n, self.eval_bench.space.max_vertices)
            self.slot_decoder = CellDecoder(self.eval_bench.space, n_eval, table=self.eval_bench)
        self.best_acc = float(self.acc.max())
        # clean selection: accuracies of the training split's cells (trained on or kept for
        # validation) by hash, and the accuracy of its best 10%
        split_rows = np.concatenate([self.train_rows, self.val_rows])
        split_acc = self.bench.accuracy[split_rows]
        self.split_top_acc = float(np.quantile(split_acc, 0.9)) if len(split_acc) else math.inf
        self.split_acc = dict(
            zip(self.bench.hashes[split_rows].tolist(), split_acc.tolist(), strict=True)
        )
        self.select_distinct = parts.counts_distinct(cfg.select_cells, self.bench)
        self.gen_target = self._valuer_target_table()
        # The valuer's labels for generated cells are looked up by tensor ops on the trial's
        # device (no host round trip per step; the same labels as the host path, see
        # pipeline.nas.labels). On one CPU thread, 1.2 ms a batch of 32 against 3-4 ms for the
        # per-graph host cache, which misses on most generated graphs all trial long.
        self.row_lookup = None
        self._training: Training | None = None  # ``step``'s, built on first use
        if cfg.valuer_on_generated and self.trainable:
            self.use_device_labels()

    def use_device_labels(self, lookup: RowLookup | None = None) -> None:
        """Look up generated cells' benchmark rows on the device (see ``__init__``); packed
        trials on one benchmark share one ``lookup``."""
        self.row_lookup = lookup or RowLookup(self.bench, self.n, self.device)
        self.gen_target_t = torch.as_tensor(self.gen_target, device=self.device)

    def _valuer_target_table(self) -> np.ndarray:
        """V's target for a generated cell, by benchmark row (the last two entries: rows -2,
        invalid, and -1, outside the table: weak / accuracy 0); NaN = no label, ignored.

        ``clean``: labels of the rows the trial trains on only, so held-out, removed-top and
        validation cells never reach V. ``authors``: every labelled row of the benchmark
        (C: strong = at least the weakest strong training cell)."""
        bench, cfg = self.bench, self.cfg
        target = np.full(len(bench) + 2, np.nan, dtype=np.float32)
        target[-2:] = 0.0
        rows = self.train_rows if cfg.protocol == "clean" else np.flatnonzero(bench.labelled)
        acc = bench.accuracy[rows]
        target[rows] = (acc >= self.strong_threshold) if cfg.valuer == "C" else acc / 100.0
        return target

    def valuer_targets(self, rows: np.ndarray) -> np.ndarray:
        """V's targets for generated cells given their benchmark rows (-2 invalid, -1 not in
        the table); NaN where the protocol allows no label."""
        return self.gen_target[rows]

    def step(self, idx: torch.Tensor, lam: float) -> dict[str, torch.Tensor]:
        """One D, V and G update on a batch of real training cells (indices ``idx``): the
        step of :class:`~trainables.gnn2gnn.training.Training` for this trial alone. Returns
        the step's losses by name (0-d tensors)."""
        if self._training is None:
            self._training = Training([self])
        out = self._training.step(idx.unsqueeze(0), [lam])[0]
        return dict(zip(LOSS_NAMES, out.unbind(), strict=True))

    @torch.no_grad()
    def update_ema(self) -> None:
        decay = self.cfg.generator_ema
        for avg, cur in zip(self.shown.parameters(), self.gen.parameters(), strict=True):
            avg.lerp_(cur, 1.0 - decay)
        for avg, cur in zip(self.shown.buffers(), self.gen.buffers(), strict=True):
            avg.copy_(cur)

    def evaluate(self, k: int, seed: int) -> tuple[dict, np.ndarray, list[str | None], float]:
        """K generated cells: metrics on the evaluation benchmark, keys, hashes, and the
        selection score of the protocol (see the module docstring)."""
        eval_gen = torch.Generator(device=self.device).manual_seed(seed)
        keys, hashes = generate(self.shown, k, self.eval_decoder, eval_gen)
        metrics = generation_metrics(hashes, self.reference)
        if self.cfg.metrics == "authors":
            metrics.update(self.authors_table.metrics(*self.eval_decoder.slots(keys)))
        if self.cfg.protocol == "authors":
            score = metrics["top10_all"]
        else:  # training-split information only, decoded in the training space
            own = (
                hashes
                if self.eval_decoder is self.decoder
                else [self.decoder.decode_key_cached(key) for key in keys.tolist()]
            )
            score = self.split_top_share(own)
        return metrics, keys, hashes, score

    def split_top_share(self, hashes: list[str | None]) -> float:
        """The clean selection score (``parts.split_top_share``; training-split labels)."""
        top, distinct = self.split_top_acc, self.select_distinct
        return parts.split_top_share(hashes, self.split_acc, top, distinct)

    def run(self, reporter: Reporter | None = None, progress: bool = False) -> TrialResult:
        """Train, evaluate and select each epoch, and return the result."""
        return Training([self]).run([reporter], progress)[0]

    # The pieces of a run, driven by ``trainables.gnn2gnn.training.Training``.

    def begin(self) -> None:
        """Start a run: the clock, the shuffling stream, the epoch rows, the selection."""
        self.t0 = time.perf_counter()
        self.shuffle_rng = np.random.default_rng(self.cfg.seed)
        self.steps_per_epoch = math.ceil(len(self.train_rows) / self.cfg.batch_size)
        self.epochs = self.cfg.epochs if self.trainable else 0
        self.rows: list[dict] = []
        self.best_score, self.best_epoch, self.best_state = -math.inf, 0, None
        self.best_diverse = False  # the kept epoch meets select_min_uniqueness
        self.structure_rows = parts.structure_references(  # before any step: at init
            self.gen, self.decoder, self.both_metrics, self.cfg.reference_samples, self.device
        )

    def both_metrics(self, codes: np.ndarray, adj: np.ndarray, chunk: int = 4096) -> dict:
        """Clean and authors' metrics of graphs given as op codes and adjacency in the
        training space (``CellDecoder.slots``), evaluated on the evaluation benchmark."""
        dec = self.slot_decoder
        if dec is not self.eval_decoder:  # rename into the evaluation space, pad its slots
            codes = self.eval_decoder.rename(codes)
            pad = dec.n - codes.shape[1]
            codes = np.pad(codes, ((0, 0), (0, pad)), constant_values=dec.k)
            adj = np.pad(adj, ((0, 0), (0, pad), (0, pad)))
        hashes: list[str | None] = []
        for s in range(0, len(codes), chunk):
            hashes += dec.decode(
                slots_to_graphs(codes[s : s + chunk], adj[s : s + chunk], dec.k)
            ).hashes
        return {
            **generation_metrics(hashes, self.reference),
            **self.authors_table.metrics(codes, adj),
        }

    def epoch_order(self) -> torch.Tensor:
        """This epoch's order of the training rows (the trial's own seeded stream)."""
        n = len(self.train_rows)
        return torch.as_tensor(self.shuffle_rng.permutation(n), device=self.device)

    def end_epoch(
        self, epoch: int, sums: dict, train_s: float, te: float, reporter: Reporter | None
    ) -> dict:
        """Evaluate the epoch's generator, keep it if the selection score is the best so
        far, report and return the epoch's row."""
        cfg = self.cfg
        metrics, _, _, score = self.evaluate(cfg.epoch_generated, cfg.seed * 7919 + epoch)
        number = epoch + 1 if self.trainable else 0
        # a uniqueness floor (label-free): an epoch below it is kept only while no epoch
        # has reached it
        diverse = not metrics["uniqueness"] < cfg.select_min_uniqueness  # NaN: no floor
        if diverse and not self.best_diverse:
            self.best_score, self.best_diverse = -math.inf, True
        if diverse == self.best_diverse and score >= self.best_score:  # ties: the later
            self.best_score, self.best_epoch = score, number
            self.best_state = copy.deepcopy(self.shown.state_dict())
        row = {
            "epoch": number,
            "lambda": lambda_at(epoch, cfg),
            **sums,
            **metrics,
            "select_score": score,
            "train_seconds": train_s,
            "epoch_seconds": time.perf_counter() - te,
            "steps": self.steps_per_epoch if self.trainable else 0,
        }
        self.rows.append(row)
        if reporter is not None:
            reporter(row)
        return row

    def finish(self) -> TrialResult:
        """The last epoch's and the kept epoch's generators on the same K cells' worth of
        noise, and the trial's result."""
        cfg, rows = self.cfg, self.rows
        final_seed = cfg.seed * 7919 + 1_000_003
        final, f_keys, f_hashes, _ = self.evaluate(cfg.num_generated, final_seed)
        final_state = self.shown.state_dict()
        selected, keys, hashes = final, f_keys, f_hashes
        if self.best_epoch != rows[-1]["epoch"]:
            final_state = copy.deepcopy(final_state)
            self.shown.load_state_dict(self.best_state)
            selected, keys, hashes, _ = self.evaluate(cfg.num_generated, final_seed)
        train_seconds = sum(r["train_seconds"] for r in rows)
        steps = self.epochs * self.steps_per_epoch
        metrics = {
            **selected,
            **{f"last_{k}": v for k, v in final.items()},
            "selected_epoch": self.best_epoch,
            "select_score": self.best_score,
            "wall_seconds": time.perf_counter() - self.t0,
            "steps_per_second": steps / max(train_seconds, 1e-9) if self.trainable else 0.0,
        }
        state = trial_state(self)
        state["generator_final"] = {k: v.cpu() for k, v in final_state.items()}
        return TrialResult(
            metrics=metrics,
            epochs=rows,
            tables={
                "generated": generated_rows(self, keys, hashes),
                "reference": [
                    *reference_metrics(self.reference, cfg.num_generated),
                    *self.structure_rows,
                ],
            },
            state=state,
            info=trial_info(self),
            full_config=cfg.model_dump(by_alias=True),
        )
