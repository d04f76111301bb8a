"""Speed figures for the GNN2GNN trial (run on demand; prints, asserts nothing).

    python benchmarks/train_throughput.py [--benchmark natsbench] [--device auto] [--threads 2]
        [--pack P] [--set KEY=VALUE ...]

Prints JSON: training steps/s at batch 32 (a full D, V and G update), generated cells/s
with refinement and canonical hashing at batch 32 and at a large batch (cold cache and warm
cache), and the end-to-end time of one `cpu`-profile trial. With ``--pack P``: the
trial-steps/s of one trial and of P trials packed (``trainables.gnn2gnn.packed``), both
over the same real training steps (shuffled training batches, the decoder's cache warming
as in a trial), summed over the P trials. ``--set hidden=32`` etc. changes the trial config.
On CUDA, and on the CPU with ``--pretrain``: Info-NAS pretraining images/s of one
NAS-Bench-101 network (``--stem``, default 128 on CUDA, the paper's width; 16 on the CPU)
in fp32 and bf16 autocast, and the projected device-hours of the paper's pretraining (685
networks x 12 epochs x 49,000 images). On CUDA ``--pack`` also times P = 64.
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from pipeline.alloc import keep_large_allocations
from pipeline.nas.decode import CellDecoder
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
    ap.add_argument("--pretrain", action="store_true", help="time pretraining (always on CUDA)")
    ap.add_argument("--stem", type=int, default=None, help="pretraining stem channels")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    malloc_tuned = keep_large_allocations()  # as trials get it (GNN2GNN_MALLOC=default: off)
    extra = dict(item.split("=", 1) for item in args.set)
    out: dict = {"benchmark": args.benchmark, "threads": args.threads, "model": args.model}
    out["malloc_tuned"] = malloc_tuned
    if extra:
        out["set"] = extra
    base = {
        "benchmark": args.benchmark,
        "profile": "cpu",
        "device": args.device,
        "model": args.model,
        "reference_samples": 0,  # the structure reference rows: not part of any timed step
        **extra,
    }
    cfg = make_config(base)
    trial = Trial(cfg)
    out["device"] = str(trial.device)
    # the single step and generation first: measured after the packed runs in the same
    # process, the step reads 10-40% slower on the CPU (the allocator's state after them)
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
    if args.pack:
        out.update(packed_figures(cfg, base, trial, args.pack, args.pack_steps))
        if trial.device.type == "cuda" and args.pack != 64:
            big = packed_figures(cfg, base, trial, 64, args.pack_steps)
            out.update({f"{k}_p64": v for k, v in big.items() if k != "pack"})
    if args.pretrain or trial.device.type == "cuda":
        stem = args.stem or (128 if trial.device.type == "cuda" else 16)
        out.update(pretraining_figures(trial.device, stem))
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
    lam = [0.1] * pack

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


def pretraining_figures(device: torch.device, stem: int, steps: int = 20) -> dict:
    """Images/s of Info-NAS pretraining steps (the loop of ``trainables.infonas.pretrain``:
    SGD, cross-entropy, clipping; bf16 autocast and channels_last as on CUDA) on random
    images, fp32 and bf16, and the paper's pretraining projected from the faster one."""
    import numpy as np
    import torch.nn.functional as F

    from pipeline.nas.cells import Cell
    from trainables.infonas.nb101net import NB101Network

    ops = ["input", "conv3x3-bn-relu", "conv1x1-bn-relu", "maxpool3x3", "conv3x3-bn-relu"]
    adj = np.zeros((6, 6), dtype=np.uint8)
    for u, v in ((0, 1), (0, 2), (1, 3), (2, 3), (3, 4), (4, 5), (0, 5)):
        adj[u, v] = 1
    cell = Cell.from_lists([*ops, "output"], adj)
    batch = 128
    out: dict = {"pretrain_stem_channels": stem, "pretrain_batch": batch}
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    for precision in ("fp32", "bf16"):
        torch.manual_seed(0)
        layout = torch.channels_last if device.type == "cuda" else torch.contiguous_format
        net = NB101Network(cell, stem, 3, 3).to(device).to(memory_format=layout)
        opt = torch.optim.SGD(net.parameters(), lr=0.025, momentum=0.9, weight_decay=1e-4)
        x = torch.randn(batch, 3, 32, 32, device=device).contiguous(memory_format=layout)
        y = torch.randint(0, 10, (batch,), device=device)

        def step(net=net, opt=opt, x=x, y=y, bf16=precision == "bf16"):
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
                loss = F.cross_entropy(net(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(net.parameters(), 5.0)
            opt.step()

        for _ in range(3):
            step()
        sync()
        sec = timed(lambda step=step: step(), steps)
        sync()
        out[f"pretrain_images_per_s_{precision}"] = round(batch / sec, 1)
    best = max(out["pretrain_images_per_s_fp32"], out["pretrain_images_per_s_bf16"])
    images = 685 * 12 * 49_000  # the paper: 608 + 77 networks, 12 epochs, 49k images each
    out["paper_pretraining_hours_projected"] = round(images / best / 3600, 1)
    return out


if __name__ == "__main__":
    main()
