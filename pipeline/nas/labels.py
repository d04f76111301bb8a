"""Benchmark rows of generated graphs by tensor ops: no Python hashing, no host round trip.

:class:`RowLookup` gives, for a batch of generated :class:`~pipeline.nas.graphs.Graphs`, each
graph's row in a benchmark table (-2: not a valid cell, -1: a valid cell the table lacks),
exactly as hashing each cell with the official algorithm and looking the hash up does, but
with tensor ops only (on the CPU or on the graphs' GPU):

1. **Validity** as :meth:`pipeline.nas.cells.Cell.validity_error` decides it, on the present
   slots (op code < K): input first and output last and nowhere else, every vertex on an
   input-to-output path (:func:`pipeline.nas.graphs.on_path`: the transitive
   closure by repeated squaring), at most ``max_vertices`` vertices and ``max_edges`` edges.
2. **A canonical key** (:func:`wl_keys`): the official NAS-Bench-101 hash
   (:func:`pipeline.nas.cells.graph_hash`) is a Weisfeiler-Lehman hash: V rounds in which each
   vertex's label becomes a hash of (its in-neighbours' labels as a multiset, its
   out-neighbours' as a multiset, its own), then a hash of all labels as a multiset. The
   key runs the same rounds with 64-bit integer mixing instead of md5 and sums of mixed
   labels for the multisets, on the whole batch at once. Two cells get the same key
   exactly when they get the same official hash, barring a 64-bit collision: checked on
   every row of both benchmarks (each key once, one key per hash) and on generated batches
   (``tests/pipeline/nas/test_labels.py``).
3. **The row**: ``searchsorted`` in the sorted keys of every benchmark row, built once per
   (benchmark, slot count) and cached on disk. Rows sharing a key (isomorphic cells)
   resolve to the last one, as the hash index does.

On one CPU thread, keys of 4,096 generated NATS graphs take ~20 ms (the previous
canonical form, the minimum over the 720 slot permutations, took ~1.7 s), and a training
step's 32 graphs 1.2 ms, where the per-graph cache of :class:`pipeline.nas.decode.CellDecoder`
took 3-4 ms (it misses on most generated graphs).
"""

from __future__ import annotations

import hashlib

import numpy as np
import torch

from pipeline.nas.graphs import on_path
from pipeline.nas.spaces import SearchSpace

NO_KEY = torch.iinfo(torch.int64).max  # never the key of a valid cell


def _i64(x: int) -> int:
    """An unsigned 64-bit constant as the signed int64 torch stores."""
    x &= (1 << 64) - 1
    return x - (1 << 64) if x >= 1 << 63 else x


# splitmix64's multipliers and four odd mixing constants
_M1, _M2 = _i64(0xBF58476D1CE4E5B9), _i64(0x94D049BB133111EB)
_K = [_i64(c) for c in (0x9E3779B97F4A7C15, 0xC2B2AE3D27D4EB4F, 0x165667B19E3779F9,
                         0xD6E8FEB86659FD93)]  # fmt: skip


def _shr(x: torch.Tensor, s: int) -> torch.Tensor:
    """Logical right shift of int64 (torch's ``>>`` is arithmetic)."""
    return (x >> s) & ((1 << (64 - s)) - 1)


def _mix(x: torch.Tensor) -> torch.Tensor:
    """splitmix64's finaliser: a bijection of 64-bit words that spreads every input bit."""
    x = (x ^ _shr(x, 30)) * _M1
    x = (x ^ _shr(x, 27)) * _M2
    return x ^ _shr(x, 31)


def wl_keys(codes: torch.Tensor, adj: torch.Tensor, k: int) -> torch.Tensor:
    """[B] int64 Weisfeiler-Lehman key of each graph's present slots (see the module
    docstring): ``codes`` [B, N] op codes (K = absent), ``adj`` [B, N, N] bool (u -> v).
    Integer arithmetic wraps modulo 2^64 by design.

    Written for few kernel calls (a batch of 32 graphs is a training step's): a round's
    mixed labels serve both the key of that round and the next round's messages, the two
    message sums are one product-and-sum and one mix."""
    n = codes.shape[1]
    present = codes < k
    a = (adj & present[:, :, None] & present[:, None, :]).to(torch.int64)
    both = torch.stack([a.transpose(1, 2), a])  # [2, B, N, N]: from predecessors, successors
    pm = present.to(torch.int64)
    h = _mix(a.sum(2) * _K[0] + a.sum(1) * _K[1] + (codes + 1) * _K[2])
    m = _mix(h)
    size = present.sum(1)
    add = torch.tensor([_K[3], 0], device=codes.device).view(2, 1, 1)
    scale = torch.tensor([_K[0], _K[1]], device=codes.device).view(2, 1, 1)
    key = torch.zeros(len(codes), dtype=torch.int64, device=codes.device)
    for r in range(1, n + 1):  # the official hash runs V rounds for a V-vertex cell
        # sum of m_u over u -> v, and of m_w over v -> w (integer sums: any order is exact)
        msg = (both * m[:, None, :]).sum(-1)  # [2, B, N] (no integer matmul on CUDA)
        h = _mix((_mix(msg + add) * scale).sum(0) + h * _K[2])
        m = _mix(h)
        key = torch.where(size == r, (m * pm).sum(1), key)
    return key


