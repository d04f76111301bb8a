"""Which cell sizes the generators reach (run on demand; prints, asserts nothing).

    python benchmarks/cell_sizes.py --results RESULTS [--benchmark natsbench]
        [--dataset cifar10] [--json]

Reads every finished trial evaluated on ``--benchmark`` in a results folder (a sweep
folder, or a folder of sweep folders), takes the valid generated cells of each, and prints,
per node count: how many cells of the benchmark table have that many nodes (all, labelled,
in the best 10% and 5% of the labelled cells), and the percentage of each model's valid
generated cells with that many nodes (over all its trials). Then, per model, a
size-matched uniform draw: cells drawn uniformly from the table's cells of each node
count, as many of each count as the model generated (its mean number of valid cells per
trial); its expected uniqueness, Top-10 and Top-5 (over the drawn cells with a label)
are what a generator with the model's size profile gets with no preference within a size.

On NATS node form this is why uniqueness, novelty and Top-N stay low for every generator
(docs/reproduction.md, "What reproduces and what does not").
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import pandas as pd

from analysis.render import markdown
from pipeline.nas.benchmarks import load_benchmark
from pipeline.store.results import is_sweep_folder, read_part, read_trials, sweep_folders
from trainables.gnn2gnn.config import GNN2GNNConfig

LABEL_FIELDS = ("entropy_weight", "lr")


def _label(trial) -> str:
    """The model, and the recipe fields that rows of one sweep may differ in where they
    are not the config's defaults."""
    changed = [
        f"{name} {value:g}"
        for name in LABEL_FIELDS
        if (value := getattr(trial, name, None)) is not None
        and value != GNN2GNNConfig.model_fields[name].default
    ]
    return f"{trial.model} ({', '.join(changed)})" if changed else trial.model


def generated_sizes(results: str, benchmark: str, dataset: str) -> tuple[pd.DataFrame, dict]:
    """[model, nodes] of every valid generated cell evaluated on the benchmark, and the mean
    number of valid cells per trial of each model."""
    folders = [results] if is_sweep_folder(results) else sweep_folders(results)
    cells, n_valid = [], {}
    for folder in folders:
        trials = read_trials(folder)
        if not len(trials) or "model" not in trials:
            continue
        target = trials["eval_benchmark"].fillna(trials["benchmark"])
        on = trials["eval_dataset"].fillna(trials["dataset"])
        ok = trials[(trials["status"] == "ok") & (target == benchmark) & (on == dataset)]
        if not len(ok):
            continue
        ok = ok.assign(model=[_label(r) for r in ok.itertuples()])
        gen = read_part(folder, "generated", set(ok["trial_id"]))
        gen = gen[gen["valid"]].merge(ok[["trial_id", "model"]], on="trial_id")
        cells.append(pd.DataFrame({"model": gen["model"], "nodes": gen["ops"].map(len)}))
        for model, n in ok.groupby("model")["n_valid"]:
            n_valid.setdefault(model, []).extend(n.tolist())
    if not cells:
        raise SystemExit(f"no finished trial evaluated on {benchmark}/{dataset} in {results}")
    return pd.concat(cells, ignore_index=True), {m: float(np.mean(v)) for m, v in n_valid.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--results", required=True, help="a sweep folder or a results folder")
    ap.add_argument("--benchmark", default="natsbench", choices=["natsbench", "nasbench101"])
    ap.add_argument("--dataset", default="cifar10")
    ap.add_argument("--json", action="store_true", help="print JSON instead of markdown")
    args = ap.parse_args()
    bench = load_benchmark(args.benchmark, args.dataset)
    gen, n_valid = generated_sizes(args.results, args.benchmark, args.dataset)
    lab = bench.labelled
    nodes = bench.num_vertices.astype(int)
    table = pd.DataFrame({"nodes": nodes, "labelled": lab})
    for pct in (10, 5):
        flag = np.zeros(len(bench), bool)
        flag[[bench.index[h] for h in bench.top_hashes(pct)]] = True
        table[f"top{pct}"] = flag
    by_size = table.groupby("nodes").agg(
        cells=("nodes", "size"),
        labelled=("labelled", "sum"),
        top10=("top10", "sum"),
        top5=("top5", "sum"),
    )
    shares = pd.crosstab(gen["nodes"], gen["model"], normalize="columns") * 100
    out = by_size.join(shares.add_prefix("% of "), how="outer").fillna(0).round(1)
    reach = {}
    for model in shares.columns:
        p = shares[model].reindex(by_size.index, fill_value=0.0) / 100  # size profile
        v = n_valid[model]
        c = by_size["cells"]
        distinct = (c * (1 - (1 - 1 / c) ** (v * p))).sum()
        known = (p * by_size["labelled"] / c).sum()  # share of the draw with a label
        reach[model] = {
            "valid_cells_per_trial": round(v, 1),
            "share_with_at_most_5_nodes": round(100 * p[p.index <= 5].sum(), 1),
            "size_matched_uniqueness": round(100 * distinct / v, 1),
            "size_matched_top10": round(100 * (p * by_size["top10"] / c).sum() / known, 2),
            "size_matched_top5": round(100 * (p * by_size["top5"] / c).sum() / known, 2),
        }

    if args.json:
        print(json.dumps({"by_nodes": out.reset_index().to_dict("records"), "reach": reach}))
        return
    title = f"{args.benchmark}/{args.dataset}: {len(bench)} cells, {int(lab.sum())} labelled"
    print(markdown(out.reset_index(), "Cells per node count; generated: valid cells.", title))
    print(
        markdown(
            pd.DataFrame(reach).T.reset_index(names="model"),
            "Expected metrics of a size-matched uniform draw.",
            "Per model",
        )
    )


if __name__ == "__main__":
    main()
