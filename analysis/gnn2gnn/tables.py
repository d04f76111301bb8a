"""The GNN2GNN paper's tables, regenerated from a results folder beside the published values.

Each reproduced cell is the mean over seeds with a 95% Student-t confidence interval
(mean +/- t_{0.975, n-1} * s / sqrt(n); none with one seed) and the number of seeds; the
published value stands beside it. Rows of the published table with no finished trial are
shown as missing, never filled in; failed trials are counted, not averaged. Reads Parquet
only: nothing here trains.

Seeds are never dropped silently. Top-N, Acc_n and Acc are over the known cells of a seed
(generated cells with a known accuracy), so a seed with no known cell has no value for them:
the ``known`` column counts the seeds that had known cells, and each cell's n says how many
seeds it averages. The ``_all`` columns use the authors' denominator (all K generated
cells), where such a seed counts as 0; the published values stand beside those.

Two reference rows close every table, computed by each trial from the data (see
:func:`trainables.gnn2gnn.metrics.reference_metrics`): cells drawn uniformly from the labelled
benchmark, and cells copied from the training split.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from analysis.stats import mean_ci
from pipeline.store.results import experiment_sweeps, fingerprint, read_part

PUBLISHED_CSV = Path(__file__).with_name("published.csv")
METRICS = (
    "novelty",
    "top5",
    "top10",
    "top50",
    "acc_n",
    "mean_acc",
    "top5_all",
    "top10_all",
    "top50_all",
    "acc_n_all",
    "validity",
    "uniqueness",
)
METRIC_TITLES = {
    "novelty": "Novelty",
    "top5": "Top-5",
    "top10": "Top-10",
    "top50": "Top-50",
    "acc_n": "Acc_n",
    "mean_acc": "Acc",
    "top5_all": "Top-5 (all)",
    "top10_all": "Top-10 (all)",
    "top50_all": "Top-50 (all)",
    "acc_n_all": "Acc_n (all)",
    "validity": "Validity",
    "uniqueness": "Uniqueness",
}
# ``metrics: authors`` trials also carry the same cells read as the authors' code reads them
# (trainables.gnn2gnn.metrics, second table); tables show these columns where trials have them.
AUTHORS_METRICS = tuple(
    f"{m}_authors"
    for m in ("novelty", "top5", "top10", "top50", "acc_n", "mean_acc", "validity", "uniqueness")
)
METRIC_TITLES.update(
    {m: f"{METRIC_TITLES[m.removesuffix('_authors')]} (authors)" for m in AUTHORS_METRICS}
)
# Published value shown beside each reproduced metric: the authors' code divides Top-N and
# Acc_n by all generated cells, so the paper's numbers stand beside the ``_all`` columns.
PAPER_COLUMN = {
    "novelty": "novelty",
    "mean_acc": "mean_acc",
    "top5_all": "top5",
    "top10_all": "top10",
    "top50_all": "top50",
    "acc_n_all": "acc_n",
    **{f"{m}_authors": m for m in ("novelty", "top5", "top10", "top50", "acc_n", "mean_acc")},
}
# Groups of the reference rows: what changes the benchmark table or the split they rest on.
REFERENCE_KEYS = ("eval_dataset", "top_n_removed")
REFERENCE_TITLES = {
    "uniform": "reference: uniform over the benchmark",
    "copy_train": "reference: copy the training split",
}
# The structure reference rows (trainables.gnn2gnn.parts.structure_references): the untrained
# generator's structures with uniform ops / one best op, per generator setting as well.
STRUCTURE_TITLES = {
    "init_uniform_ops": "reference: untrained generator's structures, uniform ops",
    "init_best_op": "reference: untrained generator's structures, one best op",
}
# what shapes the untrained generator (and the space it generates in)
STRUCTURE_KEYS = (
    "benchmark",
    "model",
    "mu",
    "tau",
    "generator_conv",
    "num_nodes",
    "hidden",
    "noise_dim",
    "noise",
    "edge_scorer",
)


@dataclass(frozen=True)
class TableSpec:
    number: int
    title: str
    keys: tuple[str, ...]  # columns that identify a row
    sweep: str  # default sweep name that produces it


TABLES = {
    1: TableSpec(
        1,
        "Ablation over mu, tau, lambda (valuer C, top 10% removed)",
        ("mu", "tau", "lambda"),
        "ablation",
    ),
    2: TableSpec(2, "Valuer mode C vs R", ("mu", "tau", "lambda", "valuer"), "valuer"),
    3: TableSpec(3, "GNN2GNN vs other generators", ("model",), "baselines"),
    4: TableSpec(
        4, "Top-N% of the best cells removed from training", ("top_n_removed",), "robustness"
    ),
    5: TableSpec(5, "Generalisation between data sets", ("benchmark", "eval_dataset"), "transfer"),
    6: TableSpec(
        6,
        "Clean vs the authors' protocol (theirs leaks test labels into the valuer and the "
        "kept epoch; published GNN2GNN on NAS-Bench-101: Top-5 45.91, Top-10 52.21)",
        ("protocol",),
        "protocol",
    ),
    7: TableSpec(
        7,
        "Beyond the paper, NATS: the paper's node-form generator vs gnn2gnn_edges (an op "
        "per NATS cell edge)",
        ("model", "entropy_weight", "lr"),
        "edgeform",
    ),
    8: TableSpec(
        8,
        "Beyond the paper: the generator's graph convolution, directed (two directions, "
        "separate weights) vs gcn (the authors' GCNConv)",
        ("generator_conv",),
        "conv",
    ),
}


def published(table: int) -> pd.DataFrame:
    """Published rows of one table (from ``published.csv``)."""
    frame = pd.read_csv(PUBLISHED_CSV)
    return frame[frame["table"] == table].reset_index(drop=True)


def _key(row, keys) -> tuple:
    out = []
    for k in keys:
        v = row[k]
        out.append(round(float(v), 6) if isinstance(v, int | float | np.number) else str(v))
    return tuple(out)


def _eval_dataset(trials: pd.DataFrame) -> pd.Series:
    if "eval_dataset" in trials.columns:
        return trials["eval_dataset"].fillna(trials["dataset"])
    return trials["dataset"]


@dataclass
class BuiltTable:
    """One reproduced table: rows of keys, reproduced stats and published values, then the
    reference rows (``references``: ``reference`` name, the reference keys, ``<m>_mean``)."""

    spec: TableSpec
    sweep: str
    rows: pd.DataFrame  # keys + for each metric: <m>_mean, <m>_ci, <m>_n, <m>_paper; status
    caption: str
    references: pd.DataFrame = field(default_factory=pd.DataFrame)


def _known_seeds(frame: pd.DataFrame) -> int:
    """Seeds of a row that had at least one generated cell with a known accuracy."""
    if "n_known" in frame:
        return int((frame["n_known"].fillna(0) > 0).sum())
    return int(frame["mean_acc"].notna().sum()) if "mean_acc" in frame else 0


def reference_rows(trials: pd.DataFrame, folder: Path) -> pd.DataFrame:
    """The reference rows of a sweep: each finished trial's ``reference`` table, averaged per
    reference and per group of :data:`REFERENCE_KEYS` (they are equal across seeds when the
    split seed is fixed)."""
    ok = trials[trials["status"] == "ok"].set_index("trial_id")
    refs = read_part(folder, "reference", set(ok.index))
    if refs.empty:
        return pd.DataFrame()
    for key in (*REFERENCE_KEYS, *STRUCTURE_KEYS):
        refs[key] = refs["trial_id"].map(ok[key]) if key in ok.columns else np.nan
    metrics = [m for m in (*METRICS, *AUTHORS_METRICS) if m in refs]
    exact = refs[~refs["reference"].isin(list(STRUCTURE_TITLES))]
    out = exact.groupby(["reference", *REFERENCE_KEYS], dropna=False, sort=False)[metrics].mean()
    out = out.rename(columns={m: f"{m}_mean" for m in metrics}).reset_index()
    order = {name: i for i, name in enumerate([*REFERENCE_TITLES, *STRUCTURE_TITLES])}
    out = out.sort_values(
        [*REFERENCE_KEYS, "reference"], key=lambda c: c.map(order) if c.name == "reference" else c
    )
    structure = refs[refs["reference"].isin(list(STRUCTURE_TITLES))]
    if len(structure):  # one pair per generator setting, the one best op named
        keys = ["reference", *REFERENCE_KEYS, *STRUCTURE_KEYS]
        how = {m: "mean" for m in metrics} | {c: _one for c in ("op", "samples") if c in refs}
        grouped = structure.groupby(keys, dropna=False, sort=False).agg(how)
        grouped = grouped.rename(columns={m: f"{m}_mean" for m in metrics}).reset_index()
        grouped = grouped.sort_values(
            [*REFERENCE_KEYS, *STRUCTURE_KEYS, "reference"],
            key=lambda c: c.map(order) if c.name == "reference" else c,
        )
        out = pd.concat([out, grouped], ignore_index=True)
    return out.reset_index(drop=True)


def _one(values: pd.Series):
    """The one value of a group (the best op, the samples), or "mixed" when seeds differ."""
    distinct = values.dropna().unique()
    return distinct[0] if len(distinct) == 1 else ("mixed" if len(distinct) else np.nan)


def build_table(number: int, trials: pd.DataFrame, sweep: str, folder: Path) -> BuiltTable:
    """Reproduced table ``number`` from one sweep's trials (see module docstring)."""
    spec = TABLES[number]
    trials = trials.copy()
    trials["eval_dataset"] = _eval_dataset(trials)
    ok = trials[trials["status"] == "ok"]
    paper = published(number)
    if number == 5:
        paper = paper.assign(benchmark=paper["benchmark"])
    groups: dict[tuple, pd.DataFrame] = {}
    for key, frame in ok.groupby(list(spec.keys), dropna=False):
        groups[
            _key(
                dict(zip(spec.keys, key if isinstance(key, tuple) else (key,), strict=True)),
                spec.keys,
            )
        ] = frame
    failed = trials[trials["status"] != "ok"]
    failed_by_key: dict[tuple, int] = {}
    for _, row in failed.iterrows():
        k = _key(row, spec.keys)
        failed_by_key[k] = failed_by_key.get(k, 0) + 1
    keys_in_order = [_key(r, spec.keys) for _, r in paper.iterrows()]
    keys_in_order += [k for k in sorted(groups, key=str) if k not in keys_in_order]
    keys_in_order += [k for k in failed_by_key if k not in keys_in_order]
    references = reference_rows(trials, folder)
    # the authors' columns where trials or reference rows have them (structure reference rows
    # carry both semantics even when the trials recorded the clean ones only)
    metrics = METRICS + tuple(
        m
        for m in AUTHORS_METRICS
        if (m in ok and ok[m].notna().any())
        or (f"{m}_mean" in references and references[f"{m}_mean"].notna().any())
    )
    out = []
    for k in keys_in_order:
        row = dict(zip(spec.keys, k, strict=True))
        frame = groups.get(k)
        ref = paper[[(_key(r, spec.keys) == k) for _, r in paper.iterrows()]]
        row["seeds"] = 0 if frame is None else len(frame)
        row["known"] = 0 if frame is None else _known_seeds(frame)
        row["failed"] = failed_by_key.get(k, 0)
        row["status"] = "ok" if frame is not None else "missing"
        for m in metrics:
            mean, half, n = (
                mean_ci(frame[m].to_numpy())
                if frame is not None and m in frame
                else (math.nan, math.nan, 0)
            )
            row[f"{m}_mean"], row[f"{m}_ci"], row[f"{m}_n"] = mean, half, n
            col = PAPER_COLUMN.get(m)
            row[f"{m}_paper"] = float(ref[col].iloc[0]) if len(ref) and col in ref else math.nan
        out.append(row)
    rows = pd.DataFrame(out)
    caption = _caption(spec, trials, sweep, folder)
    return BuiltTable(spec, sweep, rows, caption, references)


