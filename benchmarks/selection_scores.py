"""How well clean model-selection scores pick epochs (run on demand; prints, asserts nothing).

    python benchmarks/selection_scores.py [--benchmark nasbench101] [--seeds 0-4]
        [--set KEY=VALUE ...] [--out scores.jsonl]

Trains the default recipe (``cpu`` profile) for the given seeds, packed, and records for
every epoch, beside the epoch's test Top-10, candidate selection scores that use
training-split labels only (the training split: cells trained on and the validation part):

- ``share_all``: of the generated split cells, the percentage in the split's best 10%,
  every generated cell counted (repeats included);
- ``share_distinct``: the same with each distinct generated split cell counted once;
- ``mean_distinct``: the mean accuracy of the distinct generated split cells.

Prints, per seed and score, the Top-10 of the epoch the score would keep (the highest
score, ties to the later epoch), with the best epoch by Top-10 (an oracle that peeks at
the test labels) and the last epoch, and the mean Spearman correlation of each score with
the epoch's Top-10. This is how ``select_cells`` was chosen (docs/reproduction.md, "How the default
recipe was chosen").
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import pandas as pd
import torch

from pipeline.cli.train import parse_seeds
from trainables.gnn2gnn import make_config
from trainables.gnn2gnn.packed import PackedTrainer
from trainables.gnn2gnn.parts import split_top_share
from trainables.gnn2gnn.trial import Trial

SCORES = ("share_all", "share_distinct", "mean_distinct")


class ScoredTrial(Trial):
    """A trial that also records the candidate scores of each epoch's generated cells."""

    def evaluate(self, k, seed):
        metrics, keys, hashes, score = super().evaluate(k, seed)
        own = [h for h in hashes if h in self.split_acc]
        distinct = list(dict.fromkeys(own))
        acc_d = np.array([self.split_acc[h] for h in distinct])
        split, top = self.split_acc, self.split_top_acc
        metrics = {
            **metrics,
            "share_all": split_top_share(hashes, split, top, distinct=False),
            "share_distinct": split_top_share(hashes, split, top, distinct=True),
            "mean_distinct": float(acc_d.mean()) if len(acc_d) else -1.0,
            "split_cells": len(own),
            "split_cells_distinct": len(distinct),
        }
        return metrics, keys, hashes, score


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--benchmark", default="nasbench101")
    ap.add_argument("--seeds", default="0-4")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", help="also write each trial's epochs as JSON lines here")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    seeds = parse_seeds(args.seeds)
    sets = dict(kv.split("=", 1) for kv in args.set)
    if "eval_benchmark" in sets:
        ap.error("the scores are computed in the training space: no eval_benchmark")
    base = {"benchmark": args.benchmark, "profile": "cpu", **sets}
    cfgs = [make_config({**base, "seed": s}) for s in seeds]
    first = ScoredTrial(cfgs[0])
    trials = [first] + [ScoredTrial(c, first.bench) for c in cfgs[1:]]
    results = PackedTrainer(trials).run()
    rows, corr = [], {s: [] for s in SCORES}
    for seed, res in zip(seeds, results, strict=True):
        ep = pd.DataFrame(res.epochs)
        row = {"seed": seed, "oracle": ep.top10.max(), "last": ep.top10.iloc[-1]}
        for s in SCORES:
            kept = ep[s][::-1].idxmax()  # the highest score, ties to the later epoch
            row[s] = ep.top10[kept]
            corr[s].append(ep[[s, "top10"]].corr(method="spearman").iloc[0, 1])
        rows.append(row)
        if args.out:
            with open(args.out, "a") as f:
                line = {"benchmark": args.benchmark, "seed": seed, "epochs": res.epochs}
                f.write(json.dumps(line, default=float) + "\n")
    table = pd.DataFrame(rows)
    summary = {
        "benchmark": args.benchmark,
        "seeds": seeds,
        "top10_of_kept_epoch": table.round(2).to_dict("records"),
        "mean": table.drop(columns="seed").mean().round(2).to_dict(),
        "std": table.drop(columns="seed").std().round(2).to_dict(),
        "spearman_with_top10": {s: round(float(np.mean(c)), 2) for s, c in corr.items()},
    }
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
