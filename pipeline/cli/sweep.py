"""``gnn2gnn sweep`` (a sweep file through Ray Tune) and ``gnn2gnn ui`` (MLflow UI)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from pipeline.cli.common import add_forward_credentials, log
from pipeline.cli.flags import yaml_value
from pipeline.config import PROFILES
from pipeline.errors import UserError
from pipeline.experiment import experiments, get_experiment, validate_trial_config


def sweep_plan(args: argparse.Namespace):
    """(sweep, experiment, overrides) of ``gnn2gnn sweep``, every trial config it expands to
    validated: a UserError naming the file, field or option for any bad input, before
    anything is written or started."""
    from pipeline.sweep.spec import expand, load_sweep

    spec = load_sweep(args.sweep, validate_trial_config)
    spec = override_sweep(spec, args.seeds, args.set)
    experiment = get_experiment(spec.trainable)
    overrides = sweep_overrides(args, spec.trainable)
    for name, value in (("--pack", args.pack), ("--max-concurrent", args.max_concurrent)):
        if value is not None and value < 1:
            raise UserError(f"{name} must be at least 1, got {value}")
    for cfg in expand(spec, args.profile, overrides, spec.name, override=experiment.override):
        experiment.make_config(cfg, f"{args.sweep}: trial {cfg}")
    return spec, experiment, overrides


def cmd_sweep(args: argparse.Namespace) -> int:
    from pipeline.paths import workers_data_dir
    from pipeline.sweep.run import run_sweep

    spec, experiment, overrides = sweep_plan(args)
    summary = run_sweep(
        spec,
        experiment=experiment,
        profile=args.profile,
        results=args.results,
        overrides=overrides,
        address=args.address,
        resume=args.resume,
        max_concurrent=args.max_concurrent,
        data_dir=workers_data_dir(args.data_dir),
        tracking_uri=args.tracking_uri,
        pack=args.pack,
        log=log,
        forward_credentials=args.forward_credentials,
    )
    print(
        json.dumps(
            {
                "folder": str(summary.folder),
                "trials": summary.total,
                "skipped_finished": summary.skipped,
                "ran": summary.ran,
                "failed": summary.failed,
                "wall_seconds": round(summary.wall_seconds, 1),
                "mlflow": summary.tracking_uri,
            }
        )
    )
    return 1 if summary.failed else 0


def override_options() -> list[tuple[str, list | None, list[str]]]:
    """(field, its choices or None, the experiments that take it) for every sweep-wide
    override an installed experiment offers (``Experiment.sweep_overrides``)."""
    found: dict[str, tuple[list | None, list[str]]] = {}
    for exp in experiments().values():
        for name in exp.sweep_overrides:
            info = exp.config.model_fields[name]
            args = [a for a in getattr(info.annotation, "__args__", ()) if isinstance(a, str)]
            choices, owners = found.get(name, ([], []))
            if choices is not None:
                choices = list(dict.fromkeys([*choices, *args])) if args else None
            found[name] = (choices, [*owners, exp.name])
    return [(name, choices, owners) for name, (choices, owners) in found.items()]


def sweep_overrides(args: argparse.Namespace, experiment: str) -> dict:
    """The sweep-wide overrides given on the command line; a UserError naming the option
    when the sweep's experiment does not take it."""
    given = {
        name: getattr(args, f"override_{name}")
        for name, _, _ in override_options()
        if getattr(args, f"override_{name}", None) is not None
    }
    allowed = set(get_experiment(experiment).sweep_overrides)
    for name in given:
        if name not in allowed:
            raise UserError(
                f"--{name.replace('_', '-')}: experiment {experiment} has no such sweep-wide "
                f"field (it takes: {sorted(allowed) or 'none'})"
            )
    return given


def override_sweep(spec, seeds: int | None, sets: list[str] | None):
    """The sweep with ``--seeds N`` (seeds 0..N-1) and ``--set KEY=VALUE`` (YAML values,
    applied to every trial's base config) applied; the trials are validated again later."""
    update: dict = {}
    if seeds is not None:
        if seeds < 1:
            raise UserError(f"--seeds must be at least 1, got {seeds}")
        update["seeds"] = seeds
    if sets:
        base = dict(spec.base)
        for item in sets:
            key, sep, value = item.partition("=")
            if not sep or not key.strip():
                raise UserError(f"--set expects KEY=VALUE, got {item!r}")
            base[key.strip()] = yaml_value(f"--set {key.strip()}", value)
        update["base"] = base
    return spec.model_copy(update=update) if update else spec


