"""A GNN2GNN trial's outputs besides its metrics: generated cells, weights and run info
(each function takes the :class:`~trainables.gnn2gnn.trial.Trial`)."""

from __future__ import annotations

import math

import numpy as np


def generated_rows(trial, keys: np.ndarray, hashes: list[str | None]) -> list[dict]:
    """The generated cells' rows (generated.parquet): cell, validity, hash, accuracy."""
    out = []
    for i, (key, h) in enumerate(zip(keys.tolist(), hashes, strict=True)):
        cell = trial.eval_decoder.cell(key)
        row = trial.eval_bench.lookup(h) if h is not None else None
        acc = trial.eval_bench.accuracy[row] if row is not None else float("nan")
        out.append(
            {
                "index": i,
                "valid": trial.eval_bench.in_space(h),
                "hash": h,
                "ops": list(cell.ops) if cell is not None else [],
                "adjacency": cell.adjacency.reshape(-1).tolist() if cell is not None else [],
                "accuracy": None if math.isnan(acc) else float(acc),
                "in_train": h in trial.reference.train_hashes if h is not None else False,
            }
        )
    return out


def trial_state(trial) -> dict:
    """The weights of the evaluated G, D and V, on the CPU (model.pt)."""
    return {
        "generator": {k: v.cpu() for k, v in trial.shown.state_dict().items()},
        "discriminator": {k: v.cpu() for k, v in trial.disc.state_dict().items()},
        "valuer": {k: v.cpu() for k, v in trial.valuer.state_dict().items()},
    }


def trial_info(trial) -> dict:
    """What the trial ran on: benchmarks, label and coverage, split sizes, device."""
    b = trial.eval_bench  # the metrics (label, coverage) rest on the evaluation benchmark
    return {
        "benchmark": trial.bench.name,
        "dataset": trial.bench.dataset,
        "eval_benchmark": b.name,
        "eval_dataset": b.dataset,
        **b.label_info(),
        "num_train": int(len(trial.train_rows)),
        "num_removed_top": int(len(trial.split.removed_top)),
        "num_nodes": trial.n,
        "acc_threshold": trial.acc_threshold,
        "split_seed": trial.split_seed,
        "num_val": int(len(trial.val_rows)),
        "num_val_strong": trial.num_val_strong,
        # select_cells resolved on the training benchmark (clean selection only)
        "select_distinct": trial.select_distinct if trial.cfg.protocol == "clean" else None,
        "device": str(trial.device),
    }