def _valid(codes: torch.Tensor, adj: torch.Tensor, space: SearchSpace) -> torch.Tensor:
    """[B] bool: the present slots form a valid cell (see the module docstring)."""
    k = space.num_ops
    n = codes.shape[1]
    present = codes < k
    adj = adj & present[:, :, None] & present[:, None, :]
    slots = torch.arange(n, device=codes.device).expand_as(codes)
    first = torch.where(present, slots, n).min(1).values
    last = torch.where(present, slots, -1).max(1).values
    is_in, is_out = codes == 0, codes == k - 1
    ok = present.any(1)
    ok &= (is_in.sum(1) == 1) & (is_out.sum(1) == 1)
    idx = first.clamp(max=n - 1)[:, None]
    ok &= is_in.gather(1, idx).squeeze(1) & is_out.gather(1, last.clamp(min=0)[:, None]).squeeze(1)
    on = on_path(adj.float(), slots == first[:, None], slots == last[:, None])
    ok &= (on | ~present).all(1)
    ok &= present.sum(1) <= space.max_vertices
    if space.max_edges is not None:
        ok &= adj.sum((1, 2)) <= space.max_edges
    return ok


def canonical_keys(codes: torch.Tensor, adj: torch.Tensor, space: SearchSpace) -> torch.Tensor:
    """[B] int64 key of valid graphs (:func:`wl_keys`), :data:`NO_KEY` for invalid ones.

    ``codes`` [B, N] int64 op codes (K = absent), ``adj`` [B, N, N] bool (upper triangle
    used)."""
    adj = torch.triu(adj, 1)
    key = wl_keys(codes, adj, space.num_ops)
    return torch.where(_valid(codes, adj, space), key, NO_KEY)


def graph_codes(x: torch.Tensor, adj: torch.Tensor, mask: torch.Tensor, k: int):
    """Generated graphs (one-hot or relaxed ops, soft adjacency, node mask) -> op codes
    (K = absent) and boolean adjacency, as :meth:`CellDecoder.keys` reads them."""
    codes = torch.where(mask, x.argmax(-1), torch.full_like(mask, k, dtype=torch.long))
    return codes, adj > 0.5


def table_keys(bench, n: int) -> np.ndarray:
    """[R] canonical keys of every row of a benchmark laid out in ``n`` slots."""
    k = bench.space.num_ops
    r, vmax = bench.ops.shape
    if vmax > n:
        raise ValueError(f"cells of up to {vmax} vertices do not fit in {n} slots")
    codes = np.full((r, n), k, dtype=np.int64)
    codes[:, :vmax] = np.where(bench.ops >= 0, bench.ops, k)
    adj = np.zeros((r, n, n), dtype=bool)
    adj[:, :vmax, :vmax] = bench.adjacency > 0
    keys = np.empty(r, dtype=np.int64)
    for s in range(0, r, 65536):
        keys[s : s + 65536] = canonical_keys(
            torch.from_numpy(codes[s : s + 65536]), torch.from_numpy(adj[s : s + 65536]),
            bench.space,
        ).numpy()  # fmt: skip
    return keys


class RowLookup:
    """Benchmark rows of generated graphs on the device (see the module docstring)."""

    def __init__(self, bench, n: int, device: torch.device | str = "cpu") -> None:
        self.space = bench.space
        self.k = bench.space.num_ops
        keys = _cached_table_keys(bench, n)
        rows = np.arange(len(keys), dtype=np.int64)
        order = np.lexsort((rows, keys))  # by key, then row: the last row of a key wins
        keys, rows = keys[order], rows[order]
        last = np.append(keys[1:] != keys[:-1], True)
        keys, rows = keys[last], rows[last]
        keep = keys != NO_KEY
        self.keys = torch.as_tensor(keys[keep], device=device)
        self.rows_of_key = torch.as_tensor(rows[keep], device=device)

    def rows(self, x: torch.Tensor, adj: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """[B] int64 on the graphs' device: row, -1 (valid, not in the table), -2 (invalid)."""
        codes, a = graph_codes(x.detach(), adj.detach(), mask, self.k)
        key = canonical_keys(codes, a, self.space)
        pos = torch.searchsorted(self.keys, key).clamp(max=len(self.keys) - 1)
        found = self.keys[pos] == key
        out = torch.where(found, self.rows_of_key[pos], -1)
        return torch.where(key == NO_KEY, -2, out)


def _cached_table_keys(bench, n: int) -> np.ndarray:
    """:func:`table_keys` through the on-disk cache (keyed by the table's fingerprint)."""
    from pipeline.paths import cache_dir
    from pipeline.store.io import atomic_path

    rows = hashlib.sha256("".join(bench.hashes.tolist()).encode()).hexdigest()[:12]
    path = cache_dir() / f"rowkeys-{bench.name}-{bench.fingerprint}-{rows}-n{n}-v2.npy"
    if path.is_file():
        keys = np.load(path)
        if len(keys) == len(bench):
            return keys
    keys = table_keys(bench, n)
    with atomic_path(path) as tmp:
        np.save(tmp, keys)
    return keys
