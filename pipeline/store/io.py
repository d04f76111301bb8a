"""Atomic file writes: a crash never leaves a half-written file.

Every file the project writes goes through :func:`atomic_path`: the writer fills a
temporary file beside the target, which is renamed over the target only when the writer
returned; on an error the temporary file is removed and the target is left as it was.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.errors import UserError


class StorageFullError(UserError, OSError):
    """No space left (or over quota) where a file was being written."""


def storage_full(folder: Path) -> StorageFullError:
    """The error for a full disk under ``folder``: where, and how much space is left."""
    where = Path(folder)
    while not where.exists() and where != where.parent:
        where = where.parent
    usage = shutil.disk_usage(where)
    return StorageFullError(
        f"no space left on the device of {folder} ({usage.free / 1e6:.1f} MB free of "
        f"{usage.total / 1e6:.1f} MB): free some space there, then run the same command "
        "again with --resume (what was written is whole; nothing half-written is kept)"
    )


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """A temporary path beside ``path`` (same suffix, so numpy and torch keep the name),
    renamed over ``path`` when the block ends normally and removed when it raises. A full
    disk raises :class:`StorageFullError` naming the folder and the space left."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(
            dir=path.parent, prefix=f".{path.name}.", suffix=f".tmp{path.suffix}"
        )
        os.close(fd)
    except OSError as exc:
        if exc.errno in FULL:
            raise storage_full(path.parent) from None
        raise
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        if _is_full(exc):
            raise storage_full(path.parent) from None
        raise


FULL = (errno.ENOSPC, errno.EDQUOT)


def _is_full(exc: BaseException) -> bool:
    """An error of a full disk, as OSError or as pyarrow/torch wrap it (their messages)."""
    if isinstance(exc, StorageFullError):
        return False  # already said
    if isinstance(exc, OSError) and exc.errno in FULL:
        return True
    text = str(exc)
    return "No space left on device" in text or "Disk quota exceeded" in text


def atomic_write_parquet(frame: pd.DataFrame | pa.Table, path: Path) -> None:
    """A Parquet file, whole or not at all."""
    table = (
        frame if isinstance(frame, pa.Table) else pa.Table.from_pandas(frame, preserve_index=False)
    )
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)


def write_text(text: str, path: Path) -> Path:
    """A text file (a table, a report), whole or not at all; returns ``path``."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return Path(path)


def write_json(obj, path: Path) -> None:
    """A JSON file (indented), whole or not at all."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, default=str))


def write_trial_outputs(out: Path, config: dict, result) -> Path:
    """One trial's files: epochs.parquet, one ``<name>.parquet`` per table of the result
    (``result.tables``: generated cells, latent, ...), result.json and model.pt."""
    import torch

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_parquet(pd.DataFrame(result.epochs), out / "epochs.parquet")
    for name, rows in result.tables.items():
        atomic_write_parquet(pd.DataFrame(rows), out / f"{name}.parquet")
    with atomic_path(out / "model.pt") as tmp:
        torch.save(result.state, tmp)
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
