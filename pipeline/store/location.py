"""Where results live: a local (or NFS) folder, or a prefix on object storage.

``Location.of("results")``, ``Location.of("s3://bucket/prefix")`` and
``Location.of("gs://bucket/prefix")`` all give a :class:`Location`: a ``pyarrow.fs``
filesystem and a path in it, with the few operations the results store needs. Object
storage is reached through ``pyarrow.fs``, which reads credentials and endpoints from the
standard variables (``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_DEFAULT_REGION``,
``AWS_ENDPOINT_URL`` for an S3-compatible server; ``GOOGLE_APPLICATION_CREDENTIALS`` for
``gs://``).

Writes are whole or nothing: locally a temporary file renamed over the target; on object
storage an upload to a hidden temporary key (readers skip names starting with a dot),
then a server-side move onto the target, and the temporary key removed on any error (an
interrupted stream would otherwise publish what was written so far). A writer killed
half-way leaves at most a hidden key or an unfinished multipart upload (a bucket
lifecycle rule cleans those), never a partial part.

Object storage that stops answering for a while (a restart, a network fault) is waited
for: an operation that fails as a store that is away does (:data:`TRANSIENT`: no
connection, a timeout, 5xx, throttling) is retried with a doubling backoff (0.5 s to 8 s)
for up to ``GNN2GNN_STORAGE_RETRY_S`` seconds (default 120), then fails with a one-line
:class:`StorageError` naming the location. A missing file, access denied or a bad request
fail at once. One attempt may itself take long: pyarrow's client gives up on a silent
server after about 100 s.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import pyarrow.fs as pafs

from pipeline.errors import UserError

# Settings that reach every Ray worker through the job's runtime environment, so that
# workers find the same storage and tracking server (values only: a profile name or a
# key-file path of the driver's machine would mean nothing on a worker). None is a secret:
# Ray records a job's runtime environment in its job table and dashboard, where anyone who
# can list jobs reads it.
STORAGE_SETTINGS = (
    "AWS_DEFAULT_REGION",
    "AWS_REGION",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_S3",
    "MLFLOW_TRACKING_URI",
    "MLFLOW_S3_ENDPOINT_URL",
)
# Credentials never travel in the runtime environment: each node uses its own (an instance
# profile, its environment, or a credentials file named by AWS_SHARED_CREDENTIALS_FILE /
# GOOGLE_APPLICATION_CREDENTIALS there), or the driver hands them over with
# --forward-credentials (pipeline.sweep.session: never through the job record).
STORAGE_SECRETS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")


T = TypeVar("T")


class StorageError(UserError, OSError):
    """A results or data location that cannot be opened (bad URI, no bucket, no access)."""


# What an object store that is away (restarting, unreachable, overloaded) answers through
# pyarrow's AWS and GCS clients; other errors (access denied, a bad request) are final.
TRANSIENT = (
    "NETWORK_CONNECTION",
    "curlCode",
    "Timeout",
    "timed out",
    "REQUEST_TIMEOUT",
    "SERVICE_UNAVAILABLE",
    "SLOW_DOWN",
    "THROTTLING",
    "INTERNAL_FAILURE",
    "Connection refused",
    "Connection reset",
    "Couldn't connect",
    "HTTP status 5",
)


def _transient(exc: OSError) -> bool:
    text = str(exc)
    return any(marker in text for marker in TRANSIENT)


def retry_seconds() -> float:
    """How long an object-storage operation is retried (``GNN2GNN_STORAGE_RETRY_S``)."""
    return float(os.environ.get("GNN2GNN_STORAGE_RETRY_S", "120"))


def is_uri(where: str | os.PathLike) -> bool:
    """True for ``scheme://...`` (``s3://``, ``gs://``, ``file://``), False for a path."""
    return "://" in str(where)


def storage_env() -> dict[str, str]:
    """The storage settings set in this process (handed to Ray workers); no credentials."""
    return {k: os.environ[k] for k in STORAGE_SETTINGS if os.environ.get(k)}


def storage_secrets() -> dict[str, str]:
    """The storage credentials set in this process (handed over only on request)."""
    return {k: os.environ[k] for k in STORAGE_SECRETS if os.environ.get(k)}


