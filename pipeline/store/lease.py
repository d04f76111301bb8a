"""One driver per results folder: a lease with a heartbeat.

A driver that runs trials into a sweep folder (``gnn2gnn sweep``, ``gnn2gnn reproduce``)
first takes the folder's lease: a hidden file, ``<folder>/.driver-lease.json`` (readers
skip hidden names), naming the driver (host, PID, start time, command) and the time of its
last heartbeat, rewritten every ``beat`` seconds by a daemon thread. A second driver on
the same folder refuses at once, naming the first. The lease works wherever results live
(a local or NFS folder, object storage), since it is an ordinary file written whole.

A lease is held while its driver lives:
- on the same host, exactly: the PID exists and is the same process (its start time), so
  ``--resume`` after a kill -9 takes over at once;
- from another host, by the heartbeat: a lease not renewed for ``ttl`` seconds (default
  60, ``GNN2GNN_LEASE_TTL``) has expired, e.g. its machine died. Clocks of the two hosts
  must agree to well within the TTL.

Two drivers started within the same instant could both see no lease; each re-reads the
lease after writing it, and the one whose write was replaced stops (object storage has no
compare-and-swap through ``pyarrow.fs``, so this narrows the window to the storage's
write latency rather than closing it).
"""

from __future__ import annotations

import json
import os
import socket
import sys
import threading
import time
import uuid
from dataclasses import asdict, dataclass

from pipeline.errors import UserError
from pipeline.store.location import Location

LEASE_NAME = ".driver-lease.json"


class LeaseHeldError(UserError, RuntimeError):
    """Another driver holds the results folder."""


def _ttl() -> float:
    return float(os.environ.get("GNN2GNN_LEASE_TTL", "60"))


def _process_start(pid: int) -> float | None:
    """The start time of process ``pid`` (None when there is none)."""
    import psutil

    try:
        return psutil.Process(pid).create_time()
    except (psutil.NoSuchProcess, psutil.AccessDenied, ValueError):
        return None


@dataclass
class Holder:
    """Who holds a lease: written as the lease file's JSON."""

    host: str
    pid: int
    started: float  # when the driver took the lease (epoch seconds)
    process_start: float | None  # the PID's start time: a reused PID is another process
    beat: float  # the last heartbeat (epoch seconds)
    token: str  # this lease, to tell a replaced write from ours
    command: str = ""

    def describe(self) -> str:
        started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.started))
        return f"host {self.host}, PID {self.pid}, started {started}"

    def alive(self, ttl: float, now: float | None = None) -> bool:
        """Whether the holder still runs (see the module docstring)."""
        if self.host == socket.gethostname():
            start = _process_start(self.pid)
            if start is None:
                return False
            return self.process_start is None or abs(start - self.process_start) < 1.0
        return (time.time() if now is None else now) - self.beat < ttl


def read_holder(folder: Location) -> Holder | None:
    """The lease of ``folder``, or None (none there, or unreadable: a write cut short)."""
    file = folder / LEASE_NAME
    try:
        return Holder(**json.loads(file.read_text()))
    except (FileNotFoundError, OSError, ValueError, TypeError):
        return None


class DriverLease:
    """The leases of ``folders``, taken by :meth:`acquire` (LeaseHeldError when another
    live driver holds one) and renewed until :meth:`release`; a context manager."""

    def __init__(self, folders: list[Location], beat: float = 10.0, ttl: float | None = None):
        self.folders = list(dict.fromkeys(folders))
        self.beat, self.ttl = beat, _ttl() if ttl is None else ttl
        pid = os.getpid()
        now = time.time()
        self.holder = Holder(
            socket.gethostname(),
            pid,
            now,
            _process_start(pid),
            now,
            uuid.uuid4().hex,
            " ".join(["gnn2gnn", *sys.argv[1:]])[:300],
        )
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.warnings: list[str] = []  # heartbeats that failed (storage away for a while)

    def _write(self) -> None:
        self.holder.beat = time.time()
        data = json.dumps(asdict(self.holder)).encode()
        for folder in self.folders:
            folder.mkdir()
            (folder / LEASE_NAME).write_bytes(data)

    def _check(self) -> None:
        for folder in self.folders:
            other = read_holder(folder)
            if other is not None and other.token != self.holder.token and other.alive(self.ttl):
                raise LeaseHeldError(
                    f"{folder} is being written by another driver ({other.describe()}: "
                    f"{other.command or 'gnn2gnn'}); wait for it to finish, or stop it and "
                    "pass --resume (a killed driver's lease ends at once on its own host, "
                    f"{self.ttl:.0f}s after its last heartbeat elsewhere)"
                )

    def acquire(self) -> DriverLease:
        self._check()
        self._write()
        self._check()  # a driver that wrote at the same instant and kept its write
        for folder in self.folders:
            if (other := read_holder(folder)) is None or other.token != self.holder.token:
                raise LeaseHeldError(f"{folder}: another driver took the lease at the same time")
        self._thread = threading.Thread(target=self._heartbeat, name="lease", daemon=True)
        self._thread.start()
        return self

    def _heartbeat(self) -> None:
        while not self._stop.wait(self.beat):
            try:
                self._write()
            except OSError as exc:  # storage away: say so, try again at the next beat
                self.warnings.append(f"lease heartbeat failed: {exc}")

    def release(self) -> None:
        """Stop the heartbeat and remove the leases this driver still holds."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.beat + 5)
        for folder in self.folders:
            other = read_holder(folder)
            if other is not None and other.token == self.holder.token:
                try:
                    (folder / LEASE_NAME).unlink()
                except OSError:
                    pass  # an expired lease is taken over all the same

    def __enter__(self) -> DriverLease:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()
