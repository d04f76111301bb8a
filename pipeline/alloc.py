"""glibc malloc settings that keep large tensors off fresh ``mmap`` pages (CPU speed).

PyTorch's CPU tensors come straight from ``malloc``. glibc serves large blocks from new
``mmap`` pages and hands them back on free, so every large tensor is faulted in page by page
again: generating 4,096 cells touches tens of MB of fresh pages per call. Serving blocks
up to 32 MB from the heap and keeping freed memory (``M_MMAP_THRESHOLD``,
``M_TRIM_THRESHOLD``, ``M_TOP_PAD``) makes generation ~1.7x faster on one thread
(``benchmarks/train_throughput.py``; docs/speed.md). Nothing computed changes: only where
the memory comes from. The cost: a process keeps its peak heap instead of returning it.

It applies to glibc (Linux) and is a no-op elsewhere; ``GNN2GNN_MALLOC=default`` turns it
off (forwarded to Ray workers). Applied by the CLI and by every Ray Tune trial
(:func:`pipeline.sweep.worker.tune_entry`); not by plain Ray tasks (a paper's pretraining),
whose reused workers would keep their peak heap while idle. PyTorch's CPU tuning guide gets the
same effect by preloading jemalloc or tcmalloc.
"""

from __future__ import annotations

import ctypes
import os
import sys

M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_THRESHOLD = -1, -2, -3  # glibc's mallopt parameters
SETTINGS = ((M_MMAP_THRESHOLD, 32 << 20), (M_TRIM_THRESHOLD, 1 << 30), (M_TOP_PAD, 64 << 20))

_applied: bool | None = None


def keep_large_allocations() -> bool:
    """Apply the settings once per process; True when they are in force."""
    global _applied
    if _applied is None:
        _applied = _apply()
    return _applied


def _apply() -> bool:
    if os.environ.get("GNN2GNN_MALLOC") == "default" or not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (musl, ...)
        return False
    done = [mallopt(param, value) == 1 for param, value in SETTINGS]  # every one attempted
    return all(done)
