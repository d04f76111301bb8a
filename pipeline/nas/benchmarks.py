"""The benchmark tables: ``BENCHMARKS`` is the one list of them, ``load_benchmark`` the one
entry point every command and trial uses."""

from __future__ import annotations

import functools
import os
from pathlib import Path

from pipeline.nas import nasbench101, natsbench
from pipeline.nas.spaces import BENCHMARKS
from pipeline.nas.table import Benchmark, BenchmarkError, Split
from pipeline.paths import ENV_VAR, DataNotFoundError, resolve_data_dir
from pipeline.store.location import Location, is_uri

__all__ = [
    "BENCHMARKS",
    "Benchmark",
    "BenchmarkError",
    "Split",
    "check_data",
    "check_data_once",
    "load_benchmark",
]


HOW_TO_GET_DATA = (
    "Download the official files (NAS-Bench-101: nasbench_only108.tfrecord from "
    "https://github.com/google-research/nasbench; NATS-Bench: NATS-tss-v1_0-3ffb9-simple from "
    "https://github.com/D-X-Y/NATS-Bench), put them in one folder, run "
    "`gnn2gnn data convert FOLDER/<official file>` on each, and pass --data-dir FOLDER or set "
    f"{ENV_VAR}=FOLDER."
)

_CACHE: dict[tuple, Benchmark] = {}


def load_benchmark(
    name: str,
    dataset: str = "cifar10",
    data_dir: str | os.PathLike | None = None,
    label: str | None = None,
    pruning: str = "full",
    cache: bool = True,
) -> Benchmark:
    """Load a benchmark by name from the data directory (see :mod:`pipeline.paths`).

    ``dataset`` applies to NATS-Bench (cifar10, cifar100, ImageNet16-120); NAS-Bench-101 is
    CIFAR-10 only. Loaded tables are cached per process.
    """
    if name not in BENCHMARKS:
        raise BenchmarkError(f"unknown benchmark {name!r}; expected one of {list(BENCHMARKS)}")
    try:
        root = resolve_data_dir(data_dir)
    except DataNotFoundError as exc:
        raise DataNotFoundError(exc.what, HOW_TO_GET_DATA) from None
    if name == "nasbench101":
        if dataset != "cifar10":
            raise BenchmarkError(f"NAS-Bench-101 has CIFAR-10 only, got dataset {dataset!r}")
        path = nasbench101.find_file(root)
    else:
        path = natsbench.find_source(root)
    key = (name, dataset, str(Path(path).resolve()), label, pruning)
    if cache and key in _CACHE:
        return _CACHE[key]
    if name == "nasbench101":
        bench = nasbench101.load(path, label=label)
    else:
        bench = natsbench.load(path, dataset=dataset, label=label, pruning=pruning)
    if cache:
        _CACHE[key] = bench
    return bench


def check_data(
    name: str,
    dataset: str = "cifar10",
    data_dir: str | os.PathLike | None = None,
    label: str | None = None,
) -> str:
    """Raise the error :func:`load_benchmark` would raise for a missing folder or file, an
    unreadable Parquet table, a data set the benchmark lacks or an unknown label, without
    loading the table (a Parquet footer is read): a sweep's driver checks this before any
    trial starts (a few milliseconds, where every trial would otherwise fail on its own).
    ``data_dir`` may be a URI (checked where it is, not copied). Returns the file found."""
    import pyarrow.parquet as pq

    if name not in BENCHMARKS:
        raise BenchmarkError(f"unknown benchmark {name!r}; expected one of {list(BENCHMARKS)}")
    if name == "nasbench101" and dataset != "cifar10":
        raise BenchmarkError(f"NAS-Bench-101 has CIFAR-10 only, got dataset {dataset!r}")
    if name == "natsbench" and dataset not in natsbench.DATASETS:
        raise BenchmarkError(
            f"unknown NATS data set {dataset!r}; expected one of {list(natsbench.DATASETS)}"
        )
    if data_dir is not None and is_uri(data_dir) and not str(data_dir).startswith("file://"):
        folder = Location.of(data_dir)
        if not folder.is_dir():
            raise DataNotFoundError(f"data folder {data_dir}: no such folder", HOW_TO_GET_DATA)
    else:
        try:
            folder = Location.of(resolve_data_dir(data_dir))
        except DataNotFoundError as exc:
            raise DataNotFoundError(exc.what, HOW_TO_GET_DATA) from None
    found = (nasbench101.find_file if name == "nasbench101" else natsbench.find_source)(folder)
    if found.name.endswith(".parquet"):
        try:
            columns = pq.read_schema(found.path, filesystem=found.fs).names
        except Exception as exc:  # noqa: BLE001 - truncated, foreign: the message says which
            raise BenchmarkError(f"{found}: not a readable Parquet file ({exc})") from None
        if name == "nasbench101":
            nasbench101.resolve_label(columns, label, found)
        else:
            natsbench.resolve_label(columns, dataset, label, found)
    return found.uri


@functools.cache
def check_data_once(
    name: str, dataset: str = "cifar10", data_dir: str | None = None, label: str | None = None
) -> str:
    """:func:`check_data`, once per process for the same arguments (a sweep's driver checks
    every trial's config; most share their data)."""
    return check_data(name, dataset, data_dir, label)
