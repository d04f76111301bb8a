"""The ``gnn2gnn`` command line, built from the installed experiments.

``data`` (benchmark tables), ``train`` (one trial of an experiment; its options come from
the experiment's Config), ``sweep`` and ``ui`` (Ray Tune sweeps, MLflow UI), ``tables``,
``figures`` and ``report`` (every experiment's analysis), plus the commands experiments add
(Info-NAS: ``pretrain``, ``evaluate``). Errors a user can cause (:class:`UserError`) print
as one line without a traceback and exit with status 2.
"""

from __future__ import annotations

import argparse
import os
import sys

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

from pipeline.alloc import keep_large_allocations  # noqa: E402
from pipeline.cli import analysis, data, sweep, train  # noqa: E402
from pipeline.errors import UserError  # noqa: E402
from pipeline.experiments import experiments  # noqa: E402


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gnn2gnn", description="GNN2GNN / Info-NAS reproduction pipeline"
    )
    sub = parser.add_subparsers(dest="command", required=True)
    data.add_parsers(sub)
    train.add_parsers(sub)
    for exp in experiments().values():
        exp.call("add_commands", sub)
    sweep.add_parsers(sub)
    analysis.add_parsers(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    keep_large_allocations()
    try:
        args = build_parser().parse_args(train.old_form(argv))
        return int(args.func(args) or 0)
    except UserError as exc:
        print(f"gnn2gnn: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("gnn2gnn: interrupted", file=sys.stderr)
        return 130


__all__ = ["UserError", "build_parser", "main"]

if __name__ == "__main__":
    sys.exit(main())
