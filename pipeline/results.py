"""A sweep's results folder: three Parquet files, rewritten atomically as trials finish.

``<results>/<sweep>/trials.parquet``    one row per trial (config, info, final metrics, status)
``<results>/<sweep>/epochs.parquet``    one row per trial-epoch
``<results>/<sweep>/generated.parquet`` the generated cells of every trial
``<results>/<sweep>/<table>/<trial_id>.parquet`` a trial's extra tables (``latent``: the
latent features of the benchmark's cells from an IO-embedding trial), written before the
trial's row

``trials.parquet`` is written last, so it is the record of what finished: after a crash,
epoch or cell rows of a trial missing from it are dropped on the next write.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from pipeline.io import atomic_write_parquet


def _read(path: Path) -> pd.DataFrame:
    return pd.read_parquet(path) if path.exists() else pd.DataFrame()


class ResultsStore:
    """Parquet results of one sweep (see module docstring)."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.trials = _read(self.folder / "trials.parquet")
        keep = set(self.trials["trial_id"]) if len(self.trials) else set()
        self.epochs = self._only(_read(self.folder / "epochs.parquet"), keep)
        self.generated = self._only(_read(self.folder / "generated.parquet"), keep)

    @staticmethod
    def _only(frame: pd.DataFrame, ids: set[str]) -> pd.DataFrame:
        if not len(frame):
            return frame
        return frame[frame["trial_id"].isin(ids)].reset_index(drop=True)

    def finished_ids(self) -> set[str]:
        """Trials that completed (status ok): a resumed sweep skips them."""
        if not len(self.trials):
            return set()
        return set(self.trials.loc[self.trials["status"] == "ok", "trial_id"])

    @staticmethod
    def _replace(old: pd.DataFrame, tid: str, new: pd.DataFrame | None) -> pd.DataFrame:
        """``old`` without trial ``tid``'s rows, plus ``new`` (tagged with ``tid``)."""
        parts = [old[old["trial_id"] != tid]] if len(old) else []
        if new is not None and len(new):
            parts.append(new.assign(trial_id=tid))
        return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()

    def record(self, row: dict, epochs: pd.DataFrame | None, generated: pd.DataFrame | None):
        """Add (or replace) one trial's rows and rewrite the three files atomically;
        trials.parquet last, so it never lists a trial whose other rows are not on disk."""
        tid = row["trial_id"]
        flat = {k: (json.dumps(v) if isinstance(v, dict | list) else v) for k, v in row.items()}
        self.epochs = self._replace(self.epochs, tid, epochs)
        self.generated = self._replace(self.generated, tid, generated)
        self.trials = self._replace(self.trials, tid, pd.DataFrame([flat]))
        for name in ("epochs", "generated", "trials"):
            frame = getattr(self, name)
            if len(frame):
                atomic_write_parquet(frame, self.folder / f"{name}.parquet")

    def record_table(self, name: str, tid: str, source: Path) -> Path:
        """A trial's extra table (e.g. ``latent``) as ``<folder>/<name>/<trial_id>.parquet``."""
        out = self.folder / name / f"{tid}.parquet"
        out.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_parquet(pd.read_parquet(source), out)
        return out
