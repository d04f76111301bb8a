import json
import subprocess
import sys
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import pandas as pd
import pytest

from pipeline.nas import nasbench101, natsbench
from pipeline.nas.benchmarks import BenchmarkError, load_benchmark
from pipeline.nas.cells import Cell
from pipeline.nas.spaces import NASBENCH101, NATSBENCH
from pipeline.nas.tfrecord import (
    NB101Record,
    TFRecordError,
    encode_record,
    read_nasbench_tfrecord,
    write_records,
)
from pipeline.paths import DataNotFoundError, resolve_data_dir


def test_nasbench101_shared_table_says_which_label_and_coverage(nb101):
    s = nb101.summary()
    assert s["num_cells"] == 423_624
    # the default label on the shared table: the mean of every repeat seen (issue 25)
    assert s["num_labelled"] == 30_267
    assert s["label"] == "val_acc_108_mean"
    assert s["partially_labelled"] is True
    assert "30267 of 423624" in s["coverage_note"]
    assert 94.9 < s["best_accuracy"] < 95.0 and 91.0 < s["mean_accuracy"] < 91.1


def test_nasbench101_rows_rebuild_into_valid_cells_with_their_hash(nb101):
    rng = np.random.default_rng(0)
    for row in rng.choice(len(nb101), 300, replace=False):
        cell = nb101.cell(int(row))
        assert cell.is_valid(NASBENCH101)
        assert cell.hash(NASBENCH101) == nb101.hashes[row]
        assert nb101.lookup(nb101.hashes[row]) == row


def _hash_chunk(args):
    ops, adj, nv = args
    out = []
    for o, a, v in zip(ops, adj, nv, strict=True):
        cell = Cell(tuple(NASBENCH101.ops[i] for i in o[:v]), a[:v, :v])
        out.append(cell.hash(NASBENCH101))
    return out


@pytest.mark.slow
def test_every_nasbench101_hash_recomputes_exactly(nb101):
    chunks = np.array_split(np.arange(len(nb101)), 16)
    work = [(nb101.ops[c], nb101.adjacency[c], nb101.num_vertices[c]) for c in chunks]
    with ProcessPoolExecutor(max_workers=2) as pool:
        hashes = [h for part in pool.map(_hash_chunk, work) for h in part]
    mismatches = int((np.array(hashes) != nb101.hashes).sum())
    assert mismatches == 0, f"{mismatches} of {len(nb101)} hashes differ"


def test_nats_node_form_counts_and_merge_rule(nats, data_dir):
    s = nats.summary()
    assert s["architectures"] == 15_625
    assert s["architectures_without_path"] == 341
    assert s["unique_node_form_graphs"] == len(nats) == 5_256
    assert abs(s["best_accuracy"] - 94.3733) < 1e-3
    assert int(nats.extra["members"].sum()) == 15_625 - 341
    unpruned = load_benchmark("natsbench", "cifar10", data_dir=data_dir, pruning="none")
    assert len(unpruned) == 7_716
    # merged accuracy = mean over member architectures
    table = pd.read_parquet(data_dir / "natsbench_tss.parquet")
    cell = natsbench.arch_to_cell(table.arch_str[0])
    h = cell.hash(NATSBENCH)
    members = [
        a
        for a, arch in zip(table.cifar10_test_acc, table.arch_str, strict=True)
        if (c := natsbench.arch_to_cell(arch)) is not None and c.hash(NATSBENCH) == h
    ]
    assert nats.accuracy[nats.lookup(h)] == pytest.approx(np.mean(members))


