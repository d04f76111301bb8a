"""Tables, figures and one Markdown report for a results folder, from every experiment
that has sweeps in it (each experiment writes its own; nothing here knows a paper)."""

from __future__ import annotations

from pathlib import Path

from pipeline.experiments import experiments
from pipeline.io import write_text
from pipeline.storage import Location

FORMATS = ("md", "csv", "tex")


def write_tables(results, out: Path, formats: tuple[str, ...] = FORMATS) -> list[Path]:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for exp in experiments().values():
        written += exp.call("write_tables", results, out, formats) or []
    return written


def write_figures(results, out: Path) -> list[Path]:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for exp in experiments().values():
        written += exp.call("write_figures", results, out) or []
    return written


def write_report(results, out: Path | None = None) -> Path:
    """Tables (md, csv, tex), figures and ``report.md`` under ``out`` (default
    ``<results>/report`` for a local folder, ``./report`` for a URI): each experiment's
    sections, then every figure. ``results``: a folder or a URI (see pipeline.results)."""
    if out is None:
        where = Location.of(results)
        out = Path(where) / "report" if where.is_local else Path("report")
    out = Path(out)
    tables = write_tables(results, out)
    figures = write_figures(results, out)
    lines = [f"# Reproduction report for `{results}`", ""]
    for exp in experiments().values():
        lines += exp.call("report", results, tables) or []
    if figures:
        lines += ["## Figures", ""] + [f"![{p.stem}]({p.name})" for p in figures] + [""]
    report = out / "report.md"
    write_text("\n".join(lines), report)
    return report