def _caption(spec: TableSpec, trials: pd.DataFrame, sweep: str, folder: Path) -> str:
    def uniq(col):
        return ", ".join(sorted({str(v) for v in trials[col].dropna()})) if col in trials else "?"

    coverage = ""
    if "label_coverage" in trials and trials["label_coverage"].notna().any():
        coverage = f" (label coverage {trials['label_coverage'].dropna().iloc[0]:.1%})"
    k = (
        ", ".join(
            sorted(
                {str(int(v)) for v in trials.get("num_generated", pd.Series(dtype=float)).dropna()}
            )
        )
        or "?"
    )
    note = ""
    if spec.number <= 4 and set(trials.get("benchmark", pd.Series(dtype=str)).dropna()) - {
        "nasbench101"
    }:
        note = " Published values are NAS-Bench-101 CIFAR-10; these trials ran elsewhere."
    note += _selection_note(trials) + _label_note(trials)
    return (
        f"Table {spec.number}: {spec.title}. Sweep `{sweep}`; benchmark {uniq('benchmark')}"
        f" evaluated on {uniq('eval_dataset')}; label {uniq('label')}{coverage}; "
        f"profile {uniq('profile')}; protocol {uniq('protocol')}; {k} generated cells per "
        f"trial; reproduced = mean ± 95% Student-t CI over seeds (n), paper value in brackets "
        f"(beside the all-cells columns: the authors' code divides Top-N and Acc_n by all "
        f"generated cells). Top-N, Acc_n and Acc are over known cells: 'known' counts the "
        f"seeds that had any, and only those enter these means; the (all) columns count every "
        f"seed, one with no known cell as 0. Reference rows are exact expectations computed "
        f"from the benchmark and the training split; "
        f"results fingerprint {fingerprint(folder)}.{note}{_authors_note(trials)}"
    )


