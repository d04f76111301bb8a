"""The gap decomposition: from the clean protocol to the published NAS-Bench-101 GNN2GNN
numbers, one factor at a time, from the trials of the ``gap`` sweep (``sweeps/gap.yaml``).

Each row adds one factor to the row above and says what it costs: the change of every
metric from the row above. The rows, and the trials and columns each reads:

======================================  ==============================================
row                                     trials (all GNN2GNN at its defaults) / columns
======================================  ==============================================
clean                                   protocol clean, label val_acc_108_r1, K = 10,000
                                        / the clean columns (Top-N, Acc over known cells)
+ the covering label                    label val_acc_108_mean / the clean columns
+ the authors' metric semantics         the same trials / the ``<metric>_authors`` columns
+ the authors' leak                     protocol authors / ``<metric>_authors``
+ K = 1,000                             protocol authors, K = 1,000 / ``<metric>_authors``
published                               Table 3, GNN2GNN
======================================  ==============================================

Each value is the mean over seeds with a 95% Student-t interval and the number of seeds.
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from analysis.gnn2gnn.tables import published
from analysis.render import FORMATS, markdown, write_frame
from analysis.stats import mean_ci
from pipeline.store.results import experiment_sweeps, fingerprint

SWEEP = "gap"
METRICS = {
    "top5": "Top-5",
    "top10": "Top-10",
    "top50": "Top-50",
    "acc_n": "Acc_n",
    "mean_acc": "Acc",
    "novelty": "Novelty",
}
# (row, what it adds, the trials' config, the column suffix it reads)
STEPS = (
    ("clean", "the project's clean protocol and metrics", {"label": "val_acc_108_r1"}, ""),
    (
        "+ the covering label",
        "label: mean of every seen 108-epoch repeat",
        {"label": "val_acc_108_mean"},
        "",
    ),
    (
        "+ the authors' metric semantics",
        "raw-encoding match, no-path cells kept, Top-N over all K",
        {"label": "val_acc_108_mean"},
        "_authors",
    ),
    (
        "+ the authors' leak",
        "valuer labels and kept epoch from the whole table",
        {"label": "val_acc_108_mean", "protocol": "authors"},
        "_authors",
    ),
    (
        "+ K = 1,000",
        "the authors' number of generated cells",
        {"label": "val_acc_108_mean", "protocol": "authors", "num_generated": 1000},
        "_authors",
    ),
)
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


def gap_frame(trials: pd.DataFrame, published: dict[str, float]) -> pd.DataFrame:
    """The decomposition's rows (see the module docstring): per metric a display string
    with the change from the row above, and ``<metric>_mean`` for readers of the CSV."""
    rows, last = [], {}
    for name, adds, want, suffix in STEPS:
        chosen = _select(trials, want)
        row = {"row": name, "adds": adds, "seeds": len(chosen)}
        for m, title in METRICS.items():
            col = f"{m}{suffix}"
            mean, half, n = (
                mean_ci(chosen[col].to_numpy()) if col in chosen else (math.nan, math.nan, 0)
            )
            text = _fmt(mean, half, n)
            if m in last and not math.isnan(mean) and not math.isnan(last[m]):
                text += f" [{mean - last[m]:+.2f}]"
            row[title], row[f"{m}_mean"] = text, mean
            last[m] = mean
        rows.append(row)
    row = {"row": "published", "adds": "the paper (Table 3, GNN2GNN)", "seeds": ""}
    for m, title in METRICS.items():
        value = published.get(m, math.nan)
        gap = "" if math.isnan(last.get(m, math.nan)) else f" [{value - last[m]:+.2f}]"
        row[title], row[f"{m}_mean"] = f"{value:.2f}{gap}", value
    rows.append(row)
    return pd.DataFrame(rows)


def _published() -> dict[str, float]:
    frame = published(3)
    row = frame[(frame["model"] == "gnn2gnn") & (frame["benchmark"] == "nasbench101")]
    return {m: float(row[m].iloc[0]) for m in METRICS if m in row and len(row)}


def gap_tables(results) -> list[tuple[pd.DataFrame, str]]:
    """(frame, caption) of the gap decomposition of each ``gap`` sweep under ``results``."""
    out = []
    for folder, trials in experiment_sweeps(results, "gnn2gnn"):
        sweep = str(trials["sweep"].iloc[0]) if "sweep" in trials and len(trials) else ""
        if (sweep or folder.name) != SWEEP:
            continue
        profile = ", ".join(sorted({str(v) for v in trials.get("profile", pd.Series()).dropna()}))
        caption = (
            "Gap decomposition, GNN2GNN on NAS-Bench-101 at its defaults: each row adds one "
            "factor to the row above; in brackets, what it changes (the published row: what "
            "is left). Mean ± 95% Student-t CI over seeds (n); Top-N and Acc of the clean rows "
            "over known cells, of the authors' rows over all K generated cells "
            f"(analysis.gnn2gnn.gap). Sweep `{sweep or folder.name}`, profile {profile or '?'}; "
            f"results fingerprint {fingerprint(folder)}."
        )
        out.append((gap_frame(trials, _published()), caption))
    return out


TITLE = "Gap decomposition (NAS-Bench-101, GNN2GNN)"


def write_gap(results, out: Path, formats: tuple[str, ...] = FORMATS) -> list[Path]:
    written = []
    for frame, caption in gap_tables(results):
        written += write_frame(frame, Path(out) / "gap_decomposition", formats, caption, TITLE)
    return written


def gap_sections(results) -> list[str]:
    """The report's section: the table itself, inline."""
    lines = []
    for frame, caption in gap_tables(results):
        lines += [markdown(frame, caption, TITLE).replace("### ", "## ", 1), ""]
    return lines
