"""Benchmark rows of generated graphs on the device: no host round trip in a training step.

:class:`RowLookup` gives, for a batch of generated :class:`~pipeline.models.Graphs`, each
graph's row in a benchmark table (-2: not a valid cell, -1: a valid cell the table lacks),
exactly as :meth:`pipeline.decode.CellDecoder.rows` does with Python hashing, but with
tensor ops only:

1. **Validity** as :meth:`pipeline.cells.Cell.validity_error` decides it, on the present
   slots (op code < K): input first and output last and nowhere else, every vertex on an
   input-to-output path (forward and backward reachability by boolean matrix products),
   at most ``max_vertices`` vertices and ``max_edges`` edges.
2. **A canonical key**: the graph is laid out as input, interior vertices in order, absent
   slots, output; its key is the smallest encoding (op codes of the middle slots, then the
   upper-triangular adjacency bits) over the permutations of the middle slots that keep
   the adjacency upper-triangular. Isomorphic cells get the same key and others different
   ones, so the key plays the role of the official hash.
3. **The row**: ``searchsorted`` in the sorted canonical keys of every benchmark row, built
   once per (benchmark, slot count) and cached on disk. Rows sharing a key (isomorphic
   cells) resolve to the last one, as the hash index does.

The permutations are (N-2)!: 120 for NAS-Bench-101 (N = 7), 720 for NATS-Bench (N = 8).
"""

from __future__ import annotations

import hashlib
import itertools
from functools import lru_cache

import numpy as np
import torch

from pipeline.spaces import SearchSpace

NO_KEY = torch.iinfo(torch.int64).max  # never the key of a valid cell
BLOCK = 1 << 23  # elements of the B x P x N x N permuted adjacency computed at once


@lru_cache(maxsize=4)
def _layout(n: int, k: int) -> dict[str, torch.Tensor]:
    """Permutations of the middle slots (input and output fixed) and the encoding weights."""
    middle = list(range(1, n - 1))
    perms = torch.tensor([[0, *p, n - 1] for p in itertools.permutations(middle)])
    iu = torch.triu_indices(n, n, 1)
    return {
        "perms": perms,  # [P, N]
        "iu": iu,
        "tril": torch.tril(torch.ones(n, n, dtype=torch.bool)),
        "bit_w": torch.as_tensor(1 << np.arange(iu.shape[1], dtype=np.int64)),
        # op codes of the middle slots, most significant first (lexicographic order)
        "op_w": torch.as_tensor((k + 1) ** np.arange(n - 3, -1, -1, dtype=np.int64)),
        "shift": torch.tensor(1 << iu.shape[1], dtype=torch.int64),
    }


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
    fwd = slots == first[:, None]
    bwd = slots == last[:, None]
    a = adj.float()
    for _ in range(n):
        fwd = fwd | (torch.bmm(fwd.float()[:, None, :], a).squeeze(1) > 0)
        bwd = bwd | (torch.bmm(a, bwd.float()[:, :, None]).squeeze(2) > 0)
    ok &= ((fwd & bwd) | ~present).all(1)
    ok &= present.sum(1) <= space.max_vertices
    if space.max_edges is not None:
        ok &= adj.sum((1, 2)) <= space.max_edges
    return ok


def _normalise(codes: torch.Tensor, adj: torch.Tensor, k: int):
    """Lay each graph out as input, interior in order, absent slots, output."""
    n = codes.shape[1]
    slots = torch.arange(n, device=codes.device).expand_as(codes)
    rank = torch.where(codes == 0, 0, n + slots)
    rank = torch.where(codes >= k, 2 * n + slots, rank)
    rank = torch.where(codes == k - 1, 3 * n, rank)
    order = rank.argsort(1)
    codes = codes.gather(1, order)
    adj = adj.gather(1, order[:, :, None].expand(-1, n, n))
    adj = adj.gather(2, order[:, None, :].expand(-1, n, n))
    return codes, adj


def canonical_keys(codes: torch.Tensor, adj: torch.Tensor, space: SearchSpace) -> torch.Tensor:
    """[B] int64 canonical key of valid graphs, :data:`NO_KEY` for invalid ones.

    ``codes`` [B, N] int64 op codes (K = absent), ``adj`` [B, N, N] bool (upper triangle
    used)."""
    k = space.num_ops
    n = codes.shape[1]
    lay = {key: t.to(codes.device) for key, t in _layout(n, k).items()}
    adj = torch.triu(adj, 1)
    p = lay["perms"]
    chunk = max(1, BLOCK // (len(p) * n * n))
    out = torch.full((len(codes),), NO_KEY, dtype=torch.int64, device=codes.device)
    for s in range(0, len(codes), chunk):
        c, a = codes[s : s + chunk], adj[s : s + chunk]
        valid = _valid(c, a, space)
        present = c < k
        a = a & present[:, :, None] & present[:, None, :]
        c, a = _normalise(torch.where(present, c, k), a, k)
        ap = a[:, p[:, :, None], p[:, None, :]]  # [b, P, N, N]
        topo = ~(ap & lay["tril"]).any((2, 3))  # the permutation keeps it upper-triangular
        bits = (ap[:, :, lay["iu"][0], lay["iu"][1]].long() * lay["bit_w"]).sum(-1)
        ops = (c[:, p[:, 1:-1]] * lay["op_w"]).sum(-1)  # [b, P]
        enc = torch.where(topo, ops * lay["shift"] + bits, NO_KEY)
        out[s : s + chunk] = torch.where(valid, enc.min(1).values, NO_KEY)
    return out


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
    from pipeline.io import atomic_path
    from pipeline.paths import cache_dir

    rows = hashlib.sha256("".join(bench.hashes.tolist()).encode()).hexdigest()[:12]
    path = cache_dir() / f"rowkeys-{bench.name}-{bench.fingerprint}-{rows}-n{n}-v1.npy"
    if path.is_file():
        keys = np.load(path)
        if len(keys) == len(bench):
            return keys
    keys = table_keys(bench, n)
    with atomic_path(path) as tmp:
        np.save(tmp, keys)
    return keys