def _authors_note(trials: pd.DataFrame) -> str:
    if not any(m in trials and trials[m].notna().any() for m in AUTHORS_METRICS):
        return ""
    return (
        " The (authors) columns read the same generated cells as the authors' code does: "
        "raw-encoding match, no-path graphs as the 2-vertex cell, no 9-edge rule, Top-N over "
        "the whole table's percentile and all K cells, Acc over matched cells "
        "(trainables.gnn2gnn.metrics)."
    )


def _label_note(trials: pd.DataFrame) -> str:
    """A warning when trials on one (benchmark, data set) differ in their label: a folder
    resumed across a change of the default label (NAS-Bench-101's, issue 25) mixes them,
    and a row's mean would then average two labels."""
    if "label" not in trials:
        return ""
    where = trials.get("benchmark", pd.Series("?", index=trials.index)).fillna("?").astype(str)
    where = where + "/" + _eval_dataset(trials).astype(str)
    per = trials.groupby(where.values)["label"].agg(lambda v: sorted(set(v.dropna())))
    mixed = {k: v for k, v in per.items() if len(v) > 1}
    if not mixed:
        return ""
    parts = "; ".join(f"{k}: {', '.join(v)}" for k, v in mixed.items())
    return (
        f" WARNING: trials evaluated on one benchmark used different labels ({parts}); rerun "
        "into a fresh results folder, or give the label with --set label=..."
    )


