"""``gnn2gnn train <experiment> [--field value ...]``: one trial, options from its Config.

``gnn2gnn train --model M ...`` (no experiment named) is the older form: the experiment
whose Config lists model M, or the one that claims the old form when no ``--model`` is
given (GNN2GNN), runs. Progress goes to stderr (one line an epoch), also with ``--json``;
stdout holds the result only.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from pipeline.cli.common import log, print_result
from pipeline.cli.flags import add_config_options, config_from_args
from pipeline.errors import UserError
from pipeline.experiments import experiments

PROGRESS_SKIP = ("epoch_seconds",)


def _progress_line(row: dict) -> str:
    cells = []
    for k, v in row.items():
        if k in PROGRESS_SKIP or not isinstance(v, int | float):
            continue
        cells.append(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}")
    return "  ".join(cells[:14])


def cmd_train(args: argparse.Namespace) -> int:
    from pipeline.io import write_trial_outputs

    exp = experiments()[args.experiment]
    config = config_from_args(args, args.config_keys, exp.config)
    exp.make_config(config, "command line")  # errors name the option before anything loads

    def report(row: dict) -> None:
        log(_progress_line(row))

    result = exp.run_trial(config, reporter=report, progress=not args.json)
    summary = {**result.info, **result.metrics}
    if args.out:
        summary["out"] = str(write_trial_outputs(Path(args.out), config, result))
    print_result(summary, args.json)
    return 0


def add_parsers(sub) -> None:
    train = sub.add_parser(
        "train",
        help="train one trial of an experiment and report its metrics",
        description="gnn2gnn train EXPERIMENT --help lists the experiment's options.",
    )
    tsub = train.add_subparsers(dest="experiment", required=True, metavar="EXPERIMENT")
    for name, exp in experiments().items():
        p = tsub.add_parser(name, help=exp.description or name, description=exp.description)
        keys = add_config_options(p, exp.config, exp.profiles)
        p.add_argument("--out", default=None, help="folder for generated cells, epochs, model")
        p.add_argument("--json", action="store_true", help="print the final metrics as one JSON")
        p.set_defaults(func=cmd_train, config_keys=keys)


def old_form(argv: list[str]) -> list[str]:
    """``train --model M ...`` -> ``train EXPERIMENT --model M ...`` (the older form)."""
    if len(argv) < 1 or argv[0] != "train":
        return argv
    if len(argv) > 1 and not argv[1].startswith("-"):
        return argv  # an experiment is named
    if any(a in ("-h", "--help") for a in argv[1:2]):
        return argv
    model = None
    for i, a in enumerate(argv):
        if a == "--model" and i + 1 < len(argv):
            model = argv[i + 1]
        elif a.startswith("--model="):
            model = a.split("=", 1)[1]
    known = experiments()
    if model is not None:
        owners = [n for n, e in known.items() if model in e.models()]
        if not owners:
            models = sorted({m for e in known.values() for m in e.models()})
            raise UserError(f"--model {model!r}: no experiment has it; models: {models}")
    else:
        owners = [n for n, e in known.items() if e.claims_old_train_form]
        if not owners:
            raise UserError(f"name an experiment: gnn2gnn train EXPERIMENT; one of {list(known)}")
    return ["train", owners[0], *argv[1:]]
