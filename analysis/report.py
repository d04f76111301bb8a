"""Tables, figures and one Markdown report for a results folder, from the analysis of every
paper with sweeps in it. Each paper's analysis is a module (an entry point of the
``gnn2gnn.analysis`` group, e.g. :mod:`analysis.gnn2gnn`) that gives ``write_tables(results,
out, formats)``, ``write_figures(results, out)`` and ``report_sections(results, written)``."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from analysis.render import FORMATS
from pipeline.plugins import load_group
from pipeline.store.io import write_text
from pipeline.store.location import Location

GROUP = "gnn2gnn.analysis"


@cache
def papers() -> dict:
    """Name -> analysis module, in name order (loaded once per process)."""
    return load_group(GROUP, "analysis")


def write_tables(results, out: Path, formats: tuple[str, ...] = FORMATS) -> list[Path]:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for paper in papers().values():
        written += paper.write_tables(results, out, formats) or []
    return written


def write_figures(results, out: Path) -> list[Path]:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for paper in papers().values():
        written += paper.write_figures(results, out) or []
    return written


def write_report(results, out: Path | None = None) -> Path:
    """Tables (md, csv, tex), figures and ``report.md`` under ``out`` (default
    ``<results>/report`` for a local folder, ``./report`` for a URI): each paper's
    sections, then every figure. ``results``: a folder or a URI (see pipeline.store.results)."""
    if out is None:
        where = Location.of(results)
        out = Path(where) / "report" if where.is_local else Path("report")
    out = Path(out)
    tables = write_tables(results, out)
    figures = write_figures(results, out)
    lines = [f"# Reproduction report for `{results}`", ""]
    for paper in papers().values():
        lines += paper.report_sections(results, tables) or []
    if figures:
        lines += ["## Figures", ""] + [f"![{p.stem}]({p.name})" for p in figures] + [""]
    report = out / "report.md"
    write_text("\n".join(lines), report)
    return report
