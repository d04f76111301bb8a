"""One Markdown page linking the tables and figures, with per-table agreement counts."""

from __future__ import annotations

import math
from pathlib import Path

from analysis.figures import write_figures
from analysis.tables import METRICS, BuiltTable, sweep_tables, write_tables


def agreement(t: BuiltTable) -> dict[str, int]:
    """Cells whose published value lies within the reproduced 95% interval, above it
    (reproduced lower) or below it (reproduced higher); cells without an interval (one seed)
    or without a reproduced or published value are counted apart."""
    counts = {"within": 0, "paper_above": 0, "paper_below": 0, "no_interval": 0, "missing": 0}
    for _, row in t.rows.iterrows():
        for m in METRICS:
            mean, half, paper = row[f"{m}_mean"], row[f"{m}_ci"], row[f"{m}_paper"]
            if math.isnan(paper):
                continue
            if math.isnan(mean):
                counts["missing"] += 1
            elif math.isnan(half):
                counts["no_interval"] += 1
            elif paper > mean + half:
                counts["paper_above"] += 1
            elif paper < mean - half:
                counts["paper_below"] += 1
            else:
                counts["within"] += 1
    return counts


def write_report(results: Path, out: Path | None = None) -> Path:
    """Tables (md, csv, tex), figures and ``report.md`` under ``out`` (default results/report)."""
    results = Path(results)
    out = Path(out) if out else results / "report"
    tables_written = write_tables(results, out)
    figures = write_figures(results, out)
    lines = [f"# Reproduction report for `{results}`", ""]
    for t in sweep_tables(results):
        c = agreement(t)
        lines += [
            f"## Table {t.spec.number} (sweep `{t.sweep}`)",
            "",
            t.caption,
            "",
            f"Published values within the reproduced 95% interval: {c['within']}; "
            f"published above: {c['paper_above']}; published below: {c['paper_below']}; "
            f"one seed only (no interval): {c['no_interval']}; missing: {c['missing']}.",
            "",
        ]
        for p in tables_written:
            if p.name.startswith(f"table{t.spec.number}_{t.sweep}."):
                lines.append(f"- [{p.name}]({p.name})")
        lines.append("")
    infonas = [p for p in tables_written if p.name.startswith("infonas_") and p.suffix == ".md"]
    if infonas:
        lines += ["## Info-NAS (IO-embedding sweeps)", ""]
        for p in infonas:
            lines += [p.read_text(), f"([{p.name}]({p.name}), with .csv and .tex beside it)", ""]
    if figures:
        lines += ["## Figures", ""] + [f"![{p.stem}]({p.name})" for p in figures] + [""]
    report = out / "report.md"
    report.write_text("\n".join(lines))
    return report
