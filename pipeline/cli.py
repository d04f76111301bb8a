"""The ``gnn2gnn`` command line.

Errors a user can cause (bad input, missing data) are printed as one line without a
traceback, and the exit status is 2.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import yaml

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")


class UserError(Exception):
    """An error the user can fix; printed without a traceback."""


def _user_errors() -> tuple[type[BaseException], ...]:
    from pipeline.benchmarks import BenchmarkError
    from pipeline.benchmarks.tfrecord import TFRecordError
    from pipeline.cells import CellError
    from pipeline.cifar10 import CifarNotFoundError
    from pipeline.config import ConfigError
    from pipeline.iodata import IODataError
    from pipeline.paths import DataNotFoundError
    from pipeline.sweep import SweepError

    return (
        UserError,
        SweepError,
        BenchmarkError,
        TFRecordError,
        CellError,
        DataNotFoundError,
        ConfigError,
        CifarNotFoundError,
        IODataError,
    )


def _print(obj: dict, as_json: bool) -> None:
    if as_json:
        print(json.dumps(obj, default=str))
        return
    width = max(len(k) for k in obj) if obj else 0
    for k, v in obj.items():
        print(f"{k:<{width}}  {v}")


# --- data -------------------------------------------------------------------------------


def cmd_data_info(args: argparse.Namespace) -> int:
    from pipeline.benchmarks import load_benchmark

    bench = load_benchmark(
        args.benchmark, args.dataset, args.data_dir, label=args.label, pruning=args.pruning
    )
    _print(bench.summary(), args.json)
    return 0


def cmd_data_lookup(args: argparse.Namespace) -> int:
    from pipeline.benchmarks import load_benchmark
    from pipeline.cells import parse_cell
    from pipeline.spaces import get_space

    space = get_space(args.benchmark)
    ops = [o.strip() for o in args.ops.split(",") if o.strip()]
    given, pruned = parse_cell(space, ops, args.matrix)
    error = pruned.validity_error(space)
    out: dict = {
        "valid": error is None,
        "invalid_reason": error,
        "pruned": pruned.num_vertices != given.num_vertices,
        "ops": list(pruned.ops),
        "matrix": pruned.matrix_string(),
        "num_vertices": pruned.num_vertices,
        "num_edges": pruned.num_edges,
        "hash": pruned.hash(space),
    }
    bench = load_benchmark(args.benchmark, args.dataset, args.data_dir, label=args.label)
    row = bench.lookup(out["hash"])
    out["in_table"] = row is not None
    out["label"] = bench.label
    if row is not None:
        acc = bench.accuracy[row]
        out["accuracy"] = None if acc != acc else float(acc)  # NaN: unlabelled
        for col in bench.extra.columns:
            val = bench.extra[col].iloc[row]
            val = val.item() if hasattr(val, "item") else val
            out[col] = None if isinstance(val, float) and val != val else val
    _print(out, args.json)
    return 0


def cmd_data_convert(args: argparse.Namespace) -> int:
    from pipeline.benchmarks import nasbench101, natsbench
    from pipeline.io import atomic_write_parquet

    src = Path(args.source)
    if src.is_file() and src.suffix == ".tfrecord":
        out = Path(args.out) if args.out else src.parent / nasbench101.PARQUET_NAME
        summary = nasbench101.convert(src, out)
    elif src.is_dir():
        frame = natsbench.read_official(src)
        out = Path(args.out) if args.out else src.parent / natsbench.PARQUET_NAME
        atomic_write_parquet(frame, out)
        summary = {"source": str(src), "written": str(out), "architectures": len(frame)}
    else:
        raise UserError(
            f"{src}: expected a NAS-Bench-101 .tfrecord file or the NATS-Bench folder "
            f"{natsbench.OFFICIAL_DIR_NAME}/"
        )
    _print(summary, args.json)
    return 0


# --- train ------------------------------------------------------------------------------

TRAIN_FLAGS = {  # CLI flag -> config field (None: same name with dashes as underscores)
    "benchmark": None,
    "dataset": None,
    "label": None,
    "data_dir": None,
    "model": None,
    "mu": None,
    "tau": None,
    "lambda": "lambda",
    "valuer": None,
    "protocol": None,
    "top_n_removed": None,
    "train_fraction": None,
    "epochs": None,
    "batch_size": None,
    "optimizer": None,
    "lr": None,
    "hidden": None,
    "num_generated": None,
    "profile": None,
    "seed": None,
    "device": None,
    "er_p": None,
}
IO_FLAGS = (  # the arch2vec / IO-model fields the command line sets
    "label",
    "data_dir",
    "model",
    "epochs",
    "batch_size",
    "lr",
    "hidden",
    "profile",
    "seed",
    "device",
    "io_data",
    "l1_weight",
    "labelled_run",
    "unlabelled_run",
    "max_cells",
    "top_k",
    "scale",
    "export",
)
IO_MODELS = ("arch2vec", "io-embedding")


def cmd_train(args: argparse.Namespace) -> int:
    """One trial from the command line; generated cells etc. to --out when given."""
    from pipeline.io import write_trial_outputs

    if args.model in IO_MODELS:
        from trainables.io_embedding import run_trial

        if args.benchmark not in (None, "nasbench101"):
            raise UserError(f"--model {args.model} runs on nasbench101 only")
        config = {k: getattr(args, k) for k in IO_FLAGS}
    else:
        from trainables.gnn2gnn import run_trial

        config = {k: getattr(args, k.replace("-", "_")) for k in TRAIN_FLAGS}
        config["benchmark"] = config["benchmark"] or "natsbench"
    config = {k: v for k, v in config.items() if v is not None}

    def report(row: dict) -> None:
        if not args.json:
            keys = (
                "epoch",
                "lambda",
                "d_loss",
                "v_loss",
                "g_loss",
                "validity",
                "novelty",
                "top10",
                "mean_acc",
                "vae_loss",
                "train_l1",
                "ops_acc",
                "adj_acc",
                "val_l1_unseen_images",
                "val_l1_unseen_networks",
            )
            print(
                "  ".join(
                    f"{k}={row[k]:.4g}" if isinstance(row.get(k), float) else f"{k}={row.get(k)}"
                    for k in keys
                    if k in row
                ),
                file=sys.stderr,
            )

    result = run_trial(config, reporter=report, progress=not args.json)
    summary = {**result.info, **result.metrics}
    if args.out:
        summary["out"] = str(write_trial_outputs(Path(args.out), config, result))
    _print(summary, args.json)
    return 0


def add_train_parser(sub) -> None:
    p = sub.add_parser(
        "train",
        help="train one trial (GNN2GNN, a baseline, arch2vec or the IO model) and report metrics",
    )
    p.add_argument(
        "--benchmark",
        choices=["nasbench101", "natsbench"],
        default=None,
        help="natsbench for GNN2GNN and baselines; arch2vec/io-embedding: nasbench101 only",
    )
    p.add_argument("--dataset", choices=["cifar10", "cifar100", "ImageNet16-120"], default=None)
    p.add_argument("--label", default=None, help="accuracy column (default: the best available)")
    p.add_argument("--data-dir", default=None)
    p.add_argument(
        "--model",
        choices=["gnn2gnn", "molgan", "rnn", "random", *IO_MODELS],
        default=None,
        help="generator (gnn2gnn, molgan, rnn, random) or embedding (arch2vec, io-embedding)",
    )
    p.add_argument("--mu", type=int, default=None, help="generator graph convolutions (2)")
    p.add_argument("--tau", type=float, default=None, help="Gumbel-softmax temperature (0.1)")
    p.add_argument(
        "--lambda",
        dest="lambda",
        type=float,
        default=None,
        help="GAN vs reward balance after the warm-up half (0.1)",
    )
    p.add_argument("--valuer", choices=["C", "R"], default=None)
    p.add_argument(
        "--top-n-removed",
        type=float,
        default=None,
        help="percent of best cells removed from training (10)",
    )
    p.add_argument("--train-fraction", type=float, default=None)
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--optimizer", choices=["sgd", "adam"], default=None)
    p.add_argument(
        "--protocol",
        choices=["clean", "authors"],
        default=None,
        help="clean (default) or the authors' evaluation, which leaks test labels",
    )
    p.add_argument("--lr", type=float, default=None)
    p.add_argument("--hidden", type=int, default=None)
    p.add_argument("--num-generated", type=int, default=None, help="K cells for the metrics")
    p.add_argument("--er-p", type=float, default=None, help="Erdos-Renyi edge probability")
    io = p.add_argument_group("arch2vec / io-embedding")
    io.add_argument("--io-data", default=None, help="pretraining folder (results/pretrain-PROFILE)")
    io.add_argument("--l1-weight", type=float, default=None)
    io.add_argument("--labelled-run", type=int, default=None, help="labelled batches a run")
    io.add_argument("--unlabelled-run", type=int, default=None, help="unlabelled batches a run")
    io.add_argument("--max-cells", type=int, default=None, help="VAE training cells")
    io.add_argument("--top-k", type=int, default=None, help="keep the k most important features")
    io.add_argument("--scale", choices=["global", "feature", "none"], default=None)
    io.add_argument("--export", choices=["all", "labelled", "none"], default=None)
    p.add_argument("--profile", choices=["smoke", "cpu", "paper"], default="cpu")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default=None)
    p.add_argument("--out", default=None, help="folder for generated cells, epochs, model")
    p.add_argument("--json", action="store_true", help="print the final metrics as one JSON")
    p.set_defaults(func=cmd_train)


# --- pretrain ---------------------------------------------------------------------------


def cmd_pretrain(args: argparse.Namespace) -> int:
    from trainables.pretrain import run_pretraining

    config = {
        "profile": args.profile,
        "train_networks": args.cells,
        "valid_networks": args.valid_cells,
        "epochs": args.epochs,
        "stem_channels": args.stem_channels,
        "seed": args.seed,
        "device": args.device,
        "data_dir": args.data_dir,
    }
    folder = Path(args.results) if args.results else Path("results") / f"pretrain-{args.profile}"
    summary = run_pretraining(
        config,
        folder,
        address=args.address,
        log=lambda line: print(line, file=sys.stderr, flush=True),
    )
    if not args.no_io_dataset and summary["finished"]:
        from pipeline.iodata import IODataError, load_io_dataset

        try:
            summary["io_dataset"] = str(load_io_dataset(folder).save(folder / "io_dataset"))
        except IODataError as exc:
            summary["io_dataset"] = f"not built: {exc}"
    print(json.dumps(summary))
    return 1 if summary["failed"] else 0


def add_pretrain_parser(sub) -> None:
    p = sub.add_parser(
        "pretrain",
        help="train NAS-Bench-101 networks on CIFAR-10 (Ray tasks) and build the IO-dataset",
    )
    p.add_argument("--profile", choices=["smoke", "cpu", "paper"], default="cpu")
    p.add_argument("--cells", type=int, default=None, help="training networks (paper: 608)")
    p.add_argument("--valid-cells", type=int, default=None, help="validation networks (77)")
    p.add_argument("--epochs", type=int, default=None, help="epochs a network (paper: 12)")
    p.add_argument("--stem-channels", type=int, default=None, help="paper: 128")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default=None)
    p.add_argument("--data-dir", default=None)
    p.add_argument("--address", default=None, help="Ray cluster address (default: embedded)")
    p.add_argument("--results", default=None, help="folder (default results/pretrain-PROFILE)")
    p.add_argument("--no-io-dataset", action="store_true", help="skip writing io_dataset/")
    p.set_defaults(func=cmd_pretrain)


def cmd_evaluate(args: argparse.Namespace) -> int:
    """Prediction + search on any latent table (e.g. a trial's --out latent.parquet)."""
    import pandas as pd

    from pipeline.benchmarks import load_benchmark
    from pipeline.io import atomic_write_parquet
    from pipeline.nas_eval import evaluate_latent
    from trainables.io_embedding import PROFILES

    path = Path(args.latent)
    if not path.is_file():
        raise UserError(f"{path}: no latent table (a trial's latent.parquet)")
    latent = pd.read_parquet(path)
    if "hash" not in latent or not any(c.startswith("z") for c in latent.columns):
        raise UserError(f"{path}: expected columns hash, z0, z1, ... (a latent table)")
    prof = PROFILES[args.profile]
    exclude: set[str] = set()
    if args.exclude:
        exclude = set(pd.read_parquet(Path(args.exclude) / "networks.parquet")["hash"])
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
    _print(metrics, args.json)
    return 0


def add_evaluate_parser(sub) -> None:
    p = sub.add_parser(
        "evaluate",
        help="performance prediction and REINFORCE/random search on a latent table",
    )
    p.add_argument("latent", help="latent.parquet (hash, z0..): from a trial's --out or a sweep")
    p.add_argument("--profile", choices=["smoke", "cpu", "paper"], default="cpu")
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


# --- sweep / ui -------------------------------------------------------------------------


def cmd_sweep(args: argparse.Namespace) -> int:
    from pipeline.paths import resolve_data_dir
    from pipeline.sweep import run_sweep
    from pipeline.sweepspec import load_sweep
    from trainables import registry, validate_trial_config

    spec = load_sweep(args.sweep, validate_trial_config)
    spec = override_sweep(spec, args.seeds, args.set)
    entry = registry()[spec.trainable]
    summary = run_sweep(
        spec,
        trainable=entry.tune_fn,
        progress_metric=entry.progress_metric,
        profile=args.profile,
        results=Path(args.results),
        benchmark=args.benchmark,
        dataset=args.dataset,
        address=args.address,
        resume=args.resume,
        max_concurrent=args.max_concurrent,
        validate_config=validate_trial_config,
        data_dir=str(resolve_data_dir(args.data_dir)),
        log=lambda line: print(line, file=sys.stderr, flush=True),
    )
    print(
        json.dumps(
            {
                "folder": str(summary.folder),
                "trials": summary.total,
                "skipped_finished": summary.skipped,
                "ran": summary.ran,
                "failed": summary.failed,
                "wall_seconds": round(summary.wall_seconds, 1),
                "mlflow": summary.tracking_uri,
            }
        )
    )
    return 1 if summary.failed else 0


def override_sweep(spec, seeds: int | None, sets: list[str] | None):
    """The sweep with ``--seeds N`` (seeds 0..N-1) and ``--set KEY=VALUE`` (YAML values,
    applied to every trial's base config) applied; the trials are validated again later."""
    update: dict = {}
    if seeds is not None:
        if seeds < 1:
            raise UserError(f"--seeds must be at least 1, got {seeds}")
        update["seeds"] = seeds
    if sets:
        base = dict(spec.base)
        for item in sets:
            key, sep, value = item.partition("=")
            if not sep or not key.strip():
                raise UserError(f"--set expects KEY=VALUE, got {item!r}")
            base[key.strip()] = yaml.safe_load(value)
        update["base"] = base
    return spec.model_copy(update=update) if update else spec


def cmd_ui(args: argparse.Namespace) -> int:
    import subprocess

    from pipeline.tracking import tracking_uri

    folder = Path(args.results) / args.sweep if args.sweep else Path(args.results)
    if not (folder / "mlflow.db").exists() and "MLFLOW_TRACKING_URI" not in os.environ:
        found = sorted(Path(args.results).glob("*/mlflow.db"))
        if len(found) != 1:
            raise UserError(
                f"no single MLflow store under {args.results} (found {len(found)}); "
                "pass --sweep NAME"
            )
        folder = found[0].parent
    uri = tracking_uri(folder)
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    print(f"MLflow UI for {uri}: http://127.0.0.1:{args.port}", flush=True)
    cmd = [
        sys.executable,
        "-m",
        "mlflow",
        "server",
        "--backend-store-uri",
        uri,
        "--host",
        "127.0.0.1",
        "--port",
        str(args.port),
        "--workers",
        "1",
    ]
    return subprocess.call(cmd, env=env)


def add_sweep_parsers(sub) -> None:
    p = sub.add_parser("sweep", help="run a sweep file with Ray Tune (Parquet + MLflow)")
    p.add_argument("sweep", help="sweep file, e.g. sweeps/ablation.yaml")
    p.add_argument("--profile", choices=["smoke", "cpu", "paper"], default="cpu")
    p.add_argument(
        "--benchmark",
        choices=["nasbench101", "natsbench"],
        default=None,
        help="override the file's benchmark",
    )
    p.add_argument("--dataset", choices=["cifar10", "cifar100", "ImageNet16-120"], default=None)
    p.add_argument("--results", default="results", help="results folder (default ./results)")
    p.add_argument(
        "--address",
        default=None,
        help="Ray cluster address (default: embedded local Ray on 127.0.0.1)",
    )
    p.add_argument("--resume", action="store_true", help="continue; skip finished trials")
    p.add_argument("--seeds", type=int, default=None, help="run seeds 0..N-1 (file: seeds)")
    p.add_argument(
        "--set",
        action="append",
        metavar="KEY=VALUE",
        help="set a trial config field for every trial (repeatable), e.g. num_generated=10000",
    )
    p.add_argument("--max-concurrent", type=int, default=None)
    p.add_argument(
        "--data-dir",
        default=None,
        help="data folder (default: $GNN2GNN_DATA, ./data, then ../shared/data); "
        "on a multi-node cluster it must exist on every node",
    )
    p.set_defaults(func=cmd_sweep)
    u = sub.add_parser("ui", help="start the MLflow UI on 127.0.0.1 for a results folder")
    u.add_argument("--results", default="results")
    u.add_argument("--sweep", default=None, help="sweep name (when the folder holds several)")
    u.add_argument("--port", type=int, default=5000)
    u.set_defaults(func=cmd_ui)


# --- analysis ---------------------------------------------------------------------------


def _results_folder(path: str) -> Path:
    folder = Path(path)
    if not any(folder.glob("*/trials.parquet")):
        raise UserError(f"{folder}: no sweep results (expected <sweep>/trials.parquet inside)")
    return folder


def cmd_tables(args: argparse.Namespace) -> int:
    from analysis.tables import write_tables

    formats = tuple(f.strip() for f in args.format.split(",") if f.strip())
    bad = set(formats) - {"md", "csv", "tex"}
    if bad:
        raise UserError(f"--format: unknown {sorted(bad)}; expected md, csv, tex")
    results = _results_folder(args.results)
    for path in write_tables(results, Path(args.out or results / "report"), formats):
        print(path)
    return 0


def cmd_figures(args: argparse.Namespace) -> int:
    from analysis.figures import write_figures

    results = _results_folder(args.results)
    for path in write_figures(results, Path(args.out or results / "report")):
        print(path)
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from analysis.report import write_report

    results = _results_folder(args.results)
    print(write_report(results, Path(args.out) if args.out else None))
    return 0


def add_analysis_parsers(sub) -> None:
    for name, func, text in (
        ("tables", cmd_tables, "the paper's tables from a results folder (md, csv, tex)"),
        ("figures", cmd_figures, "PNG figures from a results folder"),
        ("report", cmd_report, "tables + figures + one Markdown report"),
    ):
        p = sub.add_parser(name, help=text)
        p.add_argument("--results", default="results")
        p.add_argument("--out", default=None, help="output folder (default RESULTS/report)")
        if name == "tables":
            p.add_argument("--format", default="md,csv,tex")
        p.set_defaults(func=func)


# --- parser -----------------------------------------------------------------------------


def _add_data_args(p: argparse.ArgumentParser, benchmark_required: bool = True) -> None:
    p.add_argument(
        "--benchmark",
        choices=["nasbench101", "natsbench"],
        required=benchmark_required,
        default=None,
    )
    p.add_argument(
        "--dataset",
        default="cifar10",
        choices=["cifar10", "cifar100", "ImageNet16-120"],
        help="NATS-Bench data set (NAS-Bench-101: cifar10 only)",
    )
    p.add_argument(
        "--label",
        default=None,
        help="accuracy column to use (default: the benchmark's best available)",
    )
    p.add_argument(
        "--data-dir",
        default=None,
        help="data folder (default: $GNN2GNN_DATA, ./data, then ../shared/data)",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gnn2gnn", description="GNN2GNN / Info-NAS reproduction pipeline"
    )
    sub = parser.add_subparsers(dest="command", required=True)

    data = sub.add_parser("data", help="benchmark tables: info, lookup, convert")
    dsub = data.add_subparsers(dest="data_command", required=True)
    info = dsub.add_parser("info", help="cells, labels and accuracies of a benchmark")
    _add_data_args(info)
    info.add_argument(
        "--pruning",
        choices=["full", "none"],
        default="full",
        help="NATS node-form pruning rule (see pipeline.benchmarks.natsbench)",
    )
    info.set_defaults(func=cmd_data_info)
    lookup = dsub.add_parser("lookup", help="prune, validate and hash a cell; show its table row")
    _add_data_args(lookup)
    lookup.add_argument("--ops", required=True, help="comma-separated op names, input first")
    lookup.add_argument("--matrix", required=True, help="row-major 0/1 string of the V x V matrix")
    lookup.set_defaults(func=cmd_data_lookup)
    conv = dsub.add_parser("convert", help="official files -> the project's compact Parquet")
    conv.add_argument(
        "source",
        help="nasbench_only108.tfrecord / nasbench_full.tfrecord, or "
        "the NATS-tss-v1_0-3ffb9-simple folder",
    )
    conv.add_argument("--out", default=None, help="output Parquet (default: beside the source)")
    conv.add_argument("--json", action="store_true")
    conv.set_defaults(func=cmd_data_convert)

    add_train_parser(sub)
    add_pretrain_parser(sub)
    add_evaluate_parser(sub)
    add_sweep_parsers(sub)
    add_analysis_parsers(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except _user_errors() as exc:
        print(f"gnn2gnn: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("gnn2gnn: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