def test_nats_conversion_rule_on_a_hand_built_cell():
    # node1 = conv3x3(in); node2 = skip(in) + avgpool(node1); node3 = none(in) + conv1x1(node1)
    # + skip(node2): output sums conv1x1, input (via the skips) and avgpool.
    arch = "|nor_conv_3x3~0|+|skip_connect~0|avg_pool_3x3~1|+|none~0|nor_conv_1x1~1|skip_connect~2|"
    cell = natsbench.arch_to_cell(arch)
    assert cell.ops == ("input", "nor_conv_3x3", "avg_pool_3x3", "nor_conv_1x1", "output")
    expected = {(0, 1), (1, 2), (1, 3), (3, 4), (0, 4), (2, 4)}
    assert {tuple(e) for e in np.argwhere(cell.adjacency)} == expected
    # an op node whose output never reaches the output is pruned
    dead = "|nor_conv_3x3~0|+|nor_conv_3x3~0|none~1|+|skip_connect~0|none~1|nor_conv_1x1~2|"
    assert natsbench.arch_to_cell(dead).ops == ("input", "nor_conv_3x3", "nor_conv_1x1", "output")
    assert natsbench.arch_to_cell(dead, pruning="none").num_vertices == 5
    assert natsbench.arch_to_cell("|none~0|+|none~0|none~1|+|none~0|none~1|none~2|") is None
    with pytest.raises(BenchmarkError, match="malformed NATS arch string"):
        natsbench.arch_to_cell("|conv7x7~0|+|none~0|none~1|+|none~0|none~1|none~2|")


def test_official_nats_reader_agrees_with_shared_table(data_dir, tmp_path):
    fixture = data_dir / "natsbench_official_fixture" / natsbench.OFFICIAL_DIR_NAME
    official = natsbench.read_official(fixture, indices=[0, 11, 284])
    table = pd.read_parquet(data_dir / "natsbench_tss.parquet").set_index("index")
    for _, row in official.iterrows():
        ref = table.loc[row["index"]]
        assert row.arch_str == ref.arch_str
        for col in (
            "cifar10_test_acc",
            "cifar100_test_acc",
            "imagenet16_test_acc",
            "cifar10_valid_acc",
        ):
            assert row[col] == pytest.approx(ref[col], abs=1e-6), (row["index"], col)
    # the authors' label: the 12-epoch schedule (the API's default hp), official values
    assert official["cifar10_hp12_test_acc"].tolist() == [69.55, 74.0, 79.46]
    assert official["cifar100_hp12_test_acc"].notna().all()
    for _, row in official.iterrows():  # the seed mean of the per-seed values
        assert row["cifar10_hp12_test_acc"] == pytest.approx(
            np.mean(row["cifar10_hp12_test_acc_seeds"])
        )
    # a label option reads them: a table of the three records, labelled by 12 epochs
    path = tmp_path / "three.parquet"
    official.to_parquet(path)
    bench = natsbench.load(path, "cifar10", label="cifar10_hp12_test_acc")
    assert bench.label == "cifar10_hp12_test_acc"
    assert sorted(bench.accuracy.tolist()) == [69.55, 74.0, 79.46]
    with pytest.raises(BenchmarkError, match="cifar10_hp12_test_acc"):  # the shared table has none
        natsbench.load(data_dir / "natsbench_tss.parquet", "cifar10", label="cifar10_hp12_test_acc")
    with pytest.raises(BenchmarkError, match="no 200-epoch record for architecture 1"):
        natsbench.read_official(fixture, datasets=("cifar10",), indices=[1])


def test_splits_are_seeded_and_remove_the_best(nats):
    a = nats.split(top_n_removed=10, train_fraction=0.75, seed=3)
    b = nats.split(top_n_removed=10, train_fraction=0.75, seed=3)
    c = nats.split(top_n_removed=10, train_fraction=0.75, seed=4)
    assert np.array_equal(a.train, b.train) and not np.array_equal(a.train, c.train)
    n = len(nats)
    assert len(a.removed_top) == int(np.ceil(n * 0.1))
    assert nats.accuracy[a.removed_top].min() >= nats.accuracy[a.train].max()
    assert len(a.train) == round((n - len(a.removed_top)) * 0.75)
    assert len(set(a.train) | set(a.held_out) | set(a.removed_top)) == n
    strong = nats.accuracy[a.train][a.strong]
    weak = nats.accuracy[a.train][~a.strong]
    assert strong.min() >= weak.max() and abs(len(strong) - len(weak)) <= 1
    assert set(a.removed_top) == {nats.lookup(h) for h in nats.top_hashes(10)}


