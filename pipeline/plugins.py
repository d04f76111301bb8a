"""What installed packages plug in: the objects of an entry-point group, loaded once each."""

from __future__ import annotations

import warnings
from importlib.metadata import entry_points
from typing import Any


def load_group(group: str, what: str) -> dict[str, Any]:
    """Name -> loaded object of every entry point of ``group``, in name order. One broken
    plugin does not stop the others: it is left out with a warning naming it (``what``)."""
    found: dict[str, Any] = {}
    for ep in entry_points(group=group):
        if ep.name in found:
            continue  # the same distribution seen twice on sys.path
        try:
            found[ep.name] = ep.load()
        except Exception as exc:
            warnings.warn(f"{what} {ep.name} ({ep.value}) not loaded: {exc!r}", stacklevel=3)
    return dict(sorted(found.items()))
