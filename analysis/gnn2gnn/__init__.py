"""GNN2GNN's tables (1-8, with the published values and reference rows), figures and report
sections, from the results of its sweeps: ``tables`` (building each table), ``render``
(md/csv/tex), ``figures``, ``report``; ``published.csv`` holds the paper's values."""

from __future__ import annotations

from pathlib import Path

from analysis.render import FORMATS

EXPERIMENT = "gnn2gnn"  # the experiment whose sweeps these read


def write_tables(results, out: Path, formats: tuple[str, ...] = FORMATS) -> list[Path]:
    from analysis.gnn2gnn.render import write_tables as write

    return write(results, out, formats)


def write_figures(results, out: Path) -> list[Path]:
    from analysis.gnn2gnn.figures import write_figures as write

    return write(results, out)


def report_sections(results, written: list[Path]) -> list[str]:
    from analysis.gnn2gnn.report import report_sections as sections

    return sections(results, written)


def headlines(results) -> list[str]:
    from analysis.gnn2gnn.report import headlines as lines

    return lines(results)
