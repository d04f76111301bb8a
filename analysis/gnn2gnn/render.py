"""A GNN2GNN table (:class:`~analysis.gnn2gnn.tables.BuiltTable`) as Markdown, CSV and
LaTeX: the best reproduced value per column in bold, published values in brackets, the
reference rows last."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from analysis.gnn2gnn.gap import write_gap
from analysis.gnn2gnn.tables import (
    AUTHORS_METRICS,
    METRIC_TITLES,
    METRICS,
    PAPER_COLUMN,
    REFERENCE_KEYS,
    REFERENCE_TITLES,
    STRUCTURE_KEYS,
    STRUCTURE_TITLES,
    BuiltTable,
    sweep_tables,
)
from analysis.render import FORMATS, tex_escape, write_formats


def _best(rows: pd.DataFrame, metric: str) -> float:
    vals = rows[f"{metric}_mean"].dropna()
    return float(vals.max()) if len(vals) else math.nan


def _cell(row, m: str, best: float, bold: tuple[str, str]) -> str:
    mean, half, n, paper = row[f"{m}_mean"], row[f"{m}_ci"], row[f"{m}_n"], row[f"{m}_paper"]
    if math.isnan(mean):  # an authors' column a clean trial did not record (metrics: clean)
        text = "not recorded" if m in AUTHORS_METRICS and row["status"] == "ok" else "missing"
    else:
        text = f"{mean:.2f}" + ("" if math.isnan(half) else f" ± {half:.2f}") + f" (n={n})"
        if mean == best:
            text = f"{bold[0]}{text}{bold[1]}"
    if m not in PAPER_COLUMN:
        return text
    ref = "—" if math.isnan(paper) else f"{paper:.2f}"
    return f"{text} [{ref}]"


def _fmt_key(v) -> str:
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return f"{v:g}" if isinstance(v, float) else str(v)


def _shown_metrics(t: BuiltTable) -> list[str]:
    return [
        m
        for m in (*METRICS, *AUTHORS_METRICS)
        if f"{m}_mean" in t.rows
        and (t.rows[f"{m}_paper"].notna().any() or t.rows[f"{m}_mean"].notna().any())
        or f"{m}_mean" in t.references
        and t.references[f"{m}_mean"].notna().any()
    ]


def _reference_cells(t: BuiltTable, metrics: list[str]) -> list[list[str]]:
    """Rendered reference rows: keys (group values, '—' elsewhere), label, metric means."""
    out = []
    for _, ref in t.references.iterrows():
        keys = [
            _fmt_key(ref[k])
            if k in (*REFERENCE_KEYS, *STRUCTURE_KEYS) and k in ref and ref[k] == ref[k]
            else "—"
            for k in t.spec.keys
        ]
        titles = REFERENCE_TITLES | STRUCTURE_TITLES
        label = titles.get(ref["reference"], str(ref["reference"]))
        if isinstance(ref.get("op"), str):
            label += f" ({ref['op']})"
        vals = []
        for m in metrics:
            v = ref.get(f"{m}_mean", math.nan)
            vals.append("—" if v != v else f"{v:.2f}")
        out.append([*keys, label, "", *vals])
    return out


def to_markdown(t: BuiltTable) -> str:
    metrics = _shown_metrics(t)
    head = [*t.spec.keys, "seeds", "known", *(METRIC_TITLES[m] for m in metrics)]
    lines = [f"_{t.caption}_", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    best = {m: _best(t.rows, m) for m in metrics}
    for _, row in t.rows.iterrows():
        seeds = str(row["seeds"]) + (f" ({row['failed']} failed)" if row["failed"] else "")
        cells = [_fmt_key(row[k]) for k in t.spec.keys] + [seeds, str(row["known"])]
        cells += [_cell(row, m, best[m], ("**", "**")) for m in metrics]
        lines.append("| " + " | ".join(cells) + " |")
    for cells in _reference_cells(t, metrics):
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def to_csv(t: BuiltTable, path: Path) -> None:
    """Trial rows then reference rows (``row_kind``: trial, uniform, copy_train)."""
    rows = t.rows.assign(row_kind="trial")
    if len(t.references):
        refs = t.references.rename(columns={"reference": "row_kind"})
        rows = pd.concat([rows, refs], ignore_index=True)
    rows.to_csv(path, index=False)


def to_latex(t: BuiltTable) -> str:
    metrics = _shown_metrics(t)
    cols = "l" * (len(t.spec.keys) + 2) + "r" * len(metrics)
    head = [*t.spec.keys, "seeds", "known", *(METRIC_TITLES[m] for m in metrics)]
    best = {m: _best(t.rows, m) for m in metrics}
    lines = [
        f"% {tex_escape(t.caption)}",
        f"\\begin{{tabular}}{{{cols}}}",
        r"\hline",
        " & ".join(tex_escape(h) for h in head) + r" \\",
        r"\hline",
    ]
    for _, row in t.rows.iterrows():
        cells = [tex_escape(_fmt_key(row[k])) for k in t.spec.keys]
        cells += [str(row["seeds"]), str(row["known"])]
        cells += [
            tex_escape(_cell(row, m, best[m], ("\x00", "\x01")))
            .replace("\x00", r"\textbf{")
            .replace("\x01", "}")
            for m in metrics
        ]
        lines.append(" & ".join(cells) + r" \\")
    refs = _reference_cells(t, metrics)
    if refs:
        lines.append(r"\hline")
    for cells in refs:
        lines.append(" & ".join(tex_escape(c) for c in cells) + r" \\")
    lines += [r"\hline", r"\end{tabular}"]
    return "\n".join(lines) + "\n"


def write_tables(results: Path, out: Path, formats: tuple[str, ...] = FORMATS) -> list[Path]:
    """Write each table in each format; returns the files written."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for t in sweep_tables(results):
        written += write_formats(
            out / f"table{t.spec.number}_{t.sweep}",
            formats,
            {
                "md": lambda p, t=t: p.write_text(to_markdown(t)),
                "csv": lambda p, t=t: to_csv(t, p),
                "tex": lambda p, t=t: p.write_text(to_latex(t)),
            },
        )
    return written + write_gap(results, out, formats)
