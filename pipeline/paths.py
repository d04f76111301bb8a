"""Where the benchmark data is found.

In order: an explicit directory (the CLI's ``--data-dir``), the ``GNN2GNN_DATA``
environment variable, ``./data`` if it exists, then ``../shared/data`` beside the
checkout (the team's shared folder, which CI also has).
"""

from __future__ import annotations

import os
from pathlib import Path

from pipeline.errors import UserError

ENV_VAR = "GNN2GNN_DATA"
PROJECT_ROOT = Path(__file__).resolve().parent.parent

HOW_TO_GET_DATA = (
    "Download the official files (NAS-Bench-101: nasbench_only108.tfrecord from "
    "https://github.com/google-research/nasbench; NATS-Bench: NATS-tss-v1_0-3ffb9-simple from "
    "https://github.com/D-X-Y/NATS-Bench), put them in one folder, run "
    "`gnn2gnn data convert FOLDER/<official file>` on each, and pass --data-dir FOLDER or set "
    f"{ENV_VAR}=FOLDER."
)


class DataNotFoundError(UserError, FileNotFoundError):
    """No data directory or benchmark file where we looked; the message lists the places."""


def candidate_data_dirs(explicit: str | os.PathLike | None = None) -> list[tuple[str, Path]]:
    """The places searched for data, in order, each with where it came from."""
    out: list[tuple[str, Path]] = []
    if explicit is not None:
        return [("--data-dir", Path(explicit).expanduser())]
    env = os.environ.get(ENV_VAR)
    if env:
        return [(ENV_VAR, Path(env).expanduser())]
    out.append(("./data", Path.cwd() / "data"))
    out.append(("../shared/data", Path.cwd().parent / "shared" / "data"))
    out.append(("../shared/data beside the checkout", PROJECT_ROOT.parent / "shared" / "data"))
    return out


def resolve_data_dir(explicit: str | os.PathLike | None = None) -> Path:
    """First existing data directory; DataNotFoundError naming every place looked otherwise.

    An explicit directory or ``GNN2GNN_DATA`` that does not exist is an error, never
    silently replaced by a default.
    """
    places = candidate_data_dirs(explicit)
    for _, path in places:
        if path.is_dir():
            return path.resolve()
    looked = "; ".join(f"{src}: {path}" for src, path in places)
    raise DataNotFoundError(f"no data directory found (looked at {looked}). {HOW_TO_GET_DATA}")
