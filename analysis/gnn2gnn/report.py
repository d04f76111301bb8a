"""The GNN2GNN sections of the report: per table, agreement counts and links."""

from __future__ import annotations

import math
from pathlib import Path

from analysis.gnn2gnn.gap import gap_sections
from analysis.gnn2gnn.tables import METRICS, BuiltTable, sweep_tables


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


def report_sections(results: Path, written: list[Path]) -> list[str]:
    """The GNN2GNN part of ``report.md``: per table, its caption, how many published
    values fall within the reproduced intervals, and links to its files."""
    lines = []
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
        for p in written:
            if p.name.startswith(f"table{t.spec.number}_{t.sweep}."):
                lines.append(f"- [{p.name}]({p.name})")
        lines.append("")
    return lines + gap_sections(results)
