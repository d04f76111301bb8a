"""Cost of recording one trial as a sweep grows (``pipeline.store.results.ResultsStore``).

Records N synthetic trials (a trial row of 60 fields, 20 epoch rows, 1,000 generated
cells each, like a GNN2GNN trial at K = 1,000) into a fresh folder and times every
``record`` call. Prints one JSON object: the mean record time over trials 6-15
(``record_seconds_at_10``) and over the last ten (``record_seconds_at_400``), their ratio,
and how long reading everything back takes. The parts layout keeps the record cost flat;
the old layout rewrote the whole sweep each time (9 ms at trial 1, 259 ms at trial 400).

    python benchmarks/results_store.py [--trials 400] [--generated 1000]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.store.results import ResultsStore, read_part, read_trials


def synthetic(i: int, generated: int, rng: np.random.Generator):
    row = {"trial_id": f"t{i:06d}", "sweep": "bench", "status": "ok", "seed": i % 5}
    row.update({f"metric_{k}": float(rng.random()) for k in range(56)})
    epochs = pd.DataFrame(
        {"epoch": np.arange(20), "d_loss": rng.random(20), "top10": rng.random(20)}
    )
    cells = pd.DataFrame(
        {
            "hash": [f"{h:032x}" for h in rng.integers(0, 2**62, generated)],
            "ops": [["input", "conv3x3", "maxpool", "output"]] * generated,
            "adjacency": [list(rng.integers(0, 2, 49))] * generated,
            "valid": rng.random(generated) > 0.3,
            "accuracy": rng.random(generated) * 100,
        }
    )
    return row, epochs, cells


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--trials", type=int, default=400)
    ap.add_argument("--generated", type=int, default=1000)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        store = ResultsStore(Path(tmp) / "bench")
        times = []
        for i in range(1, args.trials + 1):
            row, epochs, cells = synthetic(i, args.generated, rng)
            t0 = time.perf_counter()
            store.record(row, {"epochs": epochs, "generated": cells})
            times.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        trials = read_trials(store.folder)
        generated = read_part(store.folder, "generated", set(trials["trial_id"]))
        read_seconds = time.perf_counter() - t0
    at10, last = float(np.mean(times[5:15])), float(np.mean(times[-10:]))
    print(
        json.dumps(
            {
                "trials": args.trials,
                "generated_per_trial": args.generated,
                "record_seconds_at_10": round(at10, 4),
                f"record_seconds_at_{args.trials}": round(last, 4),
                "ratio": round(last / at10, 2),
                "record_seconds_total": round(float(np.sum(times)), 2),
                "read_all_seconds": round(read_seconds, 2),
                "rows_read": {"trials": len(trials), "generated": len(generated)},
            }
        )
    )


if __name__ == "__main__":
    main()