def exposure_warning(host: str) -> str | None:
    """What ``gnn2gnn ui --host HOST`` says when the UI is reachable beyond this machine
    (None for a loopback address): the MLflow UI has no login of its own."""
    import ipaddress

    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name: whatever it resolves to, say so
        loopback = False
    if loopback:
        return None
    return (
        f"warning: the MLflow UI listens on {host}, not loopback: anyone who reaches this "
        "machine can read and change these runs (no login, no TLS). For a team, run "
        "`mlflow server --app-name basic-auth` behind a TLS proxy (docs/cluster.md#a-teams-"
        "tracking-server)"
    )


def cmd_ui(args: argparse.Namespace) -> int:
    import subprocess

    from pipeline.store.location import Location
    from pipeline.store.tracking import tracking_uri

    results = Location.of(args.results)
    folder = results / args.sweep if args.sweep else results
    explicit = args.tracking_uri or os.environ.get("MLFLOW_TRACKING_URI")
    if results.is_local and not explicit and not (Path(folder) / "mlflow.db").exists():
        found = sorted(Path(results).glob("*/mlflow.db"))
        if len(found) != 1:
            raise UserError(
                f"no single MLflow store under {args.results} (found {len(found)}); "
                "pass --sweep NAME"
            )
        folder = Location.of(found[0].parent)
    elif not results.is_local and not explicit and not args.sweep:
        found = [f for f in results.dirs() if (f / "trials").is_dir()]
        if len(found) != 1:
            raise UserError(f"{len(found)} sweeps under {args.results}: pass --sweep NAME")
        folder = found[0]
    uri = tracking_uri(folder, explicit)
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    warning = exposure_warning(args.host)
    if warning:
        log(warning)
    print(f"MLflow UI for {uri}: http://{args.host}:{args.port}", flush=True)
    cmd = [
        sys.executable,
        "-m",
        "mlflow",
        "server",
        "--backend-store-uri",
        uri,
        "--host",
        args.host,
        "--port",
        str(args.port),
        "--workers",
        "1",
    ]
    return subprocess.call(cmd, env=env)


def add_parsers(sub) -> None:
    p = sub.add_parser("sweep", help="run a sweep file with Ray Tune (Parquet + MLflow)")
    p.add_argument("sweep", help="sweep file, e.g. sweeps/ablation.yaml")
    p.add_argument("--profile", choices=PROFILES, default="cpu")
    for name, choices, owners in override_options():
        p.add_argument(
            f"--{name.replace('_', '-')}",
            dest=f"override_{name}",
            choices=choices,
            default=None,
            help=f"set {name} for every trial of the file ({', '.join(owners)})",
        )
    p.add_argument(
        "--results",
        default="results",
        help="results folder or URI: s3://BUCKET/PREFIX, gs://... (default ./results)",
    )
    p.add_argument(
        "--tracking-uri",
        default=None,
        help="MLflow tracking server (default: $MLFLOW_TRACKING_URI, else a SQLite file: "
        "RESULTS/SWEEP/mlflow.db, or ~/.cache/gnn2gnn/mlflow/... for results on a URI)",
    )
    p.add_argument(
        "--address",
        default=None,
        help="Ray cluster address (default: embedded local Ray on 127.0.0.1)",
    )
    add_forward_credentials(p)
    p.add_argument("--resume", action="store_true", help="continue; skip finished trials")
    p.add_argument("--seeds", type=int, default=None, help="run seeds 0..N-1 (file: seeds)")
    p.add_argument(
        "--set",
        action="append",
        metavar="KEY=VALUE",
        help="set a trial config field for every trial (repeatable), e.g. num_generated=10000",
    )
    p.add_argument("--max-concurrent", type=int, default=None)
    p.add_argument(
        "--pack",
        type=int,
        default=None,
        metavar="P",
        help="train up to P compatible trials (differing in seed, lambda, tau, lr) as one "
        "batched model in one Ray trial; each still gets its own Parquet row and MLflow run "
        "(file: pack; default 1)",
    )
    p.add_argument(
        "--data-dir",
        default=None,
        help="data folder (default: $GNN2GNN_DATA, ./data, then ../shared/data); on a "
        "multi-node cluster a path every node has, or a URI (s3://...) each node copies once",
    )
    p.set_defaults(func=cmd_sweep)
    u = sub.add_parser("ui", help="start the MLflow UI on 127.0.0.1 for a results folder")
    u.add_argument("--results", default="results", help="results folder or URI")
    u.add_argument("--tracking-uri", default=None, help="MLflow store (default: as sweep)")
    u.add_argument("--sweep", default=None, help="sweep name (when the folder holds several)")
    u.add_argument("--port", type=int, default=5000)
    u.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (default 127.0.0.1: this machine only; any other is "
        "reachable from the network, with no login: see docs/cluster.md#a-teams-tracking-server)",
    )
    u.set_defaults(func=cmd_ui)
