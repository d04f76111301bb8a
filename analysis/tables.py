"""The GNN2GNN paper's tables, regenerated from a results folder beside the published values.

Each reproduced cell is the mean over seeds with a 95% Student-t confidence interval
(mean +/- t_{0.975, n-1} * s / sqrt(n); none with one seed) and the number of seeds; the
published value stands beside it. Rows of the published table with no finished trial are
shown as missing, never filled in; failed trials are counted, not averaged. Reads Parquet
only: nothing here trains.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

PUBLISHED_CSV = Path(__file__).with_name("published.csv")
METRICS = ("novelty", "top5", "top10", "top50", "acc_n", "mean_acc")
METRIC_TITLES = {
    "novelty": "Novelty",
    "top5": "Top-5",
    "top10": "Top-10",
    "top50": "Top-50",
    "acc_n": "Acc_n",
    "mean_acc": "Acc",
}


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
}


def published(table: int) -> pd.DataFrame:
    """Published rows of one table (from ``published.csv``)."""
    frame = pd.read_csv(PUBLISHED_CSV)
    return frame[frame["table"] == table].reset_index(drop=True)


def mean_ci(values: np.ndarray) -> tuple[float, float, int]:
    """(mean, half-width of the 95% Student-t interval or NaN, n) over non-NaN values."""
    v = np.asarray(values, dtype=float)
    v = v[~np.isnan(v)]
    n = len(v)
    if n == 0:
        return math.nan, math.nan, 0
    if n == 1:
        return float(v[0]), math.nan, 1
    half = stats.t.ppf(0.975, n - 1) * v.std(ddof=1) / math.sqrt(n)
    return float(v.mean()), float(half), n


def folder_fingerprint(folder: Path) -> str:
    """sha256 (12 hex) of the sweep's trials.parquet: names the exact results a table shows."""
    return hashlib.sha256((Path(folder) / "trials.parquet").read_bytes()).hexdigest()[:12]


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
    """One reproduced table: rows of keys, reproduced stats and published values."""

    spec: TableSpec
    sweep: str
    rows: pd.DataFrame  # keys + for each metric: <m>_mean, <m>_ci, <m>_n, <m>_paper; status
    caption: str


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
    out = []
    for k in keys_in_order:
        row = dict(zip(spec.keys, k, strict=True))
        frame = groups.get(k)
        ref = paper[[(_key(r, spec.keys) == k) for _, r in paper.iterrows()]]
        row["seeds"] = 0 if frame is None else len(frame)
        row["failed"] = failed_by_key.get(k, 0)
        row["status"] = "ok" if frame is not None else "missing"
        for m in METRICS:
            mean, half, n = (
                mean_ci(frame[m].to_numpy())
                if frame is not None and m in frame
                else (math.nan, math.nan, 0)
            )
            row[f"{m}_mean"], row[f"{m}_ci"], row[f"{m}_n"] = mean, half, n
            row[f"{m}_paper"] = float(ref[m].iloc[0]) if len(ref) and m in ref else math.nan
        out.append(row)
    rows = pd.DataFrame(out)
    caption = _caption(spec, trials, sweep, folder)
    return BuiltTable(spec, sweep, rows, caption)


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
    return (
        f"Table {spec.number}: {spec.title}. Sweep `{sweep}`; benchmark {uniq('benchmark')}"
        f" evaluated on {uniq('eval_dataset')}; label {uniq('label')}{coverage}; "
        f"profile {uniq('profile')}; {k} generated cells per trial; reproduced = mean "
        f"± 95% Student-t CI over seeds (n), paper value in brackets; "
        f"results fingerprint {folder_fingerprint(folder)}.{note}"
    )


def _best(rows: pd.DataFrame, metric: str) -> float:
    vals = rows[f"{metric}_mean"].dropna()
    return float(vals.max()) if len(vals) else math.nan


