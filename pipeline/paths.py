"""Where the input data (a folder of data files) is found.

In order: an explicit directory (the CLI's ``--data-dir``), the ``GNN2GNN_DATA``
environment variable, ``./data`` if it exists, then ``../shared/data`` beside the
checkout (the team's shared folder, which CI also has). The folder may also be a URI
(``s3://...``, ``gs://...``): each machine copies it once into its cache
(:func:`stage_data`), so the nodes of a cluster need no shared disk.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import socket
from pathlib import Path

from pyarrow.fs import FileSelector

from pipeline.errors import UserError
from pipeline.store.location import Location, is_uri

ENV_VAR = "GNN2GNN_DATA"
PROJECT_ROOT = Path(__file__).resolve().parent.parent

HOW_TO_GET_DATA = (
    f"Put the data files in one folder and pass --data-dir FOLDER or set {ENV_VAR}=FOLDER "
    "(docs/guide.md, Data, lists the files)."
)


class DataNotFoundError(UserError, FileNotFoundError):
    """No data directory or data file where we looked: ``what`` lists the places, ``hint``
    says how to get the data (a domain may give a better one)."""

    def __init__(self, what: str, hint: str = "") -> None:
        super().__init__(f"{what}. {hint}" if hint else what)
        self.what, self.hint = what, hint


def env_data_dir() -> str | None:
    """``$GNN2GNN_DATA``; None when unset or empty (an empty value means unset: ``Path('')``
    would be the working directory)."""
    return os.environ.get(ENV_VAR, "").strip() or None


def candidate_data_dirs(explicit: str | os.PathLike | None = None) -> list[tuple[str, Path]]:
    """The places searched for data, in order, each with where it came from."""
    out: list[tuple[str, Path]] = []
    if explicit is not None:
        return [("--data-dir", Path(explicit).expanduser())]
    env = env_data_dir()
    if env:
        return [(ENV_VAR, Path(env).expanduser())]
    out.append(("./data", Path.cwd() / "data"))
    out.append(("../shared/data", Path.cwd().parent / "shared" / "data"))
    out.append(("../shared/data beside the checkout", PROJECT_ROOT.parent / "shared" / "data"))
    return out


def cache_dir() -> Path:
    """``$GNN2GNN_CACHE`` or ``~/.cache/gnn2gnn``: this machine's decoded data, staged
    data folders, the MLflow store of results on object storage."""
    env = os.environ.get("GNN2GNN_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "gnn2gnn"


def node_name() -> str:
    """This machine, as an error message names it: host name and IP address."""
    host = socket.gethostname()
    try:
        import ray

        ip = ray.util.get_node_ip_address() if ray.is_initialized() else None
    except Exception:  # noqa: BLE001 - a name for a message only
        ip = None
    return f"{host} ({ip})" if ip else host


def stage_data(uri: str) -> Path:
    """A local copy of the data folder at ``uri``, made once per machine.

    The copy lives in ``<cache>/data/<fingerprint>``, the fingerprint being a hash of the
    folder's file names, sizes and modification times, so a changed folder is copied
    again; concurrent trials on one machine wait for one copy (a file lock) and a copy is
    used only once complete.
    """
    src = Location.of(uri)
    try:
        infos = src.fs.get_file_info(FileSelector(src.path, recursive=True))
    except (FileNotFoundError, OSError) as exc:
        raise DataNotFoundError(
            f"data folder {uri} cannot be listed from {node_name()}: {exc}"
        ) from None
    files = sorted(
        (i.path[len(src.path) :].lstrip("/"), i.size, str(i.mtime_ns)) for i in infos if i.is_file
    )
    if not files:
        raise DataNotFoundError(f"data folder {uri} is empty or missing (seen from {node_name()})")
    key = hashlib.sha256(repr((src.uri, files)).encode()).hexdigest()[:16]
    root = cache_dir() / "data"
    dest = root / key
    if (dest / ".complete").exists():
        return dest
    root.mkdir(parents=True, exist_ok=True)
    with open(root / f".{key}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (dest / ".complete").exists():
            for stale in root.glob(f".{key}.tmp-*"):  # a copy that died half-way
                shutil.rmtree(stale, ignore_errors=True)
            tmp = root / f".{key}.tmp-{os.getpid()}"
            tmp.mkdir()
            for rel, size, _ in files:  # exactly the files the fingerprint names
                target = tmp / rel
                target.parent.mkdir(parents=True, exist_ok=True)
                with src.fs.open_input_stream(f"{src.path}/{rel}") as stream:
                    target.write_bytes(stream.read())
                if target.stat().st_size != size:
                    raise DataNotFoundError(f"{uri}/{rel} changed while it was copied; retry")
            (tmp / ".complete").write_text(uri)
            shutil.rmtree(dest, ignore_errors=True)
            os.replace(tmp, dest)
            for old in root.iterdir():  # earlier copies of the same folder
                marker = old / ".complete"
                if old != dest and marker.is_file() and marker.read_text() == uri:
                    shutil.rmtree(old, ignore_errors=True)
    return dest


def workers_data_dir(given: str | os.PathLike | None = None) -> str:
    """The data folder to hand to Ray workers: a local path resolved here (the default
    search), or a URI (``--data-dir`` or ``GNN2GNN_DATA``), checked here and copied by each
    node into its own cache."""
    given = given if given is not None else env_data_dir()
    if given is not None and is_uri(given) and not str(given).startswith("file://"):
        if not Location.of(given).is_dir():
            raise DataNotFoundError(f"data folder {given}: no such folder")
        return str(given)
    return str(resolve_data_dir(given))


def resolve_data_dir(explicit: str | os.PathLike | None = None) -> Path:
    """First existing data directory; DataNotFoundError naming every place looked otherwise.

    An explicit directory or ``GNN2GNN_DATA`` that does not exist is an error, never
    silently replaced by a default. A URI (explicit or in ``GNN2GNN_DATA``) is staged into
    this machine's cache (:func:`stage_data`).
    """
    given = explicit if explicit is not None else env_data_dir()
    if given is not None and is_uri(given) and not str(given).startswith("file://"):
        return stage_data(str(given))
    places = candidate_data_dirs(explicit)
    for _, path in places:
        if path.is_dir():
            return path.resolve()
    looked = "; ".join(f"{src}: {path}" for src, path in places)
    raise DataNotFoundError(f"no data directory found (looked at {looked})", HOW_TO_GET_DATA)
