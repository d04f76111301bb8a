"""The queue's tasks through real Ray Tune, Parquet and MLflow: a sweep that needs a task
runs once the task is done (a second Tune run when nothing else was left), and a failed
task keeps its trials from running and says so."""

import time
from pathlib import Path

import pytest

from pipeline.experiment import get_experiment
from pipeline.store.location import Location
from pipeline.store.results import read_trials
from pipeline.sweep.queue import Job, run_queue
from pipeline.sweep.spec import SweepSpec

pytestmark = pytest.mark.slow


class Countdown:
    """A task that is done after ``polls`` polls (no Ray work), failed if ``fail``."""

    def __init__(self, polls: int, fail: bool = False) -> None:
        self.left, self.fail, self.polled = polls, fail, 0
        self.cpus_busy, self.busy_seconds = 0.0, 0.0

    def poll(self) -> bool:
        self.polled += 1
        self.left -= 1
        time.sleep(0.05)
        return self.left <= 0

    @property
    def failed(self) -> list[str]:
        return ["network 1 did not train"] if self.fail else []


def _job(results: Path, name: str, needs: str | None, seeds=(0, 1)) -> Job:
    spec = SweepSpec(
        name=name,
        trainable="gnn2gnn",
        seeds=list(seeds),
        base={"benchmark": "natsbench", "model": "random"},
    )
    folder = Location.of(results) / name
    return Job(spec, get_experiment("gnn2gnn"), "smoke", folder, needs=needs)


def test_a_sweep_that_needs_a_task_runs_after_it_and_a_failed_task_blocks_its_trials(tmp_path):
    results = tmp_path / "res"
    task = Countdown(polls=5)
    lines: list[str] = []
    summary = run_queue(
        [_job(results, "after", "ok")],
        name="q",
        storage=Location.of(results) / "ray",
        tasks={"ok": lambda: task},
        log=lines.append,
        study=True,
    )
    assert task.polled >= 5 and summary.failed == [] and summary.failed_tasks == []
    assert summary.trainings == 2
    trials = read_trials(results / "after")
    assert len(trials) == 2 and set(trials["status"]) == {"ok"}

    bad = Countdown(polls=2, fail=True)
    summary = run_queue(
        [_job(results, "blocked", "bad"), _job(results, "free", None, seeds=(5, 6))],
        name="q2",
        storage=Location.of(results) / "ray",
        tasks={"bad": lambda: bad},
        log=lines.append,
        study=True,
    )
    assert summary.failed_tasks == ["bad"] and len(summary.blocked) == 1
    assert "network 1 did not train" in summary.blocked[0]
    assert sorted(key for key, _ in summary.failed) == ["blocked", "blocked"]
    assert summary.trainings == 2  # the sweep that did not need the task ran
    assert len(read_trials(results / "free")) == 2
    assert read_trials(results / "blocked").empty  # nothing ran, nothing half-written

    # a trial that a blocked sweep shares with a free one waits for the task too: it is
    # one training, recorded in both or in neither
    summary = run_queue(
        [_job(results, "blocked2", "bad"), _job(results, "free2", None)],
        name="q3",
        storage=Location.of(results) / "ray",
        tasks={"bad": lambda: Countdown(polls=1, fail=True)},
        log=lines.append,
        study=True,
    )
    assert summary.trainings == 0 and len(summary.failed) == 4
    assert read_trials(results / "free2").empty
    assert any("[bad] FAILED: task bad failed" in line for line in lines)
