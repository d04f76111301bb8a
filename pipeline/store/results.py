"""A sweep's results folder: a dataset of per-trial Parquet parts.

``<results>/<sweep>/trials/<trial_id>.parquet``     the trial's row (config, info, final
                                                    metrics, status), written last
``<results>/<sweep>/epochs/<trial_id>.parquet``     one row per epoch
``<results>/<sweep>/<table>/<trial_id>.parquet``    the trial's tables (``generated`` cells,
                                                    ``latent``, ``reference``, ...)

Each part is written atomically and a trial's row comes last, so the ``trials`` part is
the record of what finished: parts of a trial without one (a crash between the two) are
ignored by every reader and overwritten when the trial runs again. Recording a trial
writes its own parts only, so its cost does not grow with the sweep, and the driver holds
no rows in memory. Readers (:func:`read_trials`, :func:`read_part`) read each folder as
one ``pyarrow.dataset`` dataset with the union of the parts' columns.

A results folder may be a local (or NFS) path or a URI on object storage (``s3://``,
``gs://``; see :mod:`pipeline.store.location`): every function here takes either.

Folders written before the parts layout (``trials.parquet``, ``epochs.parquet``,
``<table>.parquet`` at the sweep's top) are read too; a trial recorded again in the new
layout replaces its old row. Nothing converts them; new trials of a resumed old sweep add
parts beside the old files.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from pipeline.errors import UserError
from pipeline.store.io import atomic_write_parquet
from pipeline.store.location import Location

TRIALS = "trials"

Where = str | os.PathLike | Location  # a local folder or a URI (``s3://...``, ``gs://...``)


TRIAL_COLUMNS = ("trial_id", "status")  # what makes a Parquet file a trial's record


class DamagedPartError(UserError, ValueError):
    """A file among a sweep's parts that is not one: truncated, or written by another tool."""

    def __init__(self, file: Location, why: str) -> None:
        super().__init__(
            f"{file}: not a readable results part ({why}); move it out of the results folder "
            "(`gnn2gnn sweep ... --resume` then runs its trial again)"
        )
        self.file, self.why = file, why


def _files(folder: Location) -> list[Location]:
    """The finished parts of a folder (not the temporary files of a write in progress)."""
    return folder.files(".parquet")


def _schema(file: Location, trial_record: bool = False) -> pa.Schema:
    """The part's schema; DamagedPartError when it has no readable Parquet footer, or (a
    ``trials`` part) lacks the record's columns."""
    try:
        schema = pq.read_schema(file.path, filesystem=file.fs)
    except Exception as exc:  # noqa: BLE001 - truncated or foreign: say which file
        raise DamagedPartError(file, str(exc).splitlines()[0]) from None
    missing = [c for c in TRIAL_COLUMNS if c not in schema.names] if trial_record else []
    if missing:
        raise DamagedPartError(file, f"a Parquet file without the columns {missing}")
    return schema


def damaged_parts(folder: Where) -> dict[str, DamagedPartError]:
    """trial id -> what is wrong, for every damaged part of a sweep folder (any table): the
    footer of every part is read, none of its rows."""
    folder = Location.of(folder)
    out: dict[str, DamagedPartError] = {}
    for sub in folder.dirs():
        for file in _files(sub):
            try:
                _schema(file, sub.name == TRIALS)
            except DamagedPartError as exc:
                out.setdefault(file.stem, exc)
    return out


def read_dataset(files: list[Location], trial_records: bool = False) -> pd.DataFrame:
    """Parquet files (on one filesystem) as one dataset, columns unified (a column one part
    lacks is null). A damaged file raises :class:`DamagedPartError` naming it: nothing is
    dropped from a table without a word. ``trial_records``: the files are ``trials`` parts."""
    if not files:
        return pd.DataFrame()
    fs = files[0].fs
    schemas = [_schema(f, trial_records) for f in files]
    try:
        schema = pa.unify_schemas(schemas, promote_options="permissive").remove_metadata()
        table = ds.dataset(
            [f.path for f in files], schema=schema, format="parquet", filesystem=fs
        ).to_table()
    except (OSError, pa.ArrowTypeError, pa.ArrowInvalid, pa.ArrowNotImplementedError):
        # a column whose type differs between parts (e.g. a number in one, text in
        # another): read part by part and let pandas keep both (object columns); a part
        # whose pages are damaged is named here
        return pd.concat([_read(f) for f in files], ignore_index=True)
    return table.to_pandas()


def _read(file: Location) -> pd.DataFrame:
    try:
        return pq.read_table(file.path, filesystem=file.fs).to_pandas()
    except (OSError, pa.ArrowInvalid) as exc:
        raise DamagedPartError(file, str(exc).splitlines()[0]) from None


def write_parquet(frame: pd.DataFrame | pa.Table, target: Location) -> None:
    """A Parquet file, whole or not at all, locally or on object storage."""
    table = (
        frame if isinstance(frame, pa.Table) else pa.Table.from_pandas(frame, preserve_index=False)
    )
    if target.is_local:
        atomic_write_parquet(table, Path(target.path))
        return
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    target.write_bytes(sink.getvalue().to_pybytes())


def _legacy(folder: Location, name: str) -> pd.DataFrame:
    path = folder / f"{name}.parquet"
    return _read(path) if path.is_file() else pd.DataFrame()


def is_sweep_folder(folder: Where) -> bool:
    folder = Location.of(folder)
    return (folder / "trials.parquet").is_file() or bool(_files(folder / TRIALS))


