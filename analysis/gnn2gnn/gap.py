"""The gap decomposition: from the clean protocol to the published GNN2GNN numbers, one
factor at a time, from the trials of the gap sweeps (``sweeps/gap.yaml`` on NAS-Bench-101,
``sweeps/gap_nats.yaml`` on NATS-Bench CIFAR-10; :data:`SWEEPS`).

Each row adds one factor to the row above and says what it costs: the change of every
metric from the row above. The NAS-Bench-101 rows, and the trials and columns each reads:

======================================  ==============================================
row                                     trials (all GNN2GNN at its defaults) / columns
======================================  ==============================================
clean                                   protocol clean, label val_acc_108_r1, K = 10,000
                                        / the clean columns (Top-N, Acc over known cells)
+ the covering label                    label val_acc_108_mean / the clean columns
+ the authors' metric semantics         the same trials / the ``<metric>_authors`` columns
+ the authors' leak                     protocol authors / ``<metric>_authors``
+ K = 1,000                             protocol authors, K = 1,000 / ``<metric>_authors``
+ full-table labels (estimate)          the same / Top-N x matched / matched-known cells
published                               Table 3, GNN2GNN
======================================  ==============================================

On NATS every cell is labelled, so there is no covering-label row; after K = 1,000 comes
the authors' 12-epoch label, which needs the official files. The structure reference rows
(the untrained generator's structures with uniform ops and with one best op, under the
authors' semantics) close each table.

Each value is the mean over seeds with a 95% Student-t interval and the number of seeds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from analysis.gnn2gnn.tables import METRIC_TITLES, STRUCTURE_TITLES, published
from analysis.render import FORMATS, markdown, write_frame
from analysis.stats import mean_ci
from pipeline.store.results import experiment_sweeps, fingerprint, read_part

METRICS = {  # the published columns, titled as in the paper tables
    m: METRIC_TITLES[m] for m in ("top5", "top10", "top50", "acc_n", "mean_acc", "novelty")
}
SEMANTICS = (
    "+ the authors' metric semantics",
    "raw-encoding match, no-path cells kept, Top-N over all K",
)
LEAK = ("+ the authors' leak", "valuer labels and kept epoch from the whole table")
K1000 = ("+ K = 1,000", "the authors' number of generated cells")


@dataclass(frozen=True)
class Step:
    row: str
    adds: str
    want: dict  # the trials' config (beside DEFAULTS)
    suffix: str  # the metric columns it reads: "" clean, "_authors"
    missing: str = ""  # what the row needs when no trial has it
    # Top-N as if every matched cell were labelled: scaled by matched / matched-known cells
    # (an estimate: unlabelled matched cells ranked like the labelled ones)
    full_labels: bool = False


@dataclass(frozen=True)
class Decomposition:
    benchmark: str
    steps: tuple[Step, ...]
    published: dict  # the published row: table and keys in published.csv
    reference_step: int  # the step whose trials give the structure reference rows


MEAN = {"label": "val_acc_108_mean"}
AUTHORS = {"protocol": "authors"}
HP12 = "cifar10_hp12_test_acc"
SWEEPS = {
    "gap": Decomposition(
        "nasbench101",
        (
            Step(
                "clean", "the project's clean protocol and metrics", {"label": "val_acc_108_r1"}, ""
            ),
            Step("+ the covering label", "label: mean of every seen 108-epoch repeat", MEAN, ""),
            Step(*SEMANTICS, MEAN, "_authors"),
            Step(*LEAK, {**MEAN, **AUTHORS}, "_authors"),
            Step(*K1000, {**MEAN, **AUTHORS, "num_generated": 1000}, "_authors"),
            Step(
                "+ full-table labels (estimate)",
                "Top-N as if every matched cell had a label (the authors' table is fully "
                "labelled; measuring it needs the official nasbench_only108.tfrecord)",
                {**MEAN, **AUTHORS, "num_generated": 1000},
                "_authors",
                full_labels=True,
            ),
        ),
        {"table": 3, "model": "gnn2gnn", "benchmark": "nasbench101"},
        1,
    ),
    "gap_nats": Decomposition(
        "natsbench",
        (
            Step(
                "clean",
                "the project's clean protocol and metrics",
                {"label": "cifar10_test_acc"},
                "",
            ),
            Step(*SEMANTICS, {"label": "cifar10_test_acc"}, "_authors"),
            Step(*LEAK, {"label": "cifar10_test_acc", **AUTHORS}, "_authors"),
            Step(
                *K1000, {"label": "cifar10_test_acc", **AUTHORS, "num_generated": 1000}, "_authors"
            ),
            Step(
                "+ the 12-epoch label",
                f"the authors' NATS label ({HP12})",
                {"label": HP12, **AUTHORS, "num_generated": 1000},
                "_authors",
                "needs the official NATS-Bench files (`gnn2gnn data convert`, then "
                f"`--set label={HP12}`): the shared table has 200-epoch labels only",
            ),
        ),
        {"table": 5, "benchmark": "natsbench", "eval_dataset": "cifar10"},
        0,
    ),
}
DEFAULTS = {"protocol": "clean", "num_generated": 10000}


def _select(trials: pd.DataFrame, want: dict) -> pd.DataFrame:
    keep = trials["status"] == "ok"
    for key, value in {**DEFAULTS, **want}.items():
        if key not in trials:
            return trials.iloc[:0]
        keep &= trials[key] == value
    return trials[keep]


def _fmt(mean: float, half: float, n: int) -> str:
    if math.isnan(mean):
        return "missing"
    return f"{mean:.2f}" + ("" if math.isnan(half) else f" ± {half:.2f}") + f" (n={n})"


def gap_frame(
    trials: pd.DataFrame, spec: Decomposition, refs: pd.DataFrame | None = None
) -> pd.DataFrame:
    """The decomposition's rows (see the module docstring): per metric a display string
    with the change from the row above, and ``<metric>_mean`` for readers of the CSV; then
    the published row, with what is left; then the structure reference rows under the
    authors' semantics (``refs``: the reference parts of the trials)."""
    rows, last = [], {}
    for step in spec.steps:
        chosen = _select(trials, step.want)
        row = {"row": step.row, "adds": step.adds, "seeds": len(chosen)}
        for m, title in METRICS.items():
            col = f"{m}{step.suffix}"
            values = chosen[col] if col in chosen else None
            if values is not None and step.full_labels and m.startswith("top"):
                known = chosen["n_known_authors"]  # a seed with no known cell: no estimate
                values = (values * chosen["n_matched_authors"] / known.where(known > 0)).dropna()
            mean, half, n = (
                mean_ci(values.to_numpy()) if values is not None else (math.nan, math.nan, 0)
            )
            text = _fmt(mean, half, n) if len(chosen) or not step.missing else "not run"
            if m in last and not math.isnan(mean) and not math.isnan(last[m]):
                text += f" [{mean - last[m]:+.2f}]"
            row[title], row[f"{m}_mean"] = text, mean
            if not math.isnan(mean):
                last[m] = mean
        if not len(chosen) and step.missing:
            row["adds"] += f": {step.missing}"
        rows.append(row)
    published = _published(spec.published)
    row = {"row": "published", "adds": f"the paper (Table {spec.published['table']})", "seeds": ""}
    for m, title in METRICS.items():
        value = published.get(m, math.nan)
        gap = (
            ""
            if math.isnan(last.get(m, math.nan)) or math.isnan(value)
            else f" [{value - last[m]:+.2f}]"
        )
        row[title] = "—" if math.isnan(value) else f"{value:.2f}{gap}"
        row[f"{m}_mean"] = value
    rows.append(row)
    if refs is not None and len(refs):
        for name, title in STRUCTURE_TITLES.items():
            ref = refs[refs["reference"] == name]
            if not len(ref):
                continue
            op = (
                f" ({ref['op'].iloc[0]})"
                if "op" in ref and isinstance(ref["op"].iloc[0], str)
                else ""
            )
            row = {"row": f"{title}{op}", "adds": "the authors' semantics", "seeds": len(ref)}
            for m, t in METRICS.items():
                col = f"{m}_authors"
                mean, half, n = (
                    mean_ci(ref[col].to_numpy()) if col in ref else (math.nan, math.nan, 0)
                )
                row[t], row[f"{m}_mean"] = _fmt(mean, half, n), mean
            rows.append(row)
    return pd.DataFrame(rows)