def test_split_of_partially_labelled_table_uses_labelled_cells(nb101):
    s = nb101.split(top_n_removed=10, seed=0)
    used = np.concatenate([s.train, s.held_out, s.removed_top])
    assert len(used) == nb101.num_labelled == 30_267 and nb101.labelled[used].all()


def _records_from_table(nb101, rows):
    recs = []
    for r in rows:
        cell = nb101.cell(int(r))
        for k in range(3):
            recs.append(
                NB101Record(
                    module_hash=str(nb101.hashes[r]),
                    epochs=108,
                    ops=cell.ops,
                    adjacency=tuple(int(x) for x in cell.adjacency.reshape(-1)),
                    trainable_parameters=int(nb101.extra["params"].iloc[r]),
                    training_time=1000.0 + k,
                    train_accuracy=1.0,
                    validation_accuracy=0.90 + 0.01 * k,
                    test_accuracy=0.89 + 0.01 * k,
                )
            )
    return recs


def test_tfrecord_round_trip_truncation_and_crc(nb101, tmp_path):
    rows = np.flatnonzero(nb101.labelled)[:20]
    recs = _records_from_table(nb101, rows)
    path = tmp_path / "nasbench_only108.tfrecord"
    write_records(path, [encode_record(r) for r in recs])
    assert list(read_nasbench_tfrecord(path)) == recs

    out = tmp_path / "nasbench101.parquet"
    nasbench101.convert(path, out)
    bench = nasbench101.load(out)
    assert bench.label == "test_acc_108_mean"
    assert len(bench) == 20 and set(bench.hashes) == set(nb101.hashes[rows])
    assert np.allclose(bench.accuracy, 90.0)  # mean of 0.89, 0.90, 0.91, in percent
    for i in range(len(bench)):
        row = nb101.lookup(bench.hashes[i])
        assert bench.cell(i) == nb101.cell(row)
        assert bench.extra["params"].iloc[i] == nb101.extra["params"].iloc[row]
    direct = nasbench101.load(path, label="val_acc_108_r2")  # the reader feeds load directly
    assert np.allclose(direct.accuracy, 91.0)

    data = path.read_bytes()
    (tmp_path / "trunc.tfrecord").write_bytes(data[:-7])
    with pytest.raises(TFRecordError, match="truncated"):
        list(read_nasbench_tfrecord(tmp_path / "trunc.tfrecord"))
    bad = bytearray(data)
    bad[40] ^= 0xFF  # inside the first record's data
    (tmp_path / "crc.tfrecord").write_bytes(bytes(bad))
    with pytest.raises(TFRecordError, match="corrupted data CRC"):
        list(read_nasbench_tfrecord(tmp_path / "crc.tfrecord"))


def test_missing_data_dir_and_malformed_file_are_clear_errors(tmp_path, monkeypatch):
    monkeypatch.setenv("GNN2GNN_DATA", str(tmp_path / "nope"))
    with pytest.raises(DataNotFoundError, match="GNN2GNN_DATA: .*nope"):
        resolve_data_dir()
    monkeypatch.setenv("GNN2GNN_DATA", str(tmp_path))
    with pytest.raises(BenchmarkError, match="no NAS-Bench-101 file"):
        load_benchmark("nasbench101", cache=False)
    (tmp_path / "nasbench101.parquet").write_text("not parquet")
    with pytest.raises(BenchmarkError, match="not a readable Parquet file"):
        load_benchmark("nasbench101", cache=False)
    pd.DataFrame({"hash": ["x"]}).to_parquet(tmp_path / "nasbench101.parquet")
    with pytest.raises(BenchmarkError, match="expected NAS-Bench-101 columns"):
        load_benchmark("nasbench101", cache=False)


def _cli(*args, env=None):
    return subprocess.run(
        [sys.executable, "-m", "pipeline.cli", *args], capture_output=True, text=True, env=env
    )


