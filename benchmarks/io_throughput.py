"""Speed figures for the IO-embedding trials (run on demand; prints, asserts nothing).

    python benchmarks/io_throughput.py [--threads 2] [--device auto] [--io-data FOLDER]

Prints: arch2vec VAE training step at batch 32 (ms), the IO model's labelled step at batch
32 (VAE + image CNN + head; needs a pretraining folder, default results/pretrain-smoke),
encoding throughput (cells/s, batch 8192), one REINFORCE run and one random-forest fit.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from trainables.infonas import IOTrial, make_config
from trainables.infonas import evaluate as nas_eval


def timed(fn, repeat: int) -> float:
    start = time.perf_counter()
    for _ in range(repeat):
        fn()
    return (time.perf_counter() - start) / repeat


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--io-data", default="results/pretrain-smoke")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    out: dict = {"threads": args.threads}
    base = {"profile": "smoke", "device": args.device, "export": "labelled", "evaluate": False}
    trial = IOTrial(make_config({**base, "model": "arch2vec", "max_cells": 4096}))
    out["device"] = str(trial.device)
    sync = torch.cuda.synchronize if trial.device.type == "cuda" else (lambda: None)
    idx = torch.arange(32, device=trial.device)
    for _ in range(30):
        trial.unlabelled_step(idx)
    sync()
    sec = timed(lambda: (trial.unlabelled_step(idx), sync()), 300)
    out["vae_step_ms_batch32"] = round(sec * 1000, 3)
    t = time.perf_counter()
    latent = trial.latent_rows()
    out["encode_cells_per_s"] = round(len(latent["hash"]) / (time.perf_counter() - t))
    if Path(args.io_data).is_dir():
        io_trial = IOTrial(make_config({**base, "model": "io-embedding", "io_data": args.io_data}))
        pairs = io_trial.io.splits["train"].pairs[:32]
        for _ in range(10):
            io_trial.labelled_step(pairs)
        sec = timed(lambda: (io_trial.labelled_step(pairs), sync()), 100)
        out["io_labelled_step_ms_batch32"] = round(sec * 1000, 3)
    view = nas_eval.search_view(latent, trial.bench)
    t = time.perf_counter()
    run = nas_eval.reinforce_search(view, 1e6, seed=0)
    out["reinforce_run_1e6s_seconds"] = round(time.perf_counter() - t, 3)
    out["reinforce_queries"] = len(run.visited)
    t = time.perf_counter()
    nas_eval.predict_performance(view.z, view.acc, [1000], [0])
    out["forest_fit_predict_1000_seconds"] = round(time.perf_counter() - t, 3)
    out["forest_test_cells"] = int((view.acc > 0.8).sum())
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    np.set_printoptions(precision=3)
    main()
