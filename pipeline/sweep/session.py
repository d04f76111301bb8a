"""The Ray session of a queue: connect to a cluster or start an embedded local Ray
(loopback only), and the versions a result row records."""

from __future__ import annotations

import os
import socket
import uuid
from importlib import metadata

from pipeline import TELEMETRY_OFF
from pipeline.errors import UserError
from pipeline.store.location import storage_env, storage_secrets

# Keep the embedded Ray quiet (loopback: see pipeline/__init__.py and DESIGN: pitfalls).
os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
os.environ.setdefault("RAY_DEDUP_LOGS", "1")
os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")


class SweepError(UserError, RuntimeError):
    """A sweep that cannot start (bad address, results folder in the way, ...)."""


def versions() -> dict[str, str]:
    out = {}
    for pkg in ("gnn2gnn", "torch", "ray", "mlflow", "torch-geometric", "numpy", "pandas"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = "missing"
    return out


def check_address(address: str) -> None:
    """Fail fast on an address nothing listens on (``ray.init`` would retry for ever)."""
    if address in ("auto", "local") or address.startswith("ray://"):
        return
    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host or "127.0.0.1", int(port)), timeout=5):
            return
    except (OSError, ValueError) as exc:
        raise SweepError(
            f"no Ray cluster at {address} ({exc}); start one with `ray start --head` or leave "
            "out --address to use embedded local Ray"
        ) from None


# A driver started with --forward-credentials keeps its storage credentials in a named
# actor of its job and puts only that actor's name in the runtime environment; each worker
# process asks it once (apply_forwarded_credentials). The secret is then in no job record,
# dashboard page or log: it lives in the actor's and the trial workers' memory and
# environment for the job's lifetime. Anyone who can run code on the cluster (who holds its
# auth token) can still ask the actor, as they could read a worker's environment.
CREDENTIALS_FROM = "GNN2GNN_CREDENTIALS_FROM"
_holder = None  # the driver's handle: a named actor lives while a handle does
_applied: str | None = None  # the holder this worker process took its credentials from


def _credentials_holder(name: str, secrets: dict[str, str]):
    import ray

    @ray.remote(num_cpus=0, max_restarts=0)
    class CredentialsHolder:
        def __init__(self, values: dict[str, str]) -> None:
            self._values = values

        def get(self) -> dict[str, str]:
            return self._values

    return CredentialsHolder.options(name=name, lifetime=None).remote(secrets)


def apply_forwarded_credentials() -> None:
    """In a Ray worker: set the storage credentials that a driver started with
    ``--forward-credentials`` holds (once per process and driver); nothing otherwise."""
    global _applied
    name = os.environ.get(CREDENTIALS_FROM)
    if not name or name == _applied:
        return
    import ray

    os.environ.update(ray.get(ray.get_actor(name).get.remote()))
    _applied = name


def init_ray(address: str | None, forward_credentials: bool = False) -> bool:
    """Connect to ``address`` or start an embedded local Ray on 127.0.0.1; True if started.

    Workers get the storage and tracking settings (never credentials) in the runtime
    environment: an embedded Ray's workers inherit the driver's environment, a cluster's
    nodes use their own credentials. ``forward_credentials``: hand the driver's storage
    credentials to the workers through a named actor instead (see ``CREDENTIALS_FROM``).
    """
    import ray

    global _holder
    if ray.is_initialized():
        return False
    env = {**TELEMETRY_OFF, **storage_env()}
    if "GNN2GNN_MALLOC" in os.environ:  # the malloc opt-out (pipeline.alloc) reaches workers
        env["GNN2GNN_MALLOC"] = os.environ["GNN2GNN_MALLOC"]
    secrets = storage_secrets() if forward_credentials else {}
    if secrets:
        env[CREDENTIALS_FROM] = f"gnn2gnn-credentials-{uuid.uuid4().hex[:12]}"
    runtime_env = {"env_vars": env}
    if address:
        check_address(address)
        ray.init(address=address, runtime_env=runtime_env, log_to_driver=False)
        started = False
    else:
        ray.init(
            num_cpus=os.cpu_count(),
            include_dashboard=False,
            _node_ip_address="127.0.0.1",
            runtime_env=runtime_env,
            log_to_driver=False,
            configure_logging=True,
            logging_level="WARNING",
        )
        started = True
    if secrets:
        _holder = _credentials_holder(env[CREDENTIALS_FROM], secrets)
    return started
