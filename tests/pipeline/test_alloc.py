"""The malloc settings for large tensors: a 16 MB block comes from the heap and stays there
once freed, where glibc's default gives it fresh mmap pages; off on request."""

from __future__ import annotations

import ctypes
import os
import subprocess
import sys

import pytest

CHECK = """
import ctypes
from pipeline.alloc import keep_large_allocations

NAMES = "arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks fordblks keepcost"

class Info(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in NAMES.split()]

libc = ctypes.CDLL("libc.so.6")
libc.mallinfo2.restype = Info
libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
libc.free.argtypes = [ctypes.c_void_p]
applied = keep_large_allocations()
block = libc.malloc(16 << 20)
mapped = libc.mallinfo2().hblkhd >> 20  # MB in mmapped blocks
libc.free(block)
kept = libc.mallinfo2().fordblks >> 20  # MB free in the heap, kept for reuse
print(applied, keep_large_allocations(), mapped, kept >= 16)
"""


def _glibc_mallinfo2() -> bool:
    try:
        return hasattr(ctypes.CDLL("libc.so.6"), "mallinfo2")
    except OSError:
        return False


def _run(env: dict) -> list[str]:
    out = subprocess.run(
        [sys.executable, "-c", CHECK], env={**os.environ, **env}, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    return out.stdout.split()


@pytest.mark.skipif(not _glibc_mallinfo2(), reason="glibc >= 2.33 (mallinfo2)")
def test_large_blocks_come_from_the_heap_and_stay_unless_turned_off():
    assert _run({"GNN2GNN_MALLOC": ""}) == ["True", "True", "0", "True"]
    applied, again, mapped, kept = _run({"GNN2GNN_MALLOC": "default"})
    assert (applied, again, kept) == ("False", "False", "False") and int(mapped) >= 16
