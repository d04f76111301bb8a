"""Pieces of a GNN2GNN trial: the generator by model name, the optimiser, the lambda
schedule, sampling, and the choice of training and validation rows."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from pipeline.nas.decode import CellDecoder
from pipeline.nas.table import Benchmark, Split
from trainables.gnn2gnn.config import GNN2GNNConfig
from trainables.gnn2gnn.edgeform import EdgeFormGenerator
from trainables.gnn2gnn.generators import (
    ErdosRenyiGenerator,
    Generator,
    MolGANGenerator,
    RNNGenerator,
)


def build_generator(cfg: GNN2GNNConfig, num_ops: int, n: int) -> torch.nn.Module:
    kw = {"num_ops": num_ops, "num_nodes": n}
    gnn = {  # what the two GNN generators share
        "mu": cfg.mu,
        "tau": cfg.tau,
        "noise_dim": cfg.noise_dim,
        "hidden": cfg.hidden,
        "noise": cfg.noise,
        "conv": cfg.generator_conv,
    }
    if cfg.model == "gnn2gnn":
        return Generator(**kw, **gnn, edge_scorer=cfg.edge_scorer)
    if cfg.model == "gnn2gnn_edges":
        return EdgeFormGenerator(**gnn)
    if cfg.model == "molgan":
        return MolGANGenerator(**kw, tau=cfg.tau, noise_dim=cfg.noise_dim, hidden=2 * cfg.hidden)
    if cfg.model == "rnn":
        return RNNGenerator(**kw, tau=cfg.tau, noise_dim=cfg.noise_dim, hidden=cfg.hidden)
    return ErdosRenyiGenerator(**kw, p=cfg.er_p)


def optimizer(cfg: GNN2GNNConfig, params, lr: float) -> torch.optim.Optimizer:
    if cfg.optimizer == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=cfg.weight_decay, fused=True)
    return torch.optim.SGD(
        params, lr=lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay, fused=True
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


STRUCTURE_SEED = 20_240_601  # the fixed seed of the structure reference rows


@torch.no_grad()
def structure_references(
    gen: torch.nn.Module,
    decoder: CellDecoder,
    evaluate: Callable[[np.ndarray, np.ndarray], dict[str, float]],
    samples: int,
    device: torch.device | str,
    chunk: int = 4096,
) -> list[dict]:
    """Reference rows that separate which structures are made from which ops are chosen.

    ``gen`` is sampled ``samples`` times from :data:`STRUCTURE_SEED` (call it before training:
    the generator at initialisation, after refinement), and its structures (present slots and
    edges) are kept with (a) ops drawn uniformly for every interior node and (b) one op on
    every interior node, for each op, of which the row with the best mean accuracy is kept
    (``op`` names it). ``evaluate`` maps op codes and adjacency in ``decoder``'s space
    (``decoder.slots``) to the metrics of both semantics.
    """
    if samples == 0:
        return []
    was_training = gen.training
    gen.eval()
    stream = torch.Generator(device=device).manual_seed(STRUCTURE_SEED)
    try:
        steps = range(0, samples, chunk)
        keys = [decoder.keys(gen(min(chunk, samples - s), stream)) for s in steps]
    finally:
        gen.train(was_training)
    codes, adj = decoder.slots(np.concatenate(keys))
    k = decoder.space.num_ops
    interior = (codes > 0) & (codes < k - 1)
    draws = np.random.default_rng(STRUCTURE_SEED).integers(1, k - 1, size=codes.shape)
    rows = [{"reference": "init_uniform_ops", **evaluate(np.where(interior, draws, codes), adj)}]
    best, best_acc = None, -np.inf
    for op in range(1, k - 1):
        row = {"op": decoder.space.ops[op], **evaluate(np.where(interior, op, codes), adj)}
        acc = np.nan_to_num(row["mean_acc"], nan=-1.0)  # no known cell: below every op
        if best is None or acc > best_acc:
            best, best_acc = row, acc
    rows.append({"reference": "init_best_op", **best})
    return [{**r, "samples": samples} for r in rows]


@dataclass
class Rows:
    """Benchmark rows a trial trains on and validates on (see :func:`choose_rows`)."""

    train: np.ndarray
    train_strong: np.ndarray
    val: np.ndarray
    strong_threshold: float  # accuracy of the weakest strong cell of the training split
    num_val_strong: int  # validation cells at least as good as the weakest strong one


def choose_rows(cfg: GNN2GNNConfig, split: Split, bench: Benchmark, split_seed: int) -> Rows:
    """Training rows and the validation part, both from the training split and seeded by
    ``split_seed``: a ``val_fraction`` of the split is kept for model selection, at most
    ``max_train_cells`` of the rest are trained on, and training-split cells left out by
    that cap join the validation part (more validation cells, a less noisy selection)."""
    rng = np.random.default_rng(split_seed + 1)
    n = len(split.train)
    perm = rng.permutation(n)
    n_val = int(round(n * cfg.val_fraction))
    train_pick = np.sort(perm[n_val:])
    if cfg.max_train_cells is not None and len(train_pick) > cfg.max_train_cells:
        train_pick = np.sort(rng.choice(train_pick, cfg.max_train_cells, replace=False))
    val_pick = np.setdiff1d(np.arange(n), train_pick)
    val_rows = split.train[val_pick]
    # strong validation cells: at least the weakest strong cell of the training split
    strong_acc = bench.accuracy[split.train[split.strong]]
    strong_threshold = float(strong_acc.min()) if len(strong_acc) else math.inf
    return Rows(
        split.train[train_pick],
        split.strong[train_pick],
        val_rows,
        strong_threshold,
        int((bench.accuracy[val_rows] >= strong_threshold).sum()),
    )


def split_top_share(
    hashes: list[str | None], split_acc: dict[str, float], top_acc: float, distinct: bool
) -> float:
    """The clean selection score: of the generated cells that are training-split cells
    (``split_acc``: hash -> accuracy), the percentage at or above ``top_acc`` (the split's
    best 10%); each distinct cell counted once when ``distinct``, else every generated
    one. -1 when no generated cell is a split cell. Training-split labels only."""
    own = [h for h in hashes if h in split_acc]
    if distinct:
        own = list(dict.fromkeys(own))
    acc = np.array([split_acc[h] for h in own])
    return 100.0 * float((acc >= top_acc).mean()) if len(acc) else -1.0


def counts_distinct(select_cells: str, bench: Benchmark) -> bool:
    """``select_cells`` resolved: ``auto`` counts distinct cells when the benchmark's labels
    cover under half of its cells (see the config field)."""
    if select_cells == "auto":
        return bench.num_labelled < 0.5 * len(bench)
    return select_cells == "distinct"