@dataclass(frozen=True, eq=False)
class Location:
    """A file or folder: ``fs`` (a ``pyarrow.fs.FileSystem``) and ``path`` in it; ``uri``
    names it to the user (a plain path for local folders)."""

    fs: pafs.FileSystem
    path: str
    uri: str

    @classmethod
    def of(cls, where: str | os.PathLike | Location) -> Location:
        if isinstance(where, Location):
            return where
        text = str(where)
        if not is_uri(text) or text.startswith("file://"):
            local = Path(text.removeprefix("file://")).expanduser().resolve()
            return cls(pafs.LocalFileSystem(), str(local), str(local))
        try:
            fs, path = pafs.FileSystem.from_uri(text)
        except (OSError, ValueError) as exc:  # pyarrow: ArrowInvalid is a ValueError
            raise StorageError(f"cannot open {text}: {exc}") from None
        return cls(fs, path.rstrip("/"), text.rstrip("/"))

    # -- naming -------------------------------------------------------------------------
    def __truediv__(self, name: str) -> Location:
        name = str(name).strip("/")
        return Location(self.fs, f"{self.path}/{name}", f"{self.uri}/{name}")

    def __str__(self) -> str:
        return self.uri

    def __fspath__(self) -> str:
        """A local location is a path like any other (``open``, ``Path``, pandas)."""
        if not self.is_local:
            raise TypeError(f"{self.uri} is on object storage, not a local path")
        return self.path

    def __repr__(self) -> str:
        return f"Location({self.uri!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Location) and other.uri == self.uri

    def __hash__(self) -> int:
        return hash(self.uri)

    @property
    def name(self) -> str:
        return self.path.rstrip("/").rsplit("/", 1)[-1]

    @property
    def stem(self) -> str:
        return self.name.rsplit(".", 1)[0] if "." in self.name else self.name

    @property
    def is_local(self) -> bool:
        return isinstance(self.fs, pafs.LocalFileSystem)

    def as_path(self) -> Path:
        """The local path (local locations only)."""
        if not self.is_local:
            raise StorageError(f"{self.uri} is not a local path")
        return Path(self.path)

    # -- queries ------------------------------------------------------------------------
    def _retrying(self, what: str, operation: Callable[[], T]) -> T:
        """``operation()``; on object storage retried while it fails with anything but a
        missing file (see the module docstring)."""
        if self.is_local:
            return operation()
        start = time.monotonic()
        deadline, delay = start + retry_seconds(), 0.5
        while True:
            try:
                return operation()
            except FileNotFoundError:
                raise
            except OSError as exc:
                if not _transient(exc):  # access denied, a bad request: no waiting helps
                    raise
                if time.monotonic() + delay > deadline:
                    raise StorageError(
                        f"{self.uri}: {what} failed for {time.monotonic() - start:.0f}s "
                        f"({str(exc).splitlines()[0][:200]}); what was written before is "
                        "whole: run the same command with --resume once the storage answers"
                    ) from None
                time.sleep(delay)
                delay = min(2 * delay, 8.0)

    def _type(self) -> pafs.FileType:
        return self._retrying("looking it up", lambda: self.fs.get_file_info(self.path).type)

    def exists(self) -> bool:
        return self._type() != pafs.FileType.NotFound

    def is_dir(self) -> bool:
        return self._type() == pafs.FileType.Directory

    def is_file(self) -> bool:
        return self._type() == pafs.FileType.File

    def _children(self) -> list[pafs.FileInfo]:
        selector = pafs.FileSelector(self.path, allow_not_found=True)
        infos = self._retrying("listing it", lambda: self.fs.get_file_info(selector))
        return sorted(
            (i for i in infos if not i.base_name.startswith(".")), key=lambda i: i.base_name
        )

    def files(self, suffix: str = ".parquet") -> list[Location]:
        """Files directly inside (hidden ones, i.e. writes in progress, left out), by name."""
        return [
            self / i.base_name
            for i in self._children()
            if i.type == pafs.FileType.File and i.base_name.endswith(suffix)
        ]

    def dirs(self) -> list[Location]:
        """Folders directly inside, by name."""
        return [self / i.base_name for i in self._children() if i.type == pafs.FileType.Directory]

    # -- reading and writing --------------------------------------------------------------
    def read_bytes(self) -> bytes:
        def read() -> bytes:
            with self.fs.open_input_stream(self.path) as stream:
                return stream.read()

        return self._retrying("reading it", read)

    def read_text(self) -> str:
        return self.read_bytes().decode()

    def mkdir(self) -> None:
        if self.is_local:
            Path(self.path).mkdir(parents=True, exist_ok=True)
        # object stores have no folders: a prefix exists once an object is under it

    def write_bytes(self, data: bytes) -> None:
        """The whole file or nothing (see the module docstring)."""
        if self.is_local:
            from pipeline.store.io import atomic_path

            with atomic_path(self.path) as tmp:
                tmp.write_bytes(data)
            return
        parent, _, name = self.path.rpartition("/")

        def write() -> None:
            tmp = f"{parent}/.{name}.tmp-{uuid.uuid4().hex[:12]}"
            try:
                with self.fs.open_output_stream(tmp) as out:
                    out.write(data)
                self.fs.move(tmp, self.path)
            except BaseException:
                try:
                    self.fs.delete_file(tmp)
                except OSError:
                    pass  # a hidden key: readers skip it, a lifecycle rule removes it
                raise

        self._retrying("writing it", write)

    def unlink(self) -> None:
        """Remove the file if it is there."""

        def delete() -> None:
            try:
                self.fs.delete_file(self.path)
            except FileNotFoundError:
                pass
            except OSError:
                if self.exists():
                    raise

        self._retrying("removing it", delete)