def _cell(row, m: str, best: float, bold: tuple[str, str]) -> str:
    mean, half, n, paper = row[f"{m}_mean"], row[f"{m}_ci"], row[f"{m}_n"], row[f"{m}_paper"]
    if math.isnan(mean):
        text = "missing"
    else:
        text = f"{mean:.2f}" + ("" if math.isnan(half) else f" ± {half:.2f}") + f" (n={n})"
        if mean == best:
            text = f"{bold[0]}{text}{bold[1]}"
    ref = "—" if math.isnan(paper) else f"{paper:.2f}"
    return f"{text} [{ref}]"


def _fmt_key(v) -> str:
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return f"{v:g}" if isinstance(v, float) else str(v)


def to_markdown(t: BuiltTable) -> str:
    metrics = [
        m
        for m in METRICS
        if t.rows[f"{m}_paper"].notna().any() or t.rows[f"{m}_mean"].notna().any()
    ]
    head = [*t.spec.keys, "seeds", *(METRIC_TITLES[m] for m in metrics)]
    lines = [f"_{t.caption}_", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    best = {m: _best(t.rows, m) for m in metrics}
    for _, row in t.rows.iterrows():
        seeds = str(row["seeds"]) + (f" ({row['failed']} failed)" if row["failed"] else "")
        cells = [_fmt_key(row[k]) for k in t.spec.keys] + [seeds]
        cells += [_cell(row, m, best[m], ("**", "**")) for m in metrics]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def tex_escape(text: str) -> str:
    return (
        text.replace("\\", r"\textbackslash{}")
        .replace("_", r"\_")
        .replace("%", r"\%")
        .replace("&", r"\&")
        .replace("#", r"\#")
        .replace("±", r"$\pm$")
        .replace("—", "--")
        .replace("`", "")
    )


def to_latex(t: BuiltTable) -> str:
    metrics = [
        m
        for m in METRICS
        if t.rows[f"{m}_paper"].notna().any() or t.rows[f"{m}_mean"].notna().any()
    ]
    cols = "l" * (len(t.spec.keys) + 1) + "r" * len(metrics)
    head = [*t.spec.keys, "seeds", *(METRIC_TITLES[m] for m in metrics)]
    best = {m: _best(t.rows, m) for m in metrics}
    lines = [
        f"% {tex_escape(t.caption)}",
        f"\\begin{{tabular}}{{{cols}}}",
        r"\hline",
        " & ".join(tex_escape(h) for h in head) + r" \\",
        r"\hline",
    ]
    for _, row in t.rows.iterrows():
        cells = [tex_escape(_fmt_key(row[k])) for k in t.spec.keys] + [str(row["seeds"])]
        cells += [
            tex_escape(_cell(row, m, best[m], ("\x00", "\x01")))
            .replace("\x00", r"\textbf{")
            .replace("\x01", "}")
            for m in metrics
        ]
        lines.append(" & ".join(cells) + r" \\")
    lines += [r"\hline", r"\end{tabular}"]
    return "\n".join(lines) + "\n"


def sweep_tables(results: Path) -> list[BuiltTable]:
    """Every paper table that a sweep under ``results`` produces."""
    built = []
    for trials_file in sorted(Path(results).glob("*/trials.parquet")):
        folder = trials_file.parent
        trials = pd.read_parquet(trials_file)
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


def write_tables(
    results: Path, out: Path, formats: tuple[str, ...] = ("md", "csv", "tex")
) -> list[Path]:
    """Write each table in each format; returns the files written."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for t in sweep_tables(results):
        stem = out / f"table{t.spec.number}_{t.sweep}"
        if "md" in formats:
            stem.with_suffix(".md").write_text(to_markdown(t))
            written.append(stem.with_suffix(".md"))
        if "csv" in formats:
            t.rows.to_csv(stem.with_suffix(".csv"), index=False)
            written.append(stem.with_suffix(".csv"))
        if "tex" in formats:
            stem.with_suffix(".tex").write_text(to_latex(t))
            written.append(stem.with_suffix(".tex"))
    from analysis.infonas import write_infonas_tables

    written += write_infonas_tables(results, out, formats)
    return written