def _selection_note(trials: pd.DataFrame) -> str:
    """How the clean trials' kept epoch was scored (``select_cells``, recorded as
    ``select_distinct``), per training benchmark (``auto`` resolves on it); a warning when
    trials on one benchmark differ in it (a folder resumed across versions)."""
    if "protocol" in trials:
        trials = trials[trials["protocol"].fillna("clean") == "clean"]
    if not len(trials) or "select_distinct" not in trials:
        return ""
    phrase = {
        True: "each distinct generated split cell counted once",
        False: "every generated split cell counted",
    }
    rule = trials["select_distinct"].map(lambda v: phrase.get(v, "rule not recorded"))
    bench = trials.get("benchmark", pd.Series("?", index=trials.index)).fillna("?")
    per = {b: rule[bench == b].value_counts() for b in sorted(set(bench))}
    mixed = {b: c for b, c in per.items() if len(c) > 1}
    if mixed:
        parts = "; ".join(
            f"{b}: " + ", ".join(f"{name} in {n} trials" for name, n in c.items())
            for b, c in mixed.items()
        )
        return (
            f" WARNING: trials on one benchmark were selected by different rules ({parts});"
            " rerun into a fresh results folder to compare like with like."
        )
    if len(per) == 1:
        return f" Clean model selection: {next(iter(per.values())).index[0]}."
    return (
        " Clean model selection: " + "; ".join(f"{c.index[0]} ({b})" for b, c in per.items()) + "."
    )


def sweep_tables(results: Path) -> list[BuiltTable]:
    """Every paper table that a GNN2GNN sweep under ``results`` produces."""
    built = []
    for folder, trials in experiment_sweeps(results, "gnn2gnn"):
        sweep = str(trials["sweep"].iloc[0]) if "sweep" in trials and len(trials) else folder.name
        number = None
        if "table" in trials and trials["table"].notna().any():
            number = int(trials["table"].dropna().iloc[0])
        else:
            number = next((n for n, s in TABLES.items() if s.sweep == sweep), None)
        if number is None:
            continue
        built.append(build_table(number, trials, sweep, folder))
    return built
