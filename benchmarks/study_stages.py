"""Where a GNN2GNN trial of the study spends its time, per stage (docs/speed.md, "The whole
study at the cpu profile").

    python benchmarks/study_stages.py [--benchmark nasbench101] [--pack 5] [--threads 1]

Trains one packed group of ``--pack`` trials (seeds 0..P-1) at the settings the study runs
them with (``cpu`` profile, K = 10,000) and prints one JSON object: seconds per trial in
the structure reference rows, the per-epoch evaluation and selection, the final
evaluation, and the rest (training steps and set-up), by timing those methods.
"""

from __future__ import annotations

import argparse
import json
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--benchmark", default="nasbench101")
    parser.add_argument("--pack", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--num-generated", type=int, default=10_000)
    args = parser.parse_args()

    import torch

    from pipeline.alloc import keep_large_allocations

    torch.set_num_threads(args.threads)
    keep_large_allocations()
    import trainables.gnn2gnn.parts as parts
    import trainables.gnn2gnn.trial as trial
    from trainables.gnn2gnn import EXPERIMENT, run_packed

    spent = {"references": 0.0, "epoch_eval": 0.0, "finish": 0.0}

    def timed(owner, name: str, key: str) -> None:
        original = getattr(owner, name)

        def wrapper(*a, **kw):
            t0 = time.perf_counter()
            try:
                return original(*a, **kw)
            finally:
                spent[key] += time.perf_counter() - t0

        setattr(owner, name, wrapper)

    timed(parts, "structure_references", "references")
    timed(trial.Trial, "end_epoch", "epoch_eval")
    timed(trial.Trial, "finish", "finish")
    configs = [
        EXPERIMENT.make_config(
            {
                "benchmark": args.benchmark,
                "profile": "cpu",
                "num_generated": args.num_generated,
                "seed": seed,
            }
        )
        for seed in range(args.pack)
    ]
    t0 = time.perf_counter()
    run_packed(configs)
    wall = time.perf_counter() - t0
    per = {k: round(v / args.pack, 2) for k, v in spent.items()}
    per["training_and_rest"] = round(wall / args.pack - sum(per.values()), 2)
    print(
        json.dumps(
            {
                "benchmark": args.benchmark,
                "pack": args.pack,
                "threads": args.threads,
                "wall_per_trial": round(wall / args.pack, 2),
                **per,
            }
        )
    )


if __name__ == "__main__":
    main()