def sweep_folders(results: Where) -> list[Location]:
    """The sweep folders directly under a results folder (local or a URI), in name order."""
    return [p for p in Location.of(results).dirs() if is_sweep_folder(p)]


def read_trials(folder: Where, skip: set[str] | frozenset = frozenset()) -> pd.DataFrame:
    """Every recorded trial of a sweep, one row each (a part replaces an old-layout row);
    a damaged part raises :class:`DamagedPartError`, except the trial ids in ``skip``."""
    folder = Location.of(folder)
    new = read_dataset([f for f in _files(folder / TRIALS) if f.stem not in skip], True)
    old = _legacy(folder, TRIALS)
    if len(old) and len(new):
        old = old[~old["trial_id"].isin(set(new["trial_id"]))]
    frames = [f for f in (old, new) if len(f)]
    if not frames:
        return pd.DataFrame()
    return pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]


def read_part(folder: Where, name: str, trial_ids: set[str] | None = None) -> pd.DataFrame:
    """A per-trial table (``epochs`` or one a trial returned, such as ``generated``) of the
    finished trials (status ok; or of ``trial_ids``), with a ``trial_id`` column (each
    part's file name; parts written before the column was stored lack it)."""
    folder = Location.of(folder)
    if trial_ids is None:
        trials = read_trials(folder)
        ok = trials[trials["status"] == "ok"] if len(trials) else trials
        trial_ids = set(ok["trial_id"]) if len(ok) else set()
    files = [f for f in _files(folder / name) if f.stem in trial_ids]
    new = read_dataset(files)
    if len(new) and ("trial_id" not in new or new["trial_id"].isna().any()):
        counts = [pq.read_metadata(f.path, filesystem=f.fs).num_rows for f in files]
        new["trial_id"] = [f.stem for f, n in zip(files, counts, strict=True) for _ in range(n)]
    old = _legacy(folder, name)
    if len(old):
        old = old[old["trial_id"].isin(trial_ids - {f.stem for f in files})]
    frames = [f for f in (old, new) if len(f)]
    if not frames:
        return pd.DataFrame()
    return pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]


def part_path(folder: Where, name: str, trial_id: str) -> Location:
    return Location.of(folder) / name / f"{trial_id}.parquet"


def fingerprint(folder: Where) -> str:
    """sha256 (12 hex) of a sweep's trial records: names the exact results a table shows."""
    digest = hashlib.sha256()
    folder = Location.of(folder)
    for path in [folder / "trials.parquet", *_files(folder / TRIALS)]:
        if path.is_file():
            digest.update(path.name.encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


class ResultsStore:
    """The writer of one sweep's results, in a local folder or under a URI (see the
    module docstring)."""

    def __init__(self, folder: Where) -> None:
        self.folder = Location.of(folder)
        self.folder.mkdir()
        # A damaged part (truncated, foreign) makes its trial unfinished: it runs again and
        # its record replaces the part. ``damaged`` says which, for the driver to report.
        self.damaged = damaged_parts(self.folder)
        trials = read_trials(self.folder, skip=set(self.damaged))
        self._finished = (
            set(trials.loc[trials["status"] == "ok", "trial_id"]) if len(trials) else set()
        ) - set(self.damaged)

    def finished_ids(self) -> set[str]:
        """Trials that completed (status ok): a resumed sweep skips them."""
        return set(self._finished)

    def record(self, row: dict, tables: Mapping[str, pd.DataFrame | Path] | None = None) -> None:
        """One trial's tables (name -> rows, or a local Parquet file: ``epochs``, generated
        cells, ...), then its row: the row is stored only once the rest is. A table with no
        rows, or one an earlier attempt wrote and this one lacks, is removed."""
        tid = row["trial_id"]
        tables = dict(tables or {})
        if TRIALS in tables:
            raise ValueError(f"table name {TRIALS!r} is reserved")
        for sub in self.folder.dirs():  # parts of an earlier attempt this one lacks
            if sub.name != TRIALS and sub.name not in tables:
                part_path(self.folder, sub.name, tid).unlink()
        for name, source in tables.items():
            self.record_table(name, tid, source)
        flat = {k: (json.dumps(v) if isinstance(v, dict | list) else v) for k, v in row.items()}
        write_parquet(pd.DataFrame([flat]), part_path(self.folder, TRIALS, tid))
        if row.get("status") == "ok":
            self._finished.add(tid)

    def record_table(self, name: str, tid: str, source: pd.DataFrame | Path) -> Location:
        """A trial's table as ``<folder>/<name>/<trial_id>.parquet`` with a ``trial_id``
        column (none when it has no rows)."""
        out = part_path(self.folder, name, tid)
        table = pq.read_table(source) if isinstance(source, str | os.PathLike) else source
        if not len(table):
            out.unlink()
            return out
        if isinstance(table, pa.Table):
            if "trial_id" in table.column_names:
                table = table.drop_columns(["trial_id"])
            table = table.append_column("trial_id", pa.array([tid] * len(table), pa.string()))
        else:
            table = table.assign(trial_id=tid)
        write_parquet(table, out)
        return out


def experiment_sweeps(results: Where, *experiments: str) -> list[tuple[Location, pd.DataFrame]]:
    """(folder, trials) of every sweep under ``results`` whose trials ran one of
    ``experiments`` (an experiment's name and its older names; the ``trainable`` column)."""
    out = []
    for folder in sweep_folders(results):
        trials = read_trials(folder)
        if "trainable" in trials and trials["trainable"].isin(experiments).any():
            out.append((folder, trials))
    return out
