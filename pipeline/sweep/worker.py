"""The Ray Tune entry of every trial: it finds the trial's experiment by name in the
registry (:mod:`pipeline.experiment`), so the core never imports an experiment."""

from __future__ import annotations

import os
from pathlib import Path

import torch
from pydantic import BaseModel

from pipeline.alloc import keep_large_allocations
from pipeline.paths import DataNotFoundError, node_name, resolve_data_dir
from pipeline.store.location import is_uri


def node_data_dir(data_dir: str) -> Path:
    """The data folder on this node: a URI is copied once into the node's cache; a path
    must exist here (a clear error naming the node otherwise)."""
    if is_uri(data_dir):
        return resolve_data_dir(data_dir)
    path = Path(data_dir)
    if not path.is_dir():
        raise DataNotFoundError(
            f"data folder {path} does not exist on node {node_name()}: give every node the "
            "data at that path, or pass --data-dir s3://... (copied once per node)"
        )
    return path


def tune_entry(config: dict) -> None:
    """Ray Tune entry: ``config["spec"]`` = {"experiment", "trial": <trial config>,
    "config": <its Config, validated on the driver, or for an experiment without
    ``takes_config`` the trial config>, "trial_id", "cpus", "data_dir", "cwd"},
    and for a packed group ``"members"``: [{"trial", "config", "trial_id"}, ...] trained
    together by the experiment's ``run_packed``, each member's files in a subfolder named
    by its trial id. ``data_dir``: see :func:`node_data_dir`.

    Reports every epoch to Tune, then a final result with a checkpoint folder holding the
    trial's files (result.json, epochs/generated and extra Parquet tables, model.pt), which
    the driver turns into the sweep's Parquet and MLflow records. Runs on CUDA when Ray gave
    the trial a GPU. Relative paths in the trial config (``io_data``) mean what they mean to
    the driver: the trial runs in the driver's working directory (``spec["cwd"]``) when that
    folder exists on the worker's machine (on a cluster, give absolute shared paths).
    """
    import tempfile

    import ray
    from ray import tune

    from pipeline.experiment import get_experiment
    from pipeline.store.io import write_trial_outputs
    from pipeline.sweep.session import apply_forwarded_credentials

    apply_forwarded_credentials()  # before anything reads storage (--forward-credentials)
    spec = config["spec"]
    experiment = get_experiment(spec["experiment"])
    fields = experiment.config.model_fields  # data_dir and device only where the Config has them
    if spec.get("cwd") and Path(spec["cwd"]).is_dir():
        os.chdir(spec["cwd"])  # Tune starts trials in their own folder; paths are the user's
    cpus = max(1, int(spec.get("cpus", 1)))
    torch.set_num_threads(cpus)
    keep_large_allocations()
    data_dir = None
    if spec.get("data_dir") and "data_dir" in fields:
        data_dir = str(node_data_dir(spec["data_dir"]))

    def prepare(member: dict):
        """The trial's config as written (``result.json``) and the typed Config it runs
        with (validated once, on the driver), with this node's data folder and device."""
        cfg, updates = dict(member["trial"]), {}
        if data_dir and not cfg.get("data_dir"):
            updates["data_dir"] = data_dir
        if "device" in fields and cfg.get("device", "auto") == "auto":
            updates["device"] = "cuda" if ray.get_gpu_ids() else "cpu"
        cfg.update(updates)
        given = member.get("config", cfg)  # the older protocol: the dict
        return cfg, (given.model_copy(update=updates) if isinstance(given, BaseModel) else cfg)

    def reporter(member: int | None):
        tag = {} if member is None else {"member": member}
        return lambda row: tune.report(
            {**{k: v for k, v in row.items() if isinstance(v, int | float)}, **tag}
        )

    members = spec.get("members")
    if members:  # a packed group: one batched model, one result folder per member
        cfgs, typed = zip(*(prepare(m) for m in members), strict=True)
        reporters = [reporter(i) for i in range(len(members))]
        results = experiment.run_packed(list(typed), reporters)
        with tempfile.TemporaryDirectory() as tmp:
            for m, cfg, result in zip(members, cfgs, results, strict=True):
                write_trial_outputs(Path(tmp) / m["trial_id"], cfg, result)
            final = {"final": 1, "packed": len(members)}
            tune.report(final, checkpoint=tune.Checkpoint.from_directory(tmp))
        return
    trial_cfg, typed = prepare(spec)
    result = experiment.run_trial(typed, reporter=reporter(None))
    with tempfile.TemporaryDirectory() as tmp:
        write_trial_outputs(Path(tmp), trial_cfg, result)
        tune.report({**result.metrics, "final": 1}, checkpoint=tune.Checkpoint.from_directory(tmp))
