"""Output helpers shared by the commands."""

from __future__ import annotations

import argparse
import json
import sys


def print_result(obj: dict, as_json: bool) -> None:
    """The command's result on stdout: one JSON object, or aligned ``key  value`` lines."""
    if as_json:
        print(json.dumps(obj, default=str))
        return
    width = max(len(k) for k in obj) if obj else 0
    for k, v in obj.items():
        print(f"{k:<{width}}  {v}")


def log(line: str) -> None:
    """Progress for people: stderr, flushed, also with ``--json`` (stdout stays clean)."""
    print(line, file=sys.stderr, flush=True)


def add_forward_credentials(p: argparse.ArgumentParser) -> None:
    """``--forward-credentials``, the one way a driver's storage credentials reach workers."""
    p.add_argument(
        "--forward-credentials",
        action="store_true",
        help="hand this shell's storage credentials (AWS_ACCESS_KEY_ID, ...) to the Ray "
        "workers through an actor of the job, for clusters whose nodes have none; by default "
        "each node uses its own, and no credential is put in Ray's job records "
        "(docs/cluster.md#credentials)",
    )
