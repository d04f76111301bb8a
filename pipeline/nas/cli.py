"""``gnn2gnn data``: benchmark tables: info, lookup, convert."""

from __future__ import annotations

import argparse
from pathlib import Path

from pipeline.cli.common import print_result
from pipeline.errors import UserError
from pipeline.nas.spaces import ALL_DATASETS, BENCHMARKS


def cmd_data_info(args: argparse.Namespace) -> int:
    from pipeline.nas.benchmarks import load_benchmark

    bench = load_benchmark(
        args.benchmark, args.dataset, args.data_dir, label=args.label, pruning=args.pruning
    )
    print_result(bench.summary(), args.json)
    return 0


def cmd_data_lookup(args: argparse.Namespace) -> int:
    from pipeline.nas.benchmarks import load_benchmark
    from pipeline.nas.cells import parse_cell
    from pipeline.nas.spaces import get_space

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
    print_result(out, args.json)
    return 0


def cmd_data_convert(args: argparse.Namespace) -> int:
    from pipeline.nas import nasbench101, natsbench
    from pipeline.store.io import atomic_write_parquet

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
    print_result(summary, args.json)
    return 0


def _add_data_args(p: argparse.ArgumentParser, benchmark_required: bool = True) -> None:
    p.add_argument(
        "--benchmark",
        choices=BENCHMARKS,
        required=benchmark_required,
        default=None,
    )
    p.add_argument(
        "--dataset",
        default="cifar10",
        choices=ALL_DATASETS,
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


def add_parsers(sub) -> None:
    data = sub.add_parser("data", help="benchmark tables: info, lookup, convert")
    dsub = data.add_subparsers(dest="data_command", required=True)
    info = dsub.add_parser("info", help="cells, labels and accuracies of a benchmark")
    _add_data_args(info)
    info.add_argument(
        "--pruning",
        choices=["full", "none"],
        default="full",
        help="NATS node-form pruning rule (see pipeline.nas.natsbench)",
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