def test_cli_info_and_lookup_json(data_dir):
    res = _cli(
        "data",
        "info",
        "--benchmark",
        "natsbench",
        "--dataset",
        "ImageNet16-120",
        "--json",
        "--data-dir",
        str(data_dir),
    )
    assert res.returncode == 0, res.stderr
    info = json.loads(res.stdout)
    assert info["label"] == "imagenet16_test_acc" and info["unique_node_form_graphs"] == 5256
    assert abs(info["best_accuracy"] - 47.3111) < 1e-3
    # the Inception-like cell plus a dead conv1x1 vertex (fed by input, feeding nothing):
    # 8 vertices as given, pruned to 7 before hashing
    adj = np.zeros((8, 8), dtype=int)
    for s_, t in [(0, 1), (0, 2), (0, 3), (0, 5), (1, 7), (2, 7), (3, 4), (4, 7), (5, 7), (0, 6)]:
        adj[s_, t] = 1
    ops = (
        "input,conv1x1-bn-relu,conv3x3-bn-relu,conv3x3-bn-relu,conv3x3-bn-relu,maxpool3x3,"
        "conv1x1-bn-relu,output"
    )
    res = _cli(
        "data",
        "lookup",
        "--benchmark",
        "nasbench101",
        "--json",
        "--ops",
        ops,
        "--matrix",
        "".join(map(str, adj.reshape(-1))),
        "--data-dir",
        str(data_dir),
    )
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert out["pruned"] and out["num_vertices"] == 7
    assert out["valid"] and out["in_table"] and out["hash"] == "28cfc7874f6d200472e1a9dcd8650aa0"
    assert out["params"] == 2_694_282 and out["label"] == "val_acc_108_mean"


def test_cli_bad_input_exits_2_without_traceback(data_dir):
    res = _cli(
        "data",
        "lookup",
        "--benchmark",
        "nasbench101",
        "--ops",
        "input,conv9x9,output",
        "--matrix",
        "011001000",
        "--data-dir",
        str(data_dir),
    )
    assert res.returncode == 2
    assert "unknown op 'conv9x9'" in res.stderr and "Traceback" not in res.stderr


def test_nasbench101_seen_mean_label_is_the_mean_of_the_seen_repeats(nb101, tmp_path):
    """``val_acc_108_mean`` on the shared table: per cell the mean of ``val_acc_108_seen``
    (and how many), NaN where none was seen; the default label where the table has the
    seen repeats (issue 25), r1 chosen by name."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    full = pq.read_table(nb101.source)
    rows = [0, 1, 2, 3]
    small = full.take(rows)
    seen = [[0.90, 0.92, 0.94], [0.80], [], None]
    small = small.set_column(
        small.column_names.index("val_acc_108_seen"),
        "val_acc_108_seen",
        pa.array(seen, type=pa.list_(pa.float32())),
    )
    path = tmp_path / "nasbench101.parquet"
    pq.write_table(small, path)
    assert nasbench101.load(path).label == "val_acc_108_mean"
    assert nasbench101.load(path, label="val_acc_108_r1").label == "val_acc_108_r1"
    bench = nasbench101.load(path, label="val_acc_108_mean")
    want = [np.mean(np.float32([0.90, 0.92, 0.94]).astype(np.float64)), np.float32(0.80)]
    np.testing.assert_allclose(bench.accuracy[:2], 100.0 * np.array(want), rtol=1e-12)
    assert np.isnan(bench.accuracy[2:]).all()
    assert bench.extra["val_acc_108_repeats"].tolist() == [3, 1, 0, 0]
    assert "val_acc_108_mean" in bench.notes["labels_available"]
    # the shared table: every cell seen in any repeat is labelled, the small ones included
    mean = load_benchmark("nasbench101", data_dir=nb101.source.parent, label="val_acc_108_mean")
    assert mean.num_labelled == 30_267 and mean.label == "val_acc_108_mean"
    r1 = load_benchmark("nasbench101", data_dir=nb101.source.parent, label="val_acc_108_r1")
    assert r1.num_labelled == 30_001 and r1.label == "val_acc_108_r1"
    tiny = r1.num_vertices <= 3
    assert int(tiny.sum()) == 7
    assert int(mean.labelled[tiny].sum()) == 7 and int(r1.labelled[tiny].sum()) == 2
    both = r1.labelled & mean.labelled
    single = (mean.extra["val_acc_108_repeats"] == 1).to_numpy() & both
    np.testing.assert_allclose(mean.accuracy[single], r1.accuracy[single], rtol=1e-12)
