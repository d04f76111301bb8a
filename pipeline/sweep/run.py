"""Run a sweep with Ray Tune: embedded local Ray (loopback only) or an existing cluster.

Finished trials land in the results folder's Parquet files and in MLflow as they finish
(the driver writes both, from Tune callbacks); a resumed sweep runs only the trials that
have not finished.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pipeline.experiment import Experiment, default_experiment
from pipeline.store.location import Location
from pipeline.store.tracking import tracking_uri as tracking_uri_of
from pipeline.sweep.queue import Job, Progress, run_queue
from pipeline.sweep.session import SweepError, check_address, init_ray, versions
from pipeline.sweep.spec import SweepSpec

__all__ = [  # the sweep runner, and what older imports found here
    "Progress", "SweepError", "SweepSummary", "check_address", "init_ray", "run_sweep", "versions",
]  # fmt: skip


@dataclass
class SweepSummary:
    folder: Location
    total: int
    skipped: int
    ran: int
    failed: list[str]
    wall_seconds: float
    tracking_uri: str


def run_sweep(
    spec: SweepSpec,
    *,
    experiment: Experiment,
    profile: str,
    results: str | Path | Location,
    overrides: dict | None = None,
    address: str | None = None,
    resume: bool = False,
    max_concurrent: int | None = None,
    data_dir: str | None = None,
    tracking_uri: str | None = None,
    pack: int | None = None,
    log: Callable[[str], None] = print,
    forward_credentials: bool = False,
) -> SweepSummary:
    """Run (or resume) every trial of ``spec`` at ``profile``; see the module docstring.

    ``results`` is a local folder or a URI (``s3://``, ``gs://``): the sweep's Parquet
    dataset and Tune's storage (checkpoints, through which trial outputs reach the driver)
    go there. ``data_dir`` (a path every node has, or a URI each node copies once; see
    :func:`pipeline.paths.stage_data`) is handed to every trial that does not set its own;
    it is not part of the trial id. ``overrides``: fields set for every trial (the
    experiment's :attr:`~Experiment.sweep_overrides`, e.g. ``--benchmark``). ``tracking_uri``: see
    :func:`pipeline.store.tracking.tracking_uri`.
    ``pack`` (default: the file's ``pack``): up to that many pending trials the experiment
    can train together (:meth:`Experiment.pack_groups`) run as one Ray trial; each member
    still gets its own Parquet row and MLflow run, and a resumed sweep re-runs exactly the
    members that have not finished. ``forward_credentials``: see
    :func:`pipeline.sweep.session.init_ray`.
    """
    folder = Location.of(results) / spec.name
    if spec.trainable is None:  # a spec built in code, not read from a file
        spec = spec.model_copy(update={"trainable": default_experiment()})
    if spec.trainable in experiment.aliases:  # an older name: the same experiment
        spec = spec.model_copy(update={"trainable": experiment.name})
    if experiment.name != spec.trainable:
        raise SweepError(f"sweep {spec.name} runs {spec.trainable}, not {experiment.name}")
    job = Job(
        spec,
        experiment,
        profile,
        folder,
        overrides={k: v for k, v in (overrides or {}).items() if v is not None},
        pack=spec.pack if pack is None else pack,
    )
    done = run_queue(
        [job],
        name=spec.name,
        storage=folder / "ray",
        address=address,
        resume=resume,
        max_concurrent=max_concurrent,
        data_dir=data_dir,
        tracking_uri=tracking_uri,
        log=log,
        versions=json.dumps(versions()),
        forward_credentials=forward_credentials,
    )
    summary = SweepSummary(
        folder,
        done.trials,
        done.skipped,
        done.trainings + len(done.failed),
        [tid for _, tid in done.failed],
        done.wall_seconds,
        tracking_uri_of(folder, tracking_uri),
    )
    if summary.ran:
        log(
            f"[{spec.name}] done in {summary.wall_seconds:.0f}s: "
            f"{summary.ran - len(summary.failed)} ok, {len(summary.failed)} failed; results in "
            f"{folder}; MLflow: {summary.tracking_uri}"
        )
    return summary
