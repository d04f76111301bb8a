"""The Ray session of a queue: connect to a cluster or start an embedded local Ray
(loopback only), and the versions a result row records."""

from __future__ import annotations

import os
import socket
from importlib import metadata

from pipeline import TELEMETRY_OFF
from pipeline.errors import UserError
from pipeline.store.location import storage_env

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


def init_ray(address: str | None) -> bool:
    """Connect to ``address`` or start an embedded local Ray on 127.0.0.1; True if started."""
    import ray

    if ray.is_initialized():
        return False
    # workers reach the same object storage (and tracking server) as the driver
    env = {**TELEMETRY_OFF, **storage_env()}
    if "GNN2GNN_MALLOC" in os.environ:  # the malloc opt-out (pipeline.alloc) reaches workers
        env["GNN2GNN_MALLOC"] = os.environ["GNN2GNN_MALLOC"]
    runtime_env = {"env_vars": env}
    if address:
        check_address(address)
        ray.init(address=address, runtime_env=runtime_env, log_to_driver=False)
        return False
    ray.init(
        num_cpus=os.cpu_count(),
        include_dashboard=False,
        _node_ip_address="127.0.0.1",
        runtime_env=runtime_env,
        log_to_driver=False,
        configure_logging=True,
        logging_level="WARNING",
    )
    return True
