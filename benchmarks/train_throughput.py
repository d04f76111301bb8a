"""Speed figures for the GNN2GNN trial (run on demand; prints, asserts nothing).

    python benchmarks/train_throughput.py [--benchmark natsbench] [--device auto] [--threads 2]

Prints: training steps/s at batch 32 (a full D, V and G update), generated cells/s with
refinement and canonical hashing at batch 32 and at a large batch (cold cache and warm
cache), and the end-to-end time of one `cpu`-profile trial.
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from pipeline.decode import CellDecoder
from trainables.gnn2gnn import Trial, make_config, run_trial


def timed(fn, repeat: int) -> float:
    start = time.perf_counter()
    for _ in range(repeat):
        fn()
    return (time.perf_counter() - start) / repeat


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--benchmark", default="natsbench", choices=["natsbench", "nasbench101"])
    ap.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--model", default="gnn2gnn")
    ap.add_argument("--skip-trial", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    out: dict = {"benchmark": args.benchmark, "threads": args.threads, "model": args.model}
    cfg = make_config(
        {"benchmark": args.benchmark, "profile": "cpu", "device": args.device, "model": args.model}
    )
    trial = Trial(cfg)
    out["device"] = str(trial.device)
    idx = torch.arange(32, device=trial.device)
    sync = torch.cuda.synchronize if trial.device.type == "cuda" else (lambda: None)
    for _ in range(30):
        trial.step(idx, 0.1)
    sync()

    def step():
        trial.step(idx, 0.1)
        sync()

    sec = timed(step, 300)
    out["train_step_ms_batch32"] = round(sec * 1000, 3)
    out["train_steps_per_s_batch32"] = round(1 / sec, 1)
    gen = trial.gen.eval()
    space = trial.bench.space
    for batch in (32, 4096):
        with torch.no_grad():
            cold = CellDecoder(space, trial.n)
            g = torch.Generator(device=trial.device).manual_seed(0)
            n_batches = max(1, 20000 // batch)
            sec = timed(lambda b=batch, d=cold, gg=g: (d.decode(gen(b, gg)), sync()), n_batches)
            out[f"generated_cells_per_s_batch{batch}_cold_cache"] = round(batch / sec)
            sec = timed(lambda b=batch, d=cold, gg=g: (d.decode(gen(b, gg)), sync()), n_batches)
            out[f"generated_cells_per_s_batch{batch}_warm_cache"] = round(batch / sec)
    if not args.skip_trial:
        start = time.perf_counter()
        res = run_trial(
            {
                "benchmark": args.benchmark,
                "profile": "cpu",
                "device": args.device,
                "model": args.model,
            }
        )
        out["cpu_profile_trial_seconds"] = round(time.perf_counter() - start, 1)
        out["cpu_profile_trial_steps_per_s"] = round(res.metrics["steps_per_second"], 1)
        out["cpu_profile_trial_mean_acc"] = round(res.metrics["mean_acc"], 2)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
