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


def _stat(row, metric: str) -> str:
    mean, half = row[f"{metric}_mean"], row[f"{metric}_ci"]
    if math.isnan(mean):
        return "-"
    return f"{mean:.1f}" if math.isnan(half) else f"{mean:.1f} ± {half:.1f}"


def headlines(results) -> list[str]:
    """The headline findings of the GNN2GNN tables under ``results``: Table 3's Top-10 per
    generator, Table 1's best row, and how many published values the intervals hold."""
    lines = []
    tables = sweep_tables(results)
    for t in tables:
        if t.spec.number == 3 and "model" in t.rows:
            rows = t.rows[t.rows.get("status", "ok") != "missing"] if "status" in t.rows else t.rows
            parts = [f"{r['model']} {_stat(r, 'top10')}" for _, r in rows.iterrows()]
            lines.append(
                f"Table 3 (`{t.sweep}`), Top-10 over known cells: " + ", ".join(parts) + "."
            )
        if t.spec.number == 1 and len(t.rows):
            best = t.rows.loc[t.rows["top10_mean"].fillna(-1).idxmax()]
            keys = ", ".join(f"{k} = {best[k]}" for k in t.spec.keys if k in best)
            lines.append(
                f"Table 1 (`{t.sweep}`): the best Top-10 row is {keys}: {_stat(best, 'top10')}."
            )
    within = total = 0
    for t in tables:
        c = agreement(t)
        within += c["within"]
        total += c["within"] + c["paper_above"] + c["paper_below"]
    if total:
        lines.append(
            f"Published values within the reproduced 95% intervals: {within} of {total} with an "
            "interval (Tables 1-5)."
        )
    return lines
