"""Output helpers shared by the commands."""

from __future__ import annotations

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
