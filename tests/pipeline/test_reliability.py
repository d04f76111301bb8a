"""What a team meets beyond the happy path: bad data stopped before any trial starts,
a second driver on the same results folder, damaged result files, secrets kept out of
Ray's job records (issue 27; docs/reliability.md)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = next(p for p in Path(__file__).resolve().parents if (p / "pyproject.toml").is_file())
GNN2GNN = [sys.executable, "-m", "pipeline.cli"]


def _cli(args: list[str], tmp_path: Path, env: dict | None = None, timeout: float = 120):
    """Run ``gnn2gnn ARGS`` from the checkout: (result, seconds it took)."""
    t0 = time.monotonic()
    res = subprocess.run(
        [*GNN2GNN, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=timeout,
    )
    return res, time.monotonic() - t0


# -- fail fast: what every trial would fail on stops the driver ---------------------------
def _bad_data(tmp_path: Path, kind: str) -> Path:
    folder = tmp_path / f"data-{kind}"
    folder.mkdir()
    if kind == "truncated":  # a download cut short: the Parquet footer is missing
        real = Path(os.environ.get("GNN2GNN_DATA") or ROOT.parent / "shared" / "data")
        (folder / "natsbench_tss.parquet").write_bytes(
            (real / "natsbench_tss.parquet").read_bytes()[:4096]
        )
    return folder


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("empty", "no NATS-Bench data in"),
        ("truncated", "not a readable Parquet file"),
    ],
)
def test_a_sweep_whose_data_every_trial_would_miss_stops_before_any_trial(tmp_path, kind, message):
    data = _bad_data(tmp_path, kind)
    results = tmp_path / "results"
    res, seconds = _cli(
        ["sweep", "sweeps/ablation.yaml", "--benchmark", "natsbench", "--profile", "smoke"]
        + ["--results", str(results)],
        tmp_path,
        env={"GNN2GNN_DATA": str(data)},
    )
    print(f"{kind}: exit {res.returncode} after {seconds:.1f}s: {res.stderr.strip()}")
    assert res.returncode == 2, res.stderr[-2000:]
    assert message in res.stderr and str(data) in res.stderr
    assert "Traceback" not in res.stderr and len(res.stderr.strip().splitlines()) == 1
    assert seconds < 10
    # no trial started: no Ray session, no trial record, no MLflow run
    assert not (results / "ablation" / "trials").exists()
    assert not list(results.glob("**/ray")) and not list(results.glob("**/*.db"))


def test_a_wrong_dataset_for_the_benchmark_and_a_missing_pretraining_stop_at_once(tmp_path):
    res, seconds = _cli(
        ["sweep", "sweeps/smoke.yaml", "--benchmark", "nasbench101", "--dataset", "cifar100"]
        + ["--profile", "smoke", "--results", str(tmp_path / "r1")],
        tmp_path,
    )
    assert res.returncode == 2 and "CIFAR-10 only" in res.stderr, res.stderr[-2000:]
    assert "Traceback" not in res.stderr and seconds < 10
    missing = tmp_path / "no-pretraining"
    res, seconds = _cli(
        ["sweep", "sweeps/io_embedding.yaml", "--profile", "smoke"]
        + ["--results", str(tmp_path / "r2"), "--set", f"io_data={missing}"],
        tmp_path,
    )
    print(f"missing io_data: exit {res.returncode} after {seconds:.1f}s: {res.stderr.strip()}")
    assert res.returncode == 2, res.stderr[-2000:]
    assert f"{missing} is not a finished pretraining folder" in res.stderr
    assert "Traceback" not in res.stderr and seconds < 10
    assert not (tmp_path / "r2" / "io_embedding" / "trials").exists()


def test_an_empty_data_variable_counts_as_unset(monkeypatch, tmp_path):
    from pipeline.paths import candidate_data_dirs, resolve_data_dir

    monkeypatch.chdir(tmp_path)  # '' would otherwise mean this folder
    monkeypatch.setenv("GNN2GNN_DATA", "")
    assert [src for src, _ in candidate_data_dirs()][0] == "./data"
    assert resolve_data_dir() != tmp_path
    assert (resolve_data_dir() / "natsbench_tss.parquet").is_file()


# -- credentials: never in Ray's job records; forwarded only on request --------------------
FAKE_SECRET = "fake-secret-5f0c1e9a"

_DRIVER = """
import json, os, sys
import ray
from pipeline.sweep.session import apply_forwarded_credentials, init_ray

init_ray(sys.argv[1], forward_credentials=sys.argv[2] == "forward")

