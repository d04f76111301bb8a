"""``gnn2gnn tables | figures | report`` (and ``python -m analysis ...``): every paper's
analysis of a results folder."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from analysis.report import FORMATS, write_figures, write_report, write_tables
from pipeline.errors import UserError
from pipeline.store.location import Location
from pipeline.store.results import sweep_folders


def _results_folder(path: str) -> Location:
    folder = Location.of(path)
    if not sweep_folders(folder):
        raise UserError(f"{folder}: no sweep results (expected <sweep>/trials/ inside)")
    return folder


def _out(args: argparse.Namespace, results: Location) -> Path:
    """--out, else RESULTS/report for a local folder, ./report for results on a URI."""
    if args.out:
        return Path(args.out)
    return Path(results.path) / "report" if results.is_local else Path("report")


def cmd_tables(args: argparse.Namespace) -> int:
    formats = tuple(f.strip() for f in args.format.split(",") if f.strip())
    bad = set(formats) - set(FORMATS)
    if bad:
        raise UserError(f"--format: unknown {sorted(bad)}; expected md, csv, tex")
    results = _results_folder(args.results)
    for path in write_tables(results, _out(args, results), formats):
        print(path)
    return 0


def cmd_figures(args: argparse.Namespace) -> int:
    results = _results_folder(args.results)
    for path in write_figures(results, _out(args, results)):
        print(path)
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    results = _results_folder(args.results)
    print(write_report(results, _out(args, results)))
    return 0


def add_parsers(sub) -> None:
    for name, func, text in (
        ("tables", cmd_tables, "the papers' tables from a results folder (md, csv, tex)"),
        ("figures", cmd_figures, "PNG figures from a results folder"),
        ("report", cmd_report, "tables + figures + one Markdown report"),
    ):
        p = sub.add_parser(name, help=text)
        p.add_argument("--results", default="results", help="results folder or URI")
        p.add_argument(
            "--out",
            default=None,
            help="output folder (default RESULTS/report; ./report for results on a URI)",
        )
        if name == "tables":
            p.add_argument("--format", default=",".join(FORMATS))
        p.set_defaults(func=func)


def main(argv: list[str] | None = None) -> int:
    """``python -m analysis``: the analysis commands alone (errors as one line, exit 2)."""
    parser = argparse.ArgumentParser(
        prog="python -m analysis", description="tables, figures and the report from results"
    )
    add_parsers(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except UserError as exc:
        print(f"analysis: error: {exc}", file=sys.stderr)
        return 2
