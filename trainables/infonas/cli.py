"""Info-NAS commands: ``gnn2gnn pretrain`` (train NAS-Bench-101 networks on CIFAR-10 and
build the IO-dataset) and ``gnn2gnn evaluate`` (prediction and search on a latent table)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from pipeline.cli.common import add_forward_credentials, log, print_result
from pipeline.config import PROFILES as PROFILES_NAMES
from pipeline.errors import UserError
from pipeline.store.location import Location
from trainables.infonas.config import default_io_data


def cmd_pretrain(args: argparse.Namespace) -> int:
    from trainables.infonas.pretrain import run_pretraining

    config = {
        "profile": args.profile,
        "train_networks": args.cells,
        "valid_networks": args.valid_cells,
        "epochs": args.epochs,
        "stem_channels": args.stem_channels,
        "seed": args.seed,
        "device": args.device,
        "precision": args.precision,
        "data_dir": args.data_dir,
    }
    config = {k: v for k, v in config.items() if v is not None}  # left out: the profile's
    folder = Location.of(args.results or default_io_data(args.profile))
    summary = run_pretraining(
        config,
        folder,
        address=args.address,
        log=log,
        io_dataset=not args.no_io_dataset,
        forward_credentials=args.forward_credentials,
    )
    print(json.dumps(summary))
    return 1 if summary["failed"] else 0


def add_pretrain_parser(sub) -> None:
    p = sub.add_parser(
        "pretrain",
        help="train NAS-Bench-101 networks on CIFAR-10 (Ray tasks) and build the IO-dataset",
    )
    p.add_argument("--profile", choices=PROFILES_NAMES, default="cpu")
    p.add_argument("--cells", type=int, default=None, help="training networks (paper: 608)")
    p.add_argument("--valid-cells", type=int, default=None, help="validation networks (77)")
    p.add_argument("--epochs", type=int, default=None, help="epochs a network (paper: 12)")
    p.add_argument("--stem-channels", type=int, default=None, help="paper: 128")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default=None)
    p.add_argument(
        "--precision",
        choices=["auto", "fp32", "bf16"],
        default=None,
        help="auto: bf16 autocast + channels_last on CUDA, fp32 on the CPU",
    )
    p.add_argument("--data-dir", default=None)
    p.add_argument("--address", default=None, help="Ray cluster address (default: embedded)")
    add_forward_credentials(p)
    p.add_argument(
        "--results",
        default=None,
        help="folder or URI, s3://... (default results/pretrain-PROFILE)",
    )
    p.add_argument("--no-io-dataset", action="store_true", help="skip writing io_dataset/")
    p.set_defaults(func=cmd_pretrain)


def cmd_evaluate(args: argparse.Namespace) -> int:
    """Prediction + search on any latent table (e.g. a trial's --out latent.parquet)."""
    import pandas as pd

    from pipeline.nas.benchmarks import load_benchmark
    from pipeline.store.io import atomic_write_parquet
    from trainables.infonas.config import PROFILES
    from trainables.infonas.evaluate import evaluate_latent

    path = Path(args.latent)
    if not path.is_file():
        raise UserError(f"{path}: no latent table (a trial's latent.parquet)")
    latent = pd.read_parquet(path)
    if "hash" not in latent or not any(c.startswith("z") for c in latent.columns):
        raise UserError(f"{path}: expected columns hash, z0, z1, ... (a latent table)")
    prof = PROFILES[args.profile]
    exclude: set[str] = set()
    if args.exclude:
        networks = Path(args.exclude) / "networks.parquet"
        if not networks.is_file():
            raise UserError(f"--exclude {args.exclude}: no networks.parquet (a pretraining folder)")
        exclude = set(pd.read_parquet(networks)["hash"])
    bench = load_benchmark("nasbench101", label=args.label, data_dir=args.data_dir)
    metrics, frames = evaluate_latent(
        latent,
        bench,
        args.sizes or prof["predict_sizes"],
        args.seeds or prof["predict_seeds"],
        args.runs or prof["search_runs"],
        args.budget or prof["search_budget"],
        exclude=exclude,
    )
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        for name, rows in frames.items():
            atomic_write_parquet(pd.DataFrame(rows), out / f"{name}.parquet")
        metrics["out"] = str(out)
    print_result(metrics, args.json)
    return 0


def add_evaluate_parser(sub) -> None:
    p = sub.add_parser(
        "evaluate",
        help="performance prediction and REINFORCE/random search on a latent table",
    )
    p.add_argument("latent", help="latent.parquet (hash, z0..): from a trial's --out or a sweep")
    p.add_argument("--profile", choices=PROFILES_NAMES, default="cpu")
    p.add_argument("--sizes", type=int, nargs="+", default=None, help="forest train sizes")
    p.add_argument("--seeds", type=int, default=None, help="forest seeds (paper: 10)")
    p.add_argument("--runs", type=int, default=None, help="search runs a method")
    p.add_argument("--budget", type=float, default=None, help="simulated seconds a run")
    p.add_argument("--exclude", default=None, help="pretraining folder: leave its networks out")
    p.add_argument("--label", default=None)
    p.add_argument("--data-dir", default=None)
    p.add_argument("--out", default=None, help="folder for prediction.parquet, search.parquet")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_evaluate)


def add_parsers(sub) -> None:
    add_pretrain_parser(sub)
    add_evaluate_parser(sub)