@ray.remote(num_cpus=0)
def seen(apply: bool):
    if apply:
        apply_forwarded_credentials()
    return os.environ.get("AWS_SECRET_ACCESS_KEY"), os.environ.get("AWS_DEFAULT_REGION")

print(json.dumps({"plain": ray.get(seen.remote(False)), "applied": ray.get(seen.remote(True))}))
"""


@pytest.mark.slow
def test_credentials_reach_workers_only_when_forwarded_and_never_through_the_job_record(
    tmp_path,
):
    """A Ray head started without credentials (a node that has none of its own); drivers
    with a fake secret in their environment, with and without --forward-credentials."""
    import json
    import secrets
    import signal
    import socket

    def free_port() -> int:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            return s.getsockname()[1]

    port = free_port()
    ray_tmp = Path(f"/tmp/g2g-cred-{secrets.token_hex(3)}")  # short: socket path limit
    node_env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "GNN2GNN_CRED"))}
    node_env.update(
        RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER="0",
        RAY_AUTH_MODE="token",
        RAY_AUTH_TOKEN=secrets.token_hex(16),
        PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}",
    )
    dash = free_port()
    head = subprocess.Popen(
        [str(Path(sys.executable).parent / "ray"), "start", "--head", "--port", str(port)]
        + ["--node-ip-address", "127.0.0.1", "--dashboard-host", "127.0.0.1"]
        + ["--dashboard-port", str(dash), "--num-cpus", "1"]
        + ["--block", "--disable-usage-stats", "--temp-dir", str(ray_tmp)],
        env=node_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        driver_env = {
            **node_env,
            "AWS_SECRET_ACCESS_KEY": FAKE_SECRET,
            "AWS_DEFAULT_REGION": "eu-fake-1",
        }
        seen = {}
        for mode in ("default", "forward"):
            deadline = time.monotonic() + 120
            while True:  # the head takes a while to listen
                res = subprocess.run(
                    [sys.executable, "-c", _DRIVER, f"127.0.0.1:{port}", mode],
                    env=driver_env,
                    cwd=ROOT,
                    capture_output=True,
                    text=True,
                    timeout=180,
                )
                if res.returncode == 0 or time.monotonic() > deadline:
                    break
                time.sleep(2)
            assert res.returncode == 0, res.stderr[-3000:]
            seen[mode] = json.loads(res.stdout.strip().splitlines()[-1])
        # the region (a setting) travels; the secret only through the actor, on request
        assert seen["default"] == {"plain": [None, "eu-fake-1"], "applied": [None, "eu-fake-1"]}
        assert seen["forward"]["applied"] == [FAKE_SECRET, "eu-fake-1"]
        assert seen["forward"]["plain"][0] is None  # not in the worker's runtime environment
        # Ray's job records, read with its job API: both drivers' runtime environments are
        # there (the region shows), the secret is not
        lister = (
            "import json, sys; from ray.job_submission import JobSubmissionClient; "
            "jobs = JobSubmissionClient(sys.argv[1]).list_jobs(); "
            "print(json.dumps([j.model_dump() for j in jobs], default=str))"
        )
        res = subprocess.run(  # in a process of its own: Ray reads RAY_AUTH_MODE once
            [sys.executable, "-c", lister, f"http://127.0.0.1:{dash}"],
            env=node_env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert res.returncode == 0, res.stderr[-2000:]
        jobs = json.loads(res.stdout.strip().splitlines()[-1])
        drivers = [job for job in jobs if "DRIVER" in str(job["type"])]
        assert len(drivers) >= 2 and all("eu-fake-1" in str(j["runtime_env"]) for j in drivers)
        assert FAKE_SECRET not in json.dumps(jobs)
    finally:
        os.killpg(head.pid, signal.SIGTERM)
        try:
            head.wait(timeout=5)
        except subprocess.TimeoutExpired:
            os.killpg(head.pid, signal.SIGKILL)
        subprocess.run(["rm", "-rf", str(ray_tmp)], check=False)


def test_the_ui_listens_on_loopback_unless_told_and_says_when_it_is_not():
    from pipeline.cli import build_parser
    from pipeline.cli.sweep import exposure_warning

    args = build_parser().parse_args(["ui"])
    assert args.host == "127.0.0.1"
    for host in ("127.0.0.1", "::1", "localhost", "127.0.0.2"):
        assert exposure_warning(host) is None, host
    for host in ("0.0.0.0", "::", "mlflow.example.org"):
        warning = exposure_warning(host)
        assert warning and host in warning and "basic-auth" in warning, host


# -- damaged parts: named by readers, re-run by --resume ----------------------------------
def _damage(file: Path, how: str) -> None:
    if how == "truncated":  # cut by a tool outside the project: no footer
        file.write_bytes(file.read_bytes()[: len(file.read_bytes()) // 2])
    else:  # a foreign Parquet file where a trial's record belongs
        import pandas as pd

        pd.DataFrame({"something": [1, 2]}).to_parquet(file)


@pytest.mark.parametrize(
    ("table", "how", "commands"),
    [
        ("trials", "truncated", ("tables", "report")),
        ("trials", "foreign", ("tables",)),
        ("epochs", "truncated", ("report",)),  # the curves of the report's figures
        ("generated", "truncated", ()),  # no table reads the cells themselves
    ],
)
def test_readers_name_a_damaged_part_and_stop(smoke_results, tmp_path, table, how, commands):
    import shutil

    from pipeline.store.results import DamagedPartError, damaged_parts, read_part, read_trials

    folder = tmp_path / "results" / "smoke"
    shutil.copytree(smoke_results[0] / "smoke", folder)
    victim = sorted((folder / table).glob("*.parquet"))[0]
    _damage(victim, how)
    reader = read_trials if table == "trials" else lambda f: read_part(f, table)
    with pytest.raises(DamagedPartError) as err:
        reader(folder)
    assert str(victim) in str(err.value)
    assert set(damaged_parts(folder)) == {victim.stem}
    # the commands that read it stop with one line naming the file
    for command in commands:
        res, _ = _cli([command, "--results", str(tmp_path / "results")], tmp_path)
        assert res.returncode == 2, (command, res.stderr[-2000:])
        assert str(victim) in res.stderr and "Traceback" not in res.stderr, command


@pytest.mark.slow
def test_resume_skips_a_damaged_part_with_a_warning_and_runs_its_trial_again(
    smoke_results, tmp_path
):
    import shutil

    import mlflow

    from pipeline.store.results import damaged_parts, read_part, read_trials

    results = tmp_path / "results"
    folder = results / "smoke"
    shutil.copytree(smoke_results[0] / "smoke", folder)
    before = read_trials(folder).set_index("trial_id")
    victim = sorted((folder / "generated").glob("*.parquet"))[0]
    _damage(victim, "truncated")
    res, _ = _cli(
        ["sweep", "sweeps/smoke.yaml", "--profile", "smoke", "--results", str(results)]
        + ["--resume"],
        tmp_path,
        timeout=600,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    assert f"warning: {victim}" in res.stderr and f"{victim.stem} runs again" in res.stderr
    assert "3 finished already, 1 to run" in res.stderr
    after = read_trials(folder)
    assert len(after) == 4 and after["trial_id"].is_unique and set(after.status) == {"ok"}
    assert not damaged_parts(folder)
    assert set(read_part(folder, "generated")["trial_id"]) == set(before.index)
    client = mlflow.tracking.MlflowClient(f"sqlite:///{folder}/mlflow.db")
    runs = client.search_runs([client.get_experiment_by_name("smoke").experiment_id])
    assert sorted(r.data.tags["trial_id"] for r in runs) == sorted(before.index)
    assert {r.info.status for r in runs} == {"FINISHED"}


# -- one driver per results folder --------------------------------------------------------
_HOLDER = """
import sys, time
from pipeline.store.lease import DriverLease
from pipeline.store.location import Location
DriverLease([Location.of(sys.argv[1])], beat=0.5).acquire()
print("held", flush=True)
time.sleep(600)
"""


def test_a_second_driver_refuses_at_once_and_a_killed_drivers_lease_ends_with_it(tmp_path):
    import signal
    import socket

    from pipeline.store.lease import LEASE_NAME, DriverLease, read_holder
    from pipeline.store.location import Location

    results = tmp_path / "results"
    folder = results / "smoke"
    first = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(folder)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        assert first.stdout.readline().strip() == "held"
        beat = read_holder(Location.of(folder)).beat
        res, seconds = _cli(
            ["sweep", "sweeps/smoke.yaml", "--profile", "smoke", "--results", str(results)],
            tmp_path,
        )
        print(f"second driver: exit {res.returncode} after {seconds:.1f}s: {res.stderr.strip()}")
        assert res.returncode == 2 and "Traceback" not in res.stderr
        assert f"host {socket.gethostname()}, PID {first.pid}, started " in res.stderr
        # refused before anything: no trial record, no MLflow store, no Ray session (the
        # seconds printed above are mostly the command's imports)
        assert not (folder / "trials").exists() and not (folder / "mlflow.db").exists()
        assert not (folder / "ray").exists()
        assert read_holder(Location.of(folder)).beat > beat  # the first one's heartbeat
    finally:
        os.killpg(first.pid, signal.SIGKILL)  # kill -9: no release
        first.wait()
    assert (folder / LEASE_NAME).exists()  # left behind, and over at once on this host
    with DriverLease([Location.of(folder)]) as lease:
        assert read_holder(Location.of(folder)).token == lease.holder.token
    assert not (folder / LEASE_NAME).exists()


def test_a_lease_from_another_host_holds_until_its_heartbeat_is_older_than_the_ttl(tmp_path):
    import json

    from pipeline.store.lease import LEASE_NAME, DriverLease, LeaseHeldError, read_holder
    from pipeline.store.location import Location

    folder = Location.of(tmp_path / "sweep")
    folder.mkdir()

    def other(age: float) -> None:
        now = time.time()
        (folder / LEASE_NAME).write_bytes(
            json.dumps(
                {"host": "node-7", "pid": 4242, "started": now - 3600, "process_start": None}
                | {"beat": now - age, "token": "theirs", "command": "gnn2gnn reproduce"}
            ).encode()
        )

    other(age=5)
    with pytest.raises(LeaseHeldError, match="host node-7, PID 4242, started .*reproduce"):
        DriverLease([folder], ttl=60).acquire()
    other(age=61)  # its machine died a minute ago: taken over
    lease = DriverLease([folder], ttl=60, beat=0.2).acquire()
    try:
        first = read_holder(folder).beat
        time.sleep(0.7)
        assert read_holder(folder).token == lease.holder.token
        assert read_holder(folder).beat > first
    finally:
        lease.release()
    (folder / LEASE_NAME).write_bytes(b'{"host": "node-7", "pi')  # a write cut short
    with DriverLease([folder]):  # an unreadable lease holds nothing
        pass


# -- a results disk that fills -------------------------------------------------------------
@pytest.fixture
def small_disk(tmp_path):
    """A 64 MB tmpfs made by the test (root; skipped with the reason where mount is refused)."""
    where = tmp_path / "disk"
    where.mkdir()
    res = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", str(where)],
        capture_output=True,
        text=True,
    )
    if res.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {res.stderr.strip() or res.returncode}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def _fill(disk: Path) -> Path:
    """Fill ``disk`` to the last byte with a filler file; returns it."""
    filler = disk / "filler"
    with open(filler, "wb") as out:
        try:
            while True:
                out.write(b"\0" * 65536)
                out.flush()
        except OSError:
            pass
    return filler


def test_a_full_results_disk_is_named_with_its_free_space_and_leaves_no_part(small_disk):
    import pandas as pd

    from pipeline.store.io import StorageFullError
    from pipeline.store.results import ResultsStore, read_part, read_trials

    folder = small_disk / "sweep"
    store = ResultsStore(folder)
    store.record({"trial_id": "first", "status": "ok"}, {"epochs": pd.DataFrame({"e": [1]})})
    filler = _fill(small_disk)
    big = pd.DataFrame({"x": range(200_000)})  # ~1.6 MB: does not fit in what is left
    with pytest.raises(StorageFullError) as err:
        store.record({"trial_id": "second", "status": "ok"}, {"generated": big})
    message = str(err.value)
    print(message)
    assert str(folder) in message and "MB free of" in message and "--resume" in message
    # nothing half-written: no part of the second trial, no temporary file
    names = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
    assert names == ["epochs/first.parquet", "trials/first.parquet"], names
    assert list(read_trials(folder)["trial_id"]) == ["first"]
    filler.unlink()  # space freed: the same record goes through
    store.record({"trial_id": "second", "status": "ok"}, {"generated": big})
    assert sorted(read_trials(folder)["trial_id"]) == ["first", "second"]
    assert len(read_part(folder, "generated")) == len(big)


@pytest.mark.slow
def test_a_sweep_on_a_full_disk_stops_with_one_line_and_runs_once_space_is_freed(
    small_disk, tmp_path
):
    results = small_disk / "results"
    filler = _fill(small_disk)
    args = ["sweep", "sweeps/smoke.yaml", "--profile", "smoke", "--results", str(results)]
    args += ["--tracking-uri", f"sqlite:///{tmp_path / 'mlflow.db'}"]
    res, seconds = _cli(args, tmp_path)
    print(f"full disk: exit {res.returncode} after {seconds:.1f}s: {res.stderr.strip()[-400:]}")
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert f"no space left on the device of {results}" in res.stderr
    filler.unlink()
    res, _ = _cli([*args, "--resume"], tmp_path, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    from pipeline.store.results import read_trials

    trials = read_trials(results / "smoke")
    assert len(trials) == 4 and trials["trial_id"].is_unique and set(trials.status) == {"ok"}