def _published(where: dict) -> dict[str, float]:
    frame = published(where["table"])
    keep = pd.Series(True, index=frame.index)
    for key, value in where.items():
        if key != "table":
            keep &= frame[key] == value
    row = frame[keep]
    return {m: float(row[m].iloc[0]) for m in METRICS if m in row and len(row)}


def gap_tables(results) -> list[tuple[str, pd.DataFrame, str]]:
    """(sweep, frame, caption) of the gap decomposition of each gap sweep under
    ``results`` (:data:`SWEEPS`)."""
    out = []
    for folder, trials in experiment_sweeps(results, "gnn2gnn"):
        sweep = str(trials["sweep"].iloc[0]) if "sweep" in trials and len(trials) else folder.name
        spec = SWEEPS.get(sweep)
        if spec is None:
            continue
        chosen = _select(trials, spec.steps[spec.reference_step].want)
        refs = read_part(folder, "reference", set(chosen["trial_id"]))
        profile = ", ".join(sorted({str(v) for v in trials.get("profile", pd.Series()).dropna()}))
        caption = (
            f"Gap decomposition, GNN2GNN on {spec.benchmark} at its defaults: each row adds one "
            "factor to the row above; in brackets, what it changes (the published row: what "
            "is left). Mean ± 95% Student-t CI over seeds (n); Top-N and Acc of the clean rows "
            "over known cells; the authors' rows divide Top-N by all K generated cells and "
            "average Acc_n and Acc over matched cells with a label "
            f"(analysis.gnn2gnn.gap). Sweep `{sweep}`, profile {profile or '?'}; "
            f"results fingerprint {fingerprint(folder)}."
        )
        out.append((sweep, gap_frame(trials, spec, refs), caption))
    return out


def _title(sweep: str) -> str:
    return f"Gap decomposition ({SWEEPS[sweep].benchmark}, GNN2GNN)"


def write_gap(results, out: Path, formats: tuple[str, ...] = FORMATS) -> list[Path]:
    written = []
    for sweep, frame, caption in gap_tables(results):
        stem = Path(out) / f"gap_decomposition_{SWEEPS[sweep].benchmark}"
        written += write_frame(frame, stem, formats, caption, _title(sweep))
    return written


def gap_sections(results) -> list[str]:
    """The report's sections: each table itself, inline."""
    lines = []
    for sweep, frame, caption in gap_tables(results):
        lines += [markdown(frame, caption, _title(sweep)).replace("### ", "## ", 1), ""]
    return lines
