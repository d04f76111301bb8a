"""Speed figures for the GNN2GNN trial (run on demand; prints, asserts nothing).

    python benchmarks/train_throughput.py [--benchmark natsbench] [--device auto] [--threads 2]
        [--pack P] [--set KEY=VALUE ...]

Prints JSON: training steps/s at batch 32 (a full D, V and G update), generated cells/s
with refinement and canonical hashing at batch 32 and at a large batch (cold cache and warm
cache), and the end-to-end time of one `cpu`-profile trial. With ``--pack P``: the
trial-steps/s of one trial and of P trials packed (``trainables.gnn2gnn.packed``), both
over the same real training steps (shuffled training batches, the decoder's cache warming
as in a trial), summed over the P trials. ``--set hidden=32`` etc. changes the trial config.
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from pipeline.decode import CellDecoder
from trainables.gnn2gnn import Trial, make_config, run_trial
from trainables.gnn2gnn.packed import PackedTrainer


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
    ap.add_argument("--pack", type=int, default=0, help="also time P trials packed")
    ap.add_argument("--pack-steps", type=int, default=300, help="timed steps (after 100)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    extra = dict(item.split("=", 1) for item in args.set)
    out: dict = {"benchmark": args.benchmark, "threads": args.threads, "model": args.model}
    if extra:
        out["set"] = extra
    base = {
        "benchmark": args.benchmark,
        "profile": "cpu",
        "device": args.device,
        "model": args.model,
        **extra,
    }
    cfg = make_config(base)
    trial = Trial(cfg)
    if args.pack:
        out.update(packed_figures(cfg, base, trial, args.pack, args.pack_steps))
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
            cold = CellDecoder(space, trial.n, table=trial.bench)
            g = torch.Generator(device=trial.device).manual_seed(0)
            n_batches = max(1, 20000 // batch)
            sec = timed(lambda b=batch, d=cold, gg=g: (d.decode(gen(b, gg)), sync()), n_batches)
            out[f"generated_cells_per_s_batch{batch}_cold_cache"] = round(batch / sec)
            sec = timed(lambda b=batch, d=cold, gg=g: (d.decode(gen(b, gg)), sync()), n_batches)
            out[f"generated_cells_per_s_batch{batch}_warm_cache"] = round(batch / sec)
    if not args.skip_trial:
        start = time.perf_counter()
        res = run_trial(base)
        out["cpu_profile_trial_seconds"] = round(time.perf_counter() - start, 1)
        out["cpu_profile_trial_steps_per_s"] = round(res.metrics["steps_per_second"], 1)
        out["cpu_profile_trial_mean_acc"] = round(res.metrics["mean_acc"], 2)
    print(json.dumps(out, indent=2))


def packed_figures(cfg, base: dict, trial: Trial, pack: int, steps: int) -> dict:
    """Trial-steps/s of one trial and of ``pack`` trials packed, over real training steps
    (100 untimed, then ``steps`` timed): fresh trials, seeds 0..P-1."""
    sync = torch.cuda.synchronize if trial.device.type == "cuda" else (lambda: None)
    bs = cfg.batch_size

    def batches(t: Trial):
        t.begin()
        while True:
            order = t.epoch_order()
            for s in range(t.steps_per_epoch):
                yield order[s * bs : (s + 1) * bs]

    single = Trial(cfg, trial.bench)
    feed = batches(single)
    for _ in range(100):
        single.step(next(feed), 0.1)
    sync()
    sec = timed(lambda: single.step(next(feed), 0.1), steps)
    sync()
    trials = [Trial(make_config({**base, "seed": s}), trial.bench) for s in range(pack)]
    packed = PackedTrainer(trials)
    feeds = [batches(t) for t in trials]
    lam = torch.full((pack,), 0.1, device=trial.device)

    def packed_step():
        idx = [next(f) for f in feeds]
        n = min(len(i) for i in idx)  # an epoch's short last batch: the same for all
        packed.step(torch.stack([i[:n] for i in idx]), lam)

    for _ in range(100):
        packed_step()
    sync()
    psec = timed(lambda: (packed_step(), sync()), steps)
    return {
        "pack": pack,
        "single_trial_steps_per_s": round(1 / sec, 1),
        "packed_trial_steps_per_s": round(pack / psec, 1),
        "packed_speedup": round(sec * pack / psec, 2),
    }


if __name__ == "__main__":
    main()
