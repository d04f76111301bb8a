"""The device lookup of generated cells' benchmark rows gives exactly the host path's rows."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pipeline.nas.cells import table_to_dense
from pipeline.nas.decode import CellDecoder
from pipeline.nas.graphs import Graphs
from pipeline.nas.labels import RowLookup


def _perturbed(codes: torch.Tensor, adj: torch.Tensor, k: int, seed: int):
    """Variants of cells: one edge flipped in half of them, then the middle slots shuffled
    where the result stays upper-triangular (isomorphic cells in other slot orders, empty
    slots between vertices)."""
    g = torch.Generator().manual_seed(seed)
    b, n = codes.shape
    codes, adj = codes.clone(), adj.clone()
    i = torch.arange(b)
    u, v = torch.randint(0, n, (b,), generator=g), torch.randint(0, n, (b,), generator=g)
    lo, hi = torch.minimum(u, v), torch.maximum(u, v)
    flip = (torch.rand(b, generator=g) < 0.5) & (lo < hi)
    adj[i[flip], lo[flip], hi[flip]] = 1 - adj[i[flip], lo[flip], hi[flip]]
    middle = torch.stack([torch.randperm(n - 2, generator=g) + 1 for _ in range(b)])
    perm = torch.cat([torch.zeros(b, 1, dtype=torch.long), middle, torch.full((b, 1), n - 1)], 1)
    c2 = codes.gather(1, perm)
    a2 = adj.gather(1, perm[:, :, None].expand(-1, n, n)).gather(
        2, perm[:, None, :].expand(-1, n, n)
    )
    upper = ~torch.tril(a2.bool(), -1).any((1, 2))
    codes[upper], adj[upper] = c2[upper], a2[upper]
    return codes, adj


def _random(b: int, n: int, k: int, seed: int):
    g = torch.Generator().manual_seed(seed)
    codes = torch.randint(0, k + 1, (b, n), generator=g)
    adj = (torch.rand(b, n, n, generator=g) < 0.35).float().triu(1)
    return codes, adj


def _graphs(codes: torch.Tensor, adj: torch.Tensor, k: int) -> Graphs:
    x = torch.nn.functional.one_hot(codes.clamp(max=k - 1), k).float()
    return Graphs(x, adj.float(), codes < k)


@pytest.mark.parametrize("name", ["natsbench", "nasbench101"])
def test_device_rows_equal_the_host_rows(name, nats, nb101):
    bench = nats if name == "natsbench" else nb101
    n = bench.space.max_vertices
    k = bench.space.num_ops
    lookup, decoder = RowLookup(bench, n), CellDecoder(bench.space, n)
    tabled = CellDecoder(bench.space, n, table=bench)
    rows = np.arange(len(bench))
    x, a, m = table_to_dense(bench.ops, bench.adjacency, bench.num_vertices, k, n)
    # every cell of the table (so every training cell) is found at its own row
    got = torch.cat(
        [
            lookup.rows(x[s : s + 8192], a[s : s + 8192], m[s : s + 8192])
            for s in range(0, len(rows), 8192)
        ]
    )
    assert np.array_equal(got.numpy(), rows)
    # isomorphic variants, edge flips and random graphs: the host path's rows exactly
    sample = np.random.default_rng(0).choice(len(rows), 3000, replace=False)
    codes = torch.where(m[sample], x[sample].argmax(-1), k)
    seen = np.zeros(3, dtype=int)  # invalid, valid outside the table, a row
    for seed in range(3):
        for c, adj in (_perturbed(codes, a[sample], k, seed), _random(3000, n, k, seed)):
            graphs = _graphs(c, adj, k)
            want = decoder.rows(graphs, bench.index)
            assert np.array_equal(lookup.rows(*graphs).numpy(), want), seed
            # the decoder's batch path through the table: the Python path's hashes exactly
            # (on a complete table a graph outside it is no cell of the space: None)
            fast, slow = tabled.decode(graphs), decoder.decode(graphs)
            expected = [h if bench.in_space(h) else None for h in slow.hashes]
            assert fast.hashes == expected and fast.valid.tolist() == [
                h is not None for h in expected
            ]
            seen += [(want == -2).sum(), (want == -1).sum(), (want >= 0).sum()]
    # every kind of answer was compared (NAS-Bench-101's table holds every valid cell)
    assert seen[0] > 100 and seen[2] > 100 and (seen[1] > 100 or name == "nasbench101"), seen


@pytest.mark.parametrize("name", ["natsbench", "nasbench101"])
def test_keys_partition_the_table_as_the_official_hash_does(name, nats, nb101):
    """One key per row and one row per key over the whole table (every row has its own
    official hash), the same keys in another slot count, and keys of isomorphic layouts
    equal."""
    from pipeline.nas.labels import table_keys

    bench = nats if name == "natsbench" else nb101
    assert len(set(bench.hashes.tolist())) == len(bench)
    n = bench.space.max_vertices
    keys = table_keys(bench, n)
    assert len(np.unique(keys)) == len(bench)
    assert np.array_equal(table_keys(bench, n + 1), keys)  # an absent slot changes nothing


@pytest.mark.parametrize("name", ["natsbench", "nasbench101"])
def test_a_trial_trains_the_same_with_labels_looked_up_on_the_device(name, data_dir):
    from trainables.gnn2gnn import make_config
    from trainables.gnn2gnn.trial import Trial

    cfg = make_config({"benchmark": name, "profile": "smoke", "data_dir": str(data_dir)})
    assert cfg.valuer_on_generated
    trial = Trial(cfg)
    assert trial.row_lookup is not None  # the default, on the CPU as on CUDA
    device = trial.run()
    host_trial = Trial(cfg)
    host_trial.row_lookup = None  # the per-graph host cache and the official hash instead
    host = host_trial.run()
    for key in ("top10", "mean_acc", "uniqueness", "novelty", "validity"):
        assert device.metrics[key] == host.metrics[key], key
    assert [r["v_loss"] for r in device.epochs] == [r["v_loss"] for r in host.epochs]
