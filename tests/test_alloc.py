"""The malloc settings for large tensors: in force on glibc, off on request."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

CHECK = "from pipeline.alloc import keep_large_allocations as k; print(k(), k())"


def _run(env: dict) -> str:
    out = subprocess.run(
        [sys.executable, "-c", CHECK], env={**os.environ, **env}, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_large_allocations_stay_on_the_heap_unless_turned_off():
    assert _run({"GNN2GNN_MALLOC": ""}) == "True True"  # applied once, then remembered
    assert _run({"GNN2GNN_MALLOC": "default"}) == "False False"
