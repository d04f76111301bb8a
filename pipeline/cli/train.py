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
from pipeline.experiment import experiments, get_experiment

PROGRESS_SKIP = ("epoch_seconds",)


def _progress_line(row: dict) -> str:
    cells = []
    for k, v in row.items():
        if k in PROGRESS_SKIP or not isinstance(v, int | float):
            continue
        cells.append(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}")
    return "  ".join(cells[:14])


def trial_config(args: argparse.Namespace):
    """(experiment, the trial config as given, its validated Config) of ``gnn2gnn train``;
    a UserError naming the option before anything is loaded or trained."""
    exp = get_experiment(args.experiment)
    config = config_from_args(args, args.config_keys, exp.config)
    return exp, config, exp.make_config(config, "command line")


def cmd_train(args: argparse.Namespace) -> int:
    from pipeline.store.io import write_trial_outputs

    exp, config, typed = trial_config(args)

    def given(cfg: dict, cfg_typed):
        """What the experiment's functions get: the Config validated here, or the dict."""
        return cfg_typed if exp.takes_config else cfg

    def report(row: dict) -> None:
        log(_progress_line(row))

    if args.seeds is None:
        result = exp.run_trial(given(config, typed), reporter=report, progress=not args.json)
        summary = {**result.info, **result.metrics}
        if args.out:
            summary["out"] = str(write_trial_outputs(Path(args.out), config, result))
        print_result(summary, args.json)
        return 0
    seeds = parse_seeds(args.seeds)
    if "seed" in config:
        raise UserError("give either --seed or --seeds, not both")
    configs = [{**config, "seed": s} for s in seeds]
    handed = [given(cfg, exp.make_config(cfg, "command line")) for cfg in configs]
    groups = exp.pack_groups(handed, len(configs))
    for group in groups:
        members = [configs[i] for i in group]
        inputs = [handed[i] for i in group]
        if len(members) > 1:
            log(f"training seeds {[c['seed'] for c in members]} packed")

            def reporter_for(seed: int):
                return lambda row: log(f"seed={seed}  " + _progress_line(row))

            reporters = [reporter_for(c["seed"]) for c in members]
            results = exp.run_packed(inputs, reporters, progress=not args.json)
        else:
            if len(configs) > 1:
                log(f"training seed {members[0]['seed']} (cannot be packed)")
            results = [exp.run_trial(inputs[0], reporter=report, progress=not args.json)]
        for cfg, result in zip(members, results, strict=True):
            summary = {"seed": cfg["seed"], **result.info, **result.metrics}
            if args.out:
                out = Path(args.out) / f"seed-{cfg['seed']}"
                summary["out"] = str(write_trial_outputs(out, cfg, result))
            print_result(summary, args.json)
    return 0


def parse_seeds(text: str) -> list[int]:
    """``--seeds 0,1,2,3`` (or ``0-3``) -> [0, 1, 2, 3]; distinct non-negative integers."""
    seeds: list[int] = []
    try:
        for part in text.split(","):
            lo, sep, hi = part.strip().partition("-")
            seeds += list(range(int(lo), int(hi) + 1)) if sep else [int(lo)]
    except ValueError:
        raise UserError(f"--seeds {text!r}: give seeds as 0,1,2,3 or 0-3") from None
    if not seeds or min(seeds) < 0 or len(set(seeds)) != len(seeds):
        raise UserError(f"--seeds {text!r}: give distinct non-negative seeds, e.g. 0,1,2,3")
    return seeds


def add_parsers(sub) -> None:
    train = sub.add_parser(
        "train",
        help="train one trial of an experiment and report its metrics",
        description="gnn2gnn train EXPERIMENT --help lists the experiment's options.",
    )
    tsub = train.add_subparsers(dest="experiment", required=True, metavar="EXPERIMENT")
    for name, exp in experiments().items():
        p = tsub.add_parser(
            name,
            aliases=list(exp.aliases),
            help=exp.description or name,
            description=exp.description,
        )
        keys = add_config_options(p, exp.config, exp.profiles)
        p.add_argument("--out", default=None, help="folder for generated cells, epochs, model")
        p.add_argument("--json", action="store_true", help="print the final metrics as one JSON")
        p.add_argument(
            "--seeds",
            default=None,
            metavar="0,1,2,3",
            help="train these seeds (packed as one batched model where the experiment can: "
            "GNN2GNN) and print one result (one JSON line) per seed; --out gets seed-N/",
        )
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
