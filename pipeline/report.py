"""Tables, figures and one Markdown report for a results folder, from every experiment
that has sweeps in it (each experiment writes its own; nothing here knows a paper)."""

from __future__ import annotations

from pathlib import Path

from pipeline.experiments import experiments
from pipeline.io import write_text

FORMATS = ("md", "csv", "tex")


def write_tables(results: Path, out: Path, formats: tuple[str, ...] = FORMATS) -> list[Path]:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for exp in experiments().values():
        written += exp.call("write_tables", Path(results), out, formats) or []
    return written


def write_figures(results: Path, out: Path) -> list[Path]:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for exp in experiments().values():
        written += exp.call("write_figures", Path(results), out) or []
    return written


def write_report(results: Path, out: Path | None = None) -> Path:
    """Tables (md, csv, tex), figures and ``report.md`` under ``out`` (default
    ``<results>/report``): each experiment's sections, then every figure."""
    results = Path(results)
    out = Path(out) if out else results / "report"
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
