"""The ``gnn2gnn`` command line, built from the installed experiments and command groups.

``train`` (one trial of an experiment; its options come from the experiment's Config),
``sweep`` and ``ui`` (Ray Tune sweeps, MLflow UI) and ``reproduce`` (a study file's every
sweep as one queue, then the report) are the core's; every entry point of the
``gnn2gnn.commands`` group (``add_parsers(subparsers)``) adds more: ``data`` (benchmark
tables), ``tables``/``figures``/``report`` (the analysis), the papers' own commands. Errors a
user can cause (:class:`UserError`) print as one line without a traceback and exit with
status 2.
"""

from __future__ import annotations

import argparse
import sys

from pipeline.alloc import keep_large_allocations  # noqa: E402
from pipeline.cli import reproduce, sweep, train  # noqa: E402
from pipeline.errors import UserError  # noqa: E402
from pipeline.plugins import load_group  # noqa: E402

COMMANDS = "gnn2gnn.commands"


def command_groups() -> dict:
    """Name -> ``add_parsers(subparsers)`` of every ``gnn2gnn.commands`` entry point."""
    return load_group(COMMANDS, "commands")


class Parser(argparse.ArgumentParser):
    """argparse whose errors (an unknown option, a bad choice, a missing argument) are
    :class:`UserError`: one line and exit 2 like every other bad input, not a usage dump.
    Subcommands' parsers are of this class too (argparse makes them of the parent's)."""

    def error(self, message: str):
        raise UserError(f"{self.prog}: {message} (see {self.prog} --help)")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="gnn2gnn", description="sweeps of the installed experiments, their trials and analysis"
    )
    sub = parser.add_subparsers(dest="command", required=True)
    train.add_parsers(sub)
    sweep.add_parsers(sub)
    reproduce.add_parsers(sub)
    for _, add in sorted(command_groups().items()):
        add(sub)
    return parser


def main(argv: list[str] | None = None, parser: argparse.ArgumentParser | None = None) -> int:
    """``gnn2gnn ARGV``: the command's exit status (2 and one line for a UserError).
    ``parser``: one :func:`build_parser` made, for a caller that runs many commands."""
    argv = list(sys.argv[1:] if argv is None else argv)
    keep_large_allocations()
    try:
        args = (parser or build_parser()).parse_args(train.old_form(argv))
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
