"""Benchmark cells and generated cells as torch-geometric data.

    from pipeline.nas.pyg import benchmark_dataset
    ds = benchmark_dataset("nasbench101")          # 423,624 graphs; "natsbench": 5,256
    print(ds[0])   # Data(x=[7, 5], edge_index=[2, 9], y=[1], hash='...', num_nodes=7)
    split = ds.split(top_n_removed=10, train_fraction=0.75, seed=0)   # index tensors
    loader = DataLoader(ds[split["train"]], batch_size=128, shuffle=True)

Each graph is one cell of the benchmark table in node form, built from the same table and
the same canonical cells as everything else: ``x`` the one-hot ops in the space's order
(:mod:`pipeline.nas.spaces`), ``edge_index`` the DAG's edges (source row, target row), ``y`` the
accuracy in percent (NaN where the table has no label), ``hash`` the official cell hash.
The splits are the project's seeded splits (:meth:`pipeline.nas.table.Benchmark.split`:
the best ``top_n_removed`` % removed, a ``train_fraction`` of the rest for training, the
rest held out), as index tensors into the dataset. The collated dataset is cached under
PyG's ``processed/`` folder (in ``<cache>/pyg``), keyed by the table's fingerprint.

:func:`generated_data` reads a trial's generated cells (``generated/<id>.parquet``) back as
``Data`` objects.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch_geometric.data import Data, InMemoryDataset
from torch_geometric.utils import dense_to_sparse

from pipeline.nas.benchmarks import Benchmark, load_benchmark
from pipeline.nas.spaces import SearchSpace, get_space
from pipeline.paths import cache_dir


def _collated(bench: Benchmark) -> tuple[Data, dict[str, torch.Tensor]]:
    """The whole table as one collated ``Data`` and its slices, vectorised (no per-graph
    Python objects: NAS-Bench-101 has 423,624 cells)."""
    k = bench.space.num_ops
    nv = bench.num_vertices.astype(np.int64)
    rows, cols = np.nonzero(np.arange(bench.ops.shape[1]) < nv[:, None])
    x = torch.zeros(len(rows), k)
    x[torch.arange(len(rows)), torch.as_tensor(bench.ops[rows, cols].astype(np.int64))] = 1.0
    g, src, dst = np.nonzero(bench.adjacency)  # row-major: graphs in order, edges by source
    edge_index = torch.as_tensor(np.stack([src, dst]).astype(np.int64))
    edges = np.bincount(g, minlength=len(bench))
    data = Data(
        x=x,
        edge_index=edge_index,
        y=torch.as_tensor(bench.accuracy, dtype=torch.float32),
        hash=bench.hashes.tolist(),
        num_nodes=int(nv.sum()),
    )
    data._num_nodes = nv.tolist()  # per graph, as PyG's own collate keeps them
    slices = {
        "x": torch.as_tensor(np.concatenate([[0], np.cumsum(nv)])),
        "edge_index": torch.as_tensor(np.concatenate([[0], np.cumsum(edges)])),
        "y": torch.arange(len(bench) + 1),
        "hash": torch.arange(len(bench) + 1),
    }
    return data, slices


class BenchmarkDataset(InMemoryDataset):
    """A benchmark table as an ``InMemoryDataset`` (see the module docstring)."""

    def __init__(self, bench: Benchmark, root: str | os.PathLike | None = None) -> None:
        self.bench = bench
        root = Path(root) if root else cache_dir() / "pyg" / f"{bench.name}-{bench.dataset}"
        super().__init__(str(root), log=False)
        self.load(self.processed_paths[0])

    @property
    def space(self) -> SearchSpace:
        return self.bench.space

    @property
    def raw_file_names(self) -> list[str]:
        return []  # built from the benchmark table the project already reads

    @property
    def processed_file_names(self) -> list[str]:
        b = self.bench
        return [f"{b.name}-{b.dataset}-{b.label}-{b.fingerprint}-v2.pt"]

    def process(self) -> None:
        data, slices = _collated(self.bench)
        from pipeline.store.io import atomic_path

        with atomic_path(self.processed_paths[0]) as tmp:  # PyG's own file layout
            torch.save((data.to_dict(), slices, Data), tmp)

    def split(
        self, top_n_removed: float = 10.0, train_fraction: float = 0.75, seed: int = 0
    ) -> dict[str, torch.Tensor]:
        """The project's seeded split as index tensors: ``removed_top``, ``train``,
        ``held_out`` (labelled cells only), and ``unlabelled``."""
        s = self.bench.split(top_n_removed, train_fraction, seed)
        return {
            "removed_top": torch.as_tensor(s.removed_top, dtype=torch.long),
            "train": torch.as_tensor(s.train, dtype=torch.long),
            "held_out": torch.as_tensor(s.held_out, dtype=torch.long),
            "unlabelled": torch.as_tensor(np.flatnonzero(~self.bench.labelled), dtype=torch.long),
        }


def benchmark_dataset(
    benchmark: str,
    dataset: str = "cifar10",
    data_dir: str | os.PathLike | None = None,
    label: str | None = None,
    root: str | os.PathLike | None = None,
) -> BenchmarkDataset:
    """``nasbench101`` or ``natsbench`` (``dataset`` cifar10, cifar100, ImageNet16-120) as
    a PyG dataset; ``data_dir`` as everywhere (default search: see :mod:`pipeline.paths`)."""
    return BenchmarkDataset(load_benchmark(benchmark, dataset, data_dir, label=label), root)


def cell_data(ops: list[str], adjacency: np.ndarray, space: SearchSpace, **fields) -> Data:
    """One cell as ``Data`` (the dataset's layout); ``fields`` are added as attributes."""
    x = torch.zeros(len(ops), space.num_ops)
    x[torch.arange(len(ops)), torch.as_tensor([space.op_index(o) for o in ops])] = 1.0
    edge_index, _ = dense_to_sparse(torch.as_tensor(np.asarray(adjacency, dtype=np.float32)))
    return Data(x=x, edge_index=edge_index, num_nodes=len(ops), **fields)


def generated_data(generated: pd.DataFrame | str | os.PathLike, space: str) -> list[Data]:
    """A trial's generated cells (a ``generated`` part: Parquet file or frame) as ``Data``:
    valid cells only, with ``y`` the benchmark accuracy (NaN unknown), ``hash`` and
    ``in_train``; batch them with ``torch_geometric.data.Batch.from_data_list``."""
    frame = generated if isinstance(generated, pd.DataFrame) else pd.read_parquet(generated)
    sp = get_space(space)
    out = []
    for row in frame.itertuples(index=False):
        if not row.valid or not len(row.ops):
            continue
        v = len(row.ops)
        adj = np.asarray(row.adjacency, dtype=np.uint8).reshape(v, v)
        acc = float("nan") if row.accuracy is None or pd.isna(row.accuracy) else row.accuracy
        out.append(
            cell_data(
                list(row.ops),
                adj,
                sp,
                y=torch.tensor([acc], dtype=torch.float32),
                hash=row.hash,
                in_train=bool(row.in_train),
            )
        )
    return out
