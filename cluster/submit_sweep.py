"""Run a ``gnn2gnn`` command on the head of a cluster started with Ray's cluster launcher.

    ray up cluster/aws.yaml
    ray submit cluster/aws.yaml cluster/submit_sweep.py reproduce \\
        --profile paper --results s3://BUCKET/PREFIX
    ray submit cluster/aws.yaml cluster/submit_sweep.py sweeps/ablation.yaml \\
        --profile paper --results s3://BUCKET/PREFIX

``ray submit`` copies this file to the head and runs it there with the arguments after
it: a ``gnn2gnn`` subcommand and its arguments (``reproduce``, ``sweep``, ``pretrain``,
``report``, ...), or, as before, ``gnn2gnn sweep``'s arguments (a sweep file first). The
script runs from the checkout the cluster config mounted (``~/gnn2gnn``, or
``$GNN2GNN_HOME``), so sweep files are named as in the checkout; a command that takes
``--address`` connects to the cluster (``--address auto`` unless given) and first waits
until the workers the config starts with (its ``min_workers``) have joined, so that it
sees their GPUs (``$GNN2GNN_WAIT_S``, default 900 s).
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

BOOTSTRAP = Path("~/ray_bootstrap_config.yaml").expanduser()  # written by `ray up`


def expected_workers(config_file: Path = BOOTSTRAP) -> int:
    """The workers the cluster config starts with (0 when there is no config)."""
    if not config_file.is_file():
        return 0
    import yaml

    config = yaml.safe_load(config_file.read_text()) or {}
    types = config.get("available_node_types") or {}
    if types:  # a type's min_workers counts workers only (the head type's too)
        return sum(int(t.get("min_workers", 0)) for t in types.values())
    provider = config.get("provider") or {}
    return len(provider.get("worker_ips") or []) or int(config.get("min_workers", 0))


def wait_for_workers(expected: int, timeout_s: float) -> None:
    """Block until ``expected`` worker nodes are alive (progress printed), or time out."""
    if expected <= 0:
        return
    import ray

    ray.init(address="auto", log_to_driver=False)
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            alive = sum(1 for n in ray.nodes() if n["Alive"]) - 1
            print(f"[submit_sweep] {alive}/{expected} workers up", flush=True)
            if alive >= expected:
                return
            if time.monotonic() > deadline:
                print("[submit_sweep] timed out waiting; starting with what is up", flush=True)
                return
            time.sleep(15)
    finally:
        ray.shutdown()


def command_line(argv: list[str]) -> list[str]:
    """``gnn2gnn``'s arguments: ``argv`` when it starts with a subcommand, else ``sweep``'s
    (the older form); ``--address auto`` added where the subcommand takes ``--address``."""
    from pipeline.cli import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    args = list(argv)
    if not args or args[0] not in sub.choices:
        args = ["sweep", *args]
    takes_address = any("--address" in a.option_strings for a in sub.choices[args[0]]._actions)
    given = any(a == "--address" or a.startswith("--address=") for a in args)
    if takes_address and not given:
        args += ["--address", "auto"]
    return args


def main(argv: list[str]) -> int:
    home = Path(os.environ.get("GNN2GNN_HOME", "~/gnn2gnn")).expanduser()
    if home.is_dir():
        os.chdir(home)
    args = command_line(argv)
    if any(a == "--address" or a.startswith("--address=") for a in args):
        wait_for_workers(expected_workers(), float(os.environ.get("GNN2GNN_WAIT_S", "900")))
    from pipeline.cli import main as cli

    return cli(args)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
