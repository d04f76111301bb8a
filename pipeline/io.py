"""Atomic file writes: a crash never leaves a half-written file."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq


def atomic_write_parquet(frame: pd.DataFrame | pa.Table, path: Path) -> None:
    """Write to a temporary file beside ``path`` then rename: never a half-written file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    table = (
        frame if isinstance(frame, pa.Table) else pa.Table.from_pandas(frame, preserve_index=False)
    )
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        pq.write_table(table, tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json(obj, path: Path) -> None:
    """Atomic JSON write."""
    import json

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    with os.fdopen(fd, "w") as fh:
        json.dump(obj, fh, indent=2, default=str)
    os.replace(tmp, path)


def write_trial_outputs(out: Path, config: dict, result) -> Path:
    """One trial's files: generated.parquet, epochs.parquet, result.json, model.pt, and one
    ``<name>.parquet`` per extra table of the result (``result.frames``, e.g. latent)."""
    import torch

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_parquet(pd.DataFrame(result.generated), out / "generated.parquet")
    atomic_write_parquet(pd.DataFrame(result.epochs), out / "epochs.parquet")
    for name, rows in getattr(result, "frames", {}).items():
        atomic_write_parquet(pd.DataFrame(rows), out / f"{name}.parquet")
    fd, tmp = tempfile.mkstemp(dir=out, prefix=".model.pt.", suffix=".tmp")
    os.close(fd)
    torch.save(result.state, tmp)
    os.replace(tmp, out / "model.pt")
    write_json(
        {
            "config": config,
            "full_config": result.full_config,
            "info": result.info,
            "metrics": result.metrics,
        },
        out / "result.json",
    )
    return out
