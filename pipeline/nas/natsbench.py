"""NATS-Bench topology space (= NAS-Bench-201) in node form.

NATS cells put ops on the 6 edges of a 4-node cell (``|op~0|+|op~0|op~1|+|op~0|op~1|op~2|``).
GNN2GNN needs ops on nodes. The conversion rule, explicitly:

1. every edge whose op is a convolution or pooling becomes a node carrying that op;
2. ``skip_connect`` becomes a direct link (whatever feeds the edge's source feeds its target);
3. ``none`` edges are dropped;
4. an ``input`` node (cell node 0) and an ``output`` node (fed by everything that reaches cell
   node 3) are added;
5. pruning (``pruning='full'``, the default): nodes off every input-to-output path are
   removed, exactly like NAS-Bench-101 pruning and like the generator's refinement, so a
   generated cell and a table cell are compared in the same form. ``pruning='none'`` keeps
   dead nodes (a graph-level count of about 7.9K);
6. cells with no input-to-output path (341 architectures, 10% on CIFAR-10) are dropped;
7. duplicates (same canonical hash) are merged; a merged cell's accuracy is the MEAN over
   its member architectures, and ``members`` counts them.

Measured on the complete table: full pruning gives 5,256 unique node-form graphs,
``pruning='none'`` 7,716 (the paper reports about 7K; the authors' exact rule is not
stated). Node-form cells have at most 8 nodes.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from pipeline.nas.cells import Cell
from pipeline.nas.spaces import INPUT, NATSBENCH, OUTPUT
from pipeline.nas.table import Benchmark, BenchmarkError, Forms, file_fingerprint

PARQUET_NAME = "natsbench_tss.parquet"
OFFICIAL_DIR_NAME = "NATS-tss-v1_0-3ffb9-simple"
DATASETS = {"cifar10": "cifar10", "cifar100": "cifar100", "ImageNet16-120": "imagenet16"}
PRUNING_RULES = ("full", "none")
EDGE_OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")


def parse_arch_str(arch_str: str) -> list[list[tuple[str, int]]]:
    """'|op~0|+|op~0|op~1|+...' -> per target node j=1..3, the (op, source) edges."""
    try:
        nodes = []
        for part in arch_str.split("+"):
            edges = []
            for tok in part.strip("|").split("|"):
                op, src = tok.split("~")
                if op not in EDGE_OPS:
                    raise ValueError(f"unknown edge op {op!r}")
                edges.append((op, int(src)))
            nodes.append(edges)
        if [len(e) for e in nodes] != [1, 2, 3]:
            raise ValueError("expected 3 nodes with 1, 2 and 3 incoming edges")
        return nodes
    except ValueError as exc:
        raise BenchmarkError(f"malformed NATS arch string {arch_str!r}: {exc}") from None


def arch_to_cell(arch_str: str, pruning: str = "full") -> Cell | None:
    """Node-form cell of a NATS arch string (rule in the module docstring); None: no path."""
    if pruning not in PRUNING_RULES:
        raise BenchmarkError(f"unknown pruning rule {pruning!r}; expected one of {PRUNING_RULES}")
    ops = [INPUT]
    edges: list[tuple[int, int]] = []
    producers: list[set[int]] = [{0}]  # graph vertices whose outputs sum into cell node j
    for incoming in parse_arch_str(arch_str):
        feeds: set[int] = set()
        for op, src in incoming:
            if op == "none":
                continue
            if op == "skip_connect":
                feeds |= producers[src]
                continue
            v = len(ops)
            ops.append(op)
            edges.extend((p, v) for p in producers[src])
            feeds.add(v)
        producers.append(feeds)
    out = len(ops)
    ops.append(OUTPUT)
    edges.extend((p, out) for p in producers[3])
    adj = np.zeros((len(ops), len(ops)), dtype=np.uint8)
    for s, t in edges:
        adj[s, t] = 1
    cell = Cell(tuple(ops), adj)
    pruned = cell.prune()
    if pruned is None:
        return None
    return pruned if pruning == "full" else cell


def find_source(data_dir):
    """The compact Parquet if present, else the official folder; BenchmarkError otherwise.
    ``data_dir``: a ``Path`` or a :class:`~pipeline.store.location.Location` (see
    :func:`pipeline.nas.nasbench101.find_file`)."""
    candidates = [
        data_dir / PARQUET_NAME,
        data_dir / OFFICIAL_DIR_NAME,
        data_dir / "natsbench_official_fixture" / OFFICIAL_DIR_NAME,
    ]
    for c in candidates:
        if c.exists():
            return c
    raise BenchmarkError(
        f"no NATS-Bench data in {data_dir}: expected {PARQUET_NAME} or the official folder "
        f"{OFFICIAL_DIR_NAME}/ (from https://github.com/D-X-Y/NATS-Bench)"
    )


def read_official(
    path: Path, datasets: tuple[str, ...] = tuple(DATASETS), indices: list[int] | None = None
) -> pd.DataFrame:
    """Accuracies from the official files through ``nats_bench`` (hp='200', is_random=False:
    the 200-epoch schedule, mean over seeds; the API defaults are 12 epochs, one random seed).

    Columns: index, arch_str, ``<prefix>_test_acc`` and ``<prefix>_valid_acc`` per data set
    (cifar10's valid from the 'cifar10-valid' run). A record missing from the folder raises.
    ``<prefix>_hp12_test_acc``: the 12-epoch schedule's test accuracy, the label the GNN2GNN
    authors' code reads (``get_more_info`` with the API defaults: hp='12', one seed drawn at
    random), here as the mean over the record's seeds so that it is reproducible (the
    official records of CIFAR-10 read here have one 12-epoch seed, 111, so both agree), and
    ``<prefix>_hp12_test_acc_seeds`` the per-seed values; NaN and [] where a folder has no
    12-epoch record.
    """
    import nats_bench

    path = Path(path)
    if not path.is_dir():
        raise BenchmarkError(f"{path}: expected the official NATS-Bench folder {OFFICIAL_DIR_NAME}")
    api = nats_bench.create(str(path), "tss", fast_mode=True, verbose=False)
    rows = []
    for i in range(len(api)) if indices is None else indices:
        row = {"index": int(i), "arch_str": api.arch(int(i))}
        try:
            for ds in datasets:
                prefix = DATASETS[ds]
                info = api.get_more_info(int(i), ds, hp="200", is_random=False)
                row[f"{prefix}_test_acc"] = float(info["test-accuracy"])
                if ds == "cifar10":
                    vinfo = api.get_more_info(int(i), "cifar10-valid", hp="200", is_random=False)
                    row["cifar10_valid_acc"] = float(vinfo["valid-accuracy"])
                else:
                    row[f"{prefix}_valid_acc"] = float(info["valid-accuracy"])
                row[f"{prefix}_hp12_test_acc"], row[f"{prefix}_hp12_test_acc_seeds"] = _hp12_test(
                    api, int(i), ds
                )
        except Exception as exc:
            raise BenchmarkError(
                f"{path}: no 200-epoch record for architecture {i} ({type(exc).__name__}: {exc}); "
                "the official folder is incomplete"
            ) from None
        rows.append(row)
        api.clear_params(int(i), None)
    return pd.DataFrame(rows)


def _hp12_test(api, index: int, dataset: str) -> tuple[float, list[float]]:
    """The 12-epoch test accuracy of one architecture: the mean over seeds, and per seed."""
    try:
        seeds = api.query_meta_info_by_index(index, hp="12").get_dataset_seeds(dataset)
        per_seed = [
            float(api.get_more_info(index, dataset, hp="12", is_random=s)["test-accuracy"])
            for s in seeds
        ]
    except Exception:  # a folder with 200-epoch records only
        return float("nan"), []
    return (float(np.mean(per_seed)) if per_seed else float("nan")), per_seed


def resolve_label(columns, dataset: str, label: str | None, where) -> tuple[str, list[str]]:
    """The label a table with ``columns`` is read with for ``dataset`` (``label``, default
    ``<prefix>_test_acc``) and the labels it offers for that data set; BenchmarkError
    naming ``where`` when ``arch_str`` or the label is missing."""
    if dataset not in DATASETS:
        raise BenchmarkError(f"unknown NATS data set {dataset!r}; expected one of {list(DATASETS)}")
    prefix = DATASETS[dataset]
    labels = [c for c in columns if re.match(rf"^{prefix}(valid)?_\w+_acc$", c)]
    label = label or f"{prefix}_test_acc"
    if "arch_str" not in columns or label not in columns:
        raise BenchmarkError(
            f"{where}: expected columns 'arch_str' and {label!r} (labels for {dataset}: {labels})"
        )
    return label, labels


def load(
    path: Path, dataset: str = "cifar10", label: str | None = None, pruning: str = "full"
) -> Benchmark:
    """NATS-Bench in node form from the compact Parquet or the official folder."""
    path = Path(path)
    if dataset not in DATASETS:
        raise BenchmarkError(f"unknown NATS data set {dataset!r}; expected one of {list(DATASETS)}")
    if path.is_dir():
        frame = read_official(path, datasets=(dataset,))
    else:
        try:
            frame = pq.read_table(path).to_pandas()
        except Exception as exc:
            raise BenchmarkError(f"{path}: not a readable Parquet file ({exc})") from None
    label, labels = resolve_label(frame.columns, dataset, label, path)
    graphs = []
    for arch, acc in zip(frame["arch_str"], frame[label].to_numpy(np.float64), strict=True):
        cell = arch_to_cell(arch, pruning)
        if cell is not None:
            graphs.append((cell.hash(NATSBENCH), cell, acc))
    by_hash: dict[str, list] = {}
    for h, cell, acc in graphs:
        by_hash.setdefault(h, [cell, []])[1].append(acc)
    hashes = sorted(by_hash)
    n, vmax = len(hashes), NATSBENCH.max_vertices
    ops = np.full((n, vmax), -1, dtype=np.int8)
    adj = np.zeros((n, vmax, vmax), dtype=np.uint8)
    nv = np.zeros(n, dtype=np.int8)
    acc = np.zeros(n)
    members = np.zeros(n, dtype=np.int32)
    for r, h in enumerate(hashes):
        cell, accs = by_hash[h]
        v = cell.num_vertices
        ops[r, :v] = cell.op_indices(NATSBENCH)
        adj[r, :v, :v] = cell.adjacency
        nv[r] = v
        acc[r] = float(np.mean(accs))
        members[r] = len(accs)
    row_of = {h: r for r, h in enumerate(hashes)}
    f_ops = np.full((len(graphs), vmax), -1, dtype=np.int8)
    f_adj = np.zeros((len(graphs), vmax, vmax), dtype=np.uint8)
    for i, (_, cell, _) in enumerate(graphs):
        f_ops[i, : cell.num_vertices] = cell.op_indices(NATSBENCH)
        f_adj[i, : cell.num_vertices, : cell.num_vertices] = cell.adjacency
    forms = Forms(
        np.array([row_of[h] for h, _, _ in graphs], dtype=np.int64),
        f_ops,
        f_adj,
        np.array([a for _, _, a in graphs], dtype=np.float64),
    )
    return Benchmark(
        name="natsbench",
        dataset=dataset,
        space=NATSBENCH,
        label=label,
        hashes=np.array(hashes),
        ops=ops,
        adjacency=adj,
        num_vertices=nv,
        accuracy=acc,
        source=path,
        fingerprint=file_fingerprint(path),
        extra=pd.DataFrame({"members": members}),
        complete=True,  # every architecture's node form is in the table
        forms=forms,  # each architecture's own labelling and accuracy
        notes={
            "architectures": len(frame),
            "architectures_without_path": len(frame) - len(graphs),
            "pruning": pruning,
            "unique_node_form_graphs": n,
            "merge_rule": "duplicates merged by canonical hash; accuracy = mean over members",
            "labels_available": labels,
            "partially_labelled": False,
        },
    )
