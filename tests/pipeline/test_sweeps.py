"""Sweeps through real Ray Tune, real Parquet files and a real MLflow store."""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import mlflow
import pytest
import yaml

from pipeline.config import ConfigError
from pipeline.experiment import get_experiment, validate_trial_config
from pipeline.store.results import read_part, read_trials
from pipeline.sweep.spec import expand, load_sweep

ROOT = next(p for p in Path(__file__).resolve().parents if (p / "pyproject.toml").is_file())
GNN2GNN = [sys.executable, "-m", "pipeline.cli"]
pytestmark = pytest.mark.slow


def _runs(folder: Path, name: str):
    client = mlflow.tracking.MlflowClient(f"sqlite:///{folder}/mlflow.db")
    exp = client.get_experiment_by_name(name)
    return client.search_runs([exp.experiment_id]) if exp else []


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_http(url: str, timeout: float = 90) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            urllib.request.urlopen(url, timeout=2)
            return
        except urllib.error.HTTPError:  # answering (e.g. 401 without a token): it is up
            return
        except OSError:
            time.sleep(0.5)
    raise TimeoutError(url)


def test_smoke_sweep_writes_parquet_and_mlflow(smoke_results):
    out, summary, log = smoke_results
    folder = out / "smoke"
    assert summary["trials"] == 4 and summary["failed"] == []
    trials = read_trials(folder)
    epochs = read_part(folder, "epochs")
    generated = read_part(folder, "generated")
    assert len(trials) == 4 and set(trials.status) == {"ok"}
    assert set(trials.model) == {"gnn2gnn", "molgan", "rnn", "random"}
    for col in (
        "profile",
        "seed",
        "benchmark",
        "dataset",
        "label",
        "label_coverage",
        "mean_acc",
        "top10",
        "wall_seconds",
        "device",
        "versions",
        "data_fingerprint",
        "hidden",
        "optimizer",
    ):
        assert col in trials.columns, col
    assert (trials.profile == "smoke").all() and (trials.label == "cifar10_test_acc").all()
    assert len(epochs) == 2 * 3 + 1 and set(epochs.trial_id) == set(trials.trial_id)
    assert len(generated) == 4 * 200
    assert set(generated.columns) >= {"trial_id", "hash", "ops", "adjacency", "accuracy"}
    runs = _runs(folder, "smoke")
    assert len(runs) == 4 and {r.info.status for r in runs} == {"FINISHED"}
    assert {r.data.tags["trial_id"] for r in runs} == set(trials.trial_id)
    run = next(r for r in runs if r.data.params["model"] == "gnn2gnn")
    assert run.data.tags["profile"] == "smoke" and run.data.tags["benchmark"] == "natsbench"
    assert "final_mean_acc" in run.data.metrics
    client = mlflow.tracking.MlflowClient(f"sqlite:///{folder}/mlflow.db")
    history = client.get_metric_history(run.info.run_id, "validity")
    assert [m.step for m in history] == [1, 2]
    arts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"generated.parquet", "model.pt"} <= arts
    assert "4/4 done" in log


def test_ui_server_serves_the_sweep_runs(smoke_results, tmp_path):
    out, _, _ = smoke_results
    port = _free_port()
    proc = subprocess.Popen(
        [*GNN2GNN, "ui", "--results", str(out), "--port", str(port)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        _wait_http(f"http://127.0.0.1:{port}/health")
        req = urllib.request.Request(
            f"http://127.0.0.1:{port}/api/2.0/mlflow/experiments/get-by-name?experiment_name=smoke"
        )
        exp = json.load(urllib.request.urlopen(req))["experiment"]
        body = json.dumps({"experiment_ids": [exp["experiment_id"]]}).encode()
        req = urllib.request.Request(
            f"http://127.0.0.1:{port}/api/2.0/mlflow/runs/search",
            data=body,
            headers={"Content-Type": "application/json"},
        )
        runs = json.load(urllib.request.urlopen(req))["runs"]
        assert len(runs) == 4
        names = sorted(r["info"]["run_name"] for r in runs)
        chromium = shutil.which("chromium") or shutil.which("chromium-browser")
        if chromium is None:
            pytest.skip("chromium not installed (apt-get install chromium): UI page not rendered")
        dump = subprocess.run(
            [
                chromium,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                f"--user-data-dir={tmp_path / 'chrome'}",
                "--virtual-time-budget=20000",
                "--dump-dom",
                f"http://127.0.0.1:{port}/#/experiments/{exp['experiment_id']}/runs",
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert all(name in dump.stdout for name in names), names
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)


def _write_sweep(path: Path, **fields) -> Path:
    import yaml

    base = {
        "name": "t",
        "trainable": "gnn2gnn",
        "seeds": 1,
        "retries": 1,
        "base": {"benchmark": "natsbench", "model": "random"},
    }
    base.update(fields)
    path.write_text(yaml.safe_dump(base))
    return path


FLAKY = """
import os
from pathlib import Path

from pipeline.experiment import Experiment
from trainables.gnn2gnn import EXPERIMENT as GNN2GNN


def run_trial(config, reporter=None, progress=False):
    # the trial with er_p 0.3 raises on its first attempt only (a marker file remembers)
    marker = Path(os.environ["FLAKY_MARKERS"]) / str(config["er_p"])
    if config["er_p"] == 0.3 and not marker.exists():
        marker.write_text("failed once")
        raise RuntimeError("injected failure on the first attempt")
    return GNN2GNN.run_trial(config, reporter=reporter, progress=progress)


EXPERIMENT = Experiment(
    name="flaky",
    config=GNN2GNN.config,
    profiles=GNN2GNN.profiles,
    run_trial=run_trial,
    run_name_fields=("er_p", "seed"),
)
"""


def test_failed_trial_is_retried_then_recorded_and_others_go_on(tmp_path, plugin, monkeypatch):
    """A plugin experiment (the fault lives in the test, not in the pipeline) fails once."""
    from pipeline.sweep.run import run_sweep
    from pipeline.sweep.spec import trial_id

    plugin("flaky_experiment", FLAKY.replace('name="flaky"', 'name="flaky_experiment"'))
    (tmp_path / "markers").mkdir()
    monkeypatch.setenv("FLAKY_MARKERS", str(tmp_path / "markers"))
    spec = load_sweep(
        _write_sweep(
            tmp_path / "faults.yaml",
            name="faults",
            trainable="flaky_experiment",
            variants=[
                {"er_p": 0.3},
                {"er_p": 0.5},
                {"er_p": 0.4, "data_dir": str(tmp_path / "no")},
            ],
        ),
        validate_trial_config,
    )
    trials = expand(spec, "smoke")
    flaky = trial_id(trials[0])
    summary = run_sweep(
        spec,
        experiment=get_experiment("flaky_experiment"),
        profile="smoke",
        results=tmp_path / "res",
        max_concurrent=2,
    )
    folder = tmp_path / "res" / "faults"
    table = read_trials(folder).set_index("trial_id")
    assert len(table) == 3
    assert table.loc[flaky, "status"] == "ok" and table.loc[flaky, "attempts"] == 2
    broken = trial_id(trials[2])
    assert summary.failed == [broken]
    assert table.loc[broken, "status"] == "failed"
    assert "no data directory found" in table.loc[broken, "error"]
    runs = {r.data.tags["trial_id"]: r for r in _runs(folder, "faults")}
    assert runs[broken].info.status == "FAILED" and runs[flaky].info.status == "FINISHED"
    assert runs[flaky].info.run_name.startswith("er_p=0.3-seed=0-")  # the plugin's fields


def test_killed_driver_resumes_without_duplicates(tmp_path):
    results = tmp_path / "res"
    cmd = [
        *GNN2GNN,
        "sweep",
        "sweeps/smoke.yaml",
        "--profile",
        "smoke",
        "--results",
        str(results),
        "--max-concurrent",
        "1",
    ]
    proc = subprocess.Popen(
        cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    trials_dir = results / "smoke" / "trials"

    def finished() -> list[Path]:  # not the hidden temporary file of a write in progress
        return [p for p in trials_dir.glob("*.parquet") if not p.name.startswith(".")]

    deadline = time.time() + 300
    while time.time() < deadline and not finished():
        time.sleep(0.5)
    assert finished(), "no trial finished before the deadline"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    done_before = set(read_trials(results / "smoke").trial_id)
    assert 1 <= len(done_before) < 4
    again = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    assert "already holds" in again.stderr and again.returncode == 2  # no silent re-run
    res = subprocess.run([*cmd, "--resume"], cwd=ROOT, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr[-3000:]
    summary = json.loads(res.stdout.strip().splitlines()[-1])
    assert summary["skipped_finished"] == len(done_before)
    trials = read_trials(results / "smoke")
    assert len(trials) == 4 and trials.trial_id.is_unique and set(trials.status) == {"ok"}
    epochs = read_part(results / "smoke", "epochs")
    assert len(epochs) == 7 and not epochs.duplicated(["trial_id", "epoch"]).any()
    runs = _runs(results / "smoke", "smoke")
    tids = [r.data.tags["trial_id"] for r in runs]
    assert len(tids) == 4 and len(set(tids)) == 4
    assert {r.info.status for r in runs} == {"FINISHED"}


def test_packed_sweep_keeps_one_row_and_one_run_per_trial_and_resumes_per_trial(tmp_path):
    """GNN2GNN seeds packed into one Ray trial, baselines alone: every trial still gets its
    own Parquet row, epochs and MLflow run; a resumed sweep with more seeds packs only the
    trials that have not finished."""
    sweep = tmp_path / "packs.yaml"
    text = (ROOT / "sweeps" / "smoke.yaml").read_text().replace("name: smoke", "name: packs")
    sweep.write_text(text.replace("[gnn2gnn, molgan, rnn, random]", "[gnn2gnn, random]"))
    results = tmp_path / "res"
    cmd = [*GNN2GNN, "sweep", str(sweep), "--profile", "smoke", "--results", str(results)]
    first = subprocess.run([*cmd, "--seeds", "2"], cwd=ROOT, capture_output=True, text=True)
    assert first.returncode == 0, first.stderr[-3000:]
    res = subprocess.run(
        [*cmd, "--seeds", "5", "--pack", "4", "--resume"], cwd=ROOT, capture_output=True, text=True
    )
    assert res.returncode == 0, res.stderr[-3000:]
    summary = json.loads(res.stdout.strip().splitlines()[-1])
    assert summary["skipped_finished"] == 4 and summary["ran"] == 6
    assert "6 trials packed into 4 Ray trials" in res.stderr  # seeds 2-4 of gnn2gnn as one
    trials = read_trials(results / "packs")
    assert len(trials) == 10 and trials.trial_id.is_unique and set(trials.status) == {"ok"}
    ours = trials[trials.model == "gnn2gnn"].set_index("seed")
    assert ours.loc[[2, 3, 4], "packed"].eq(3).all() and ours.loc[[0, 1], "packed"].isna().all()
    epochs = read_part(results / "packs", "epochs")
    assert len(epochs) == 5 * 2 + 5 and not epochs.duplicated(["trial_id", "epoch"]).any()
    runs = _runs(results / "packs", "packs")
    assert sorted(r.data.tags["trial_id"] for r in runs) == sorted(trials.trial_id)
    assert {r.info.status for r in runs} == {"FINISHED"}
    client = mlflow.tracking.MlflowClient(f"sqlite:///{results / 'packs'}/mlflow.db")
    for run in runs:
        if run.data.params["model"] == "gnn2gnn":
            history = client.get_metric_history(run.info.run_id, "validity")
            assert [m.step for m in history] == [1, 2], run.data.params["seed"]


@pytest.mark.parametrize(
    "fields, message",
    [
        ({"grid": {"mu": [1, 2]}, "colour": "red"}, "colour: unknown field"),
        ({"seeds": "three"}, "seeds"),
        ({"retries": -1}, "retries"),
        ({"grid": {"tau": [0.1, -1]}}, "tau"),
        ({"grid": {"learning_rate": [0.1]}}, "learning_rate: unknown field"),
        ({"trainable": "gpt"}, "trainable"),
    ],
)
def test_bad_sweep_file_names_file_and_field(tmp_path, fields, message):
    path = _write_sweep(tmp_path / "bad.yaml", **fields)
    with pytest.raises(ConfigError, match=message) as err:
        load_sweep(path, validate_trial_config)
    assert str(path) in str(err.value)


def test_sweep_cli_bad_file_exits_2(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("name: [unclosed")
    res = subprocess.run([*GNN2GNN, "sweep", str(path)], cwd=ROOT, capture_output=True, text=True)
    assert res.returncode == 2 and "not valid YAML" in res.stderr


def test_every_sweep_file_in_the_repo_is_valid():
    from pipeline.study import Study

    studies = 0
    for path in sorted((ROOT / "sweeps").glob("*.yaml")):
        if "entries" in yaml.safe_load(path.read_text()):  # a study file: its own checks
            assert Study(path).entries, path
            with pytest.raises(ConfigError, match="gnn2gnn reproduce"):
                load_sweep(path, validate_trial_config)
            studies += 1
            continue
        spec = load_sweep(path, validate_trial_config)
        assert expand(spec, "paper", validate_config=validate_trial_config), path
    assert studies == 1


def test_ray_job_submit_to_a_local_head_node(tmp_path, data_dir):
    """`ray job submit ... -- gnn2gnn sweep` on a head whose environment holds (fake) storage
    credentials, as a node's own: the sweep runs with what the node has."""
    ray_bin = Path(sys.executable).parent / "ray"
    gcs, dash = _free_port(), _free_port()
    ray_tmp = tempfile.mkdtemp(prefix="gnn2gnn-ray-", dir="/tmp")
    secret = "fake-secret-0d6e2b71"
    env = {
        **os.environ,
        "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
        "RAY_AUTH_MODE": "token",
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        "AWS_ACCESS_KEY_ID": "fake-key-id",
        "AWS_SECRET_ACCESS_KEY": secret,
        "AWS_DEFAULT_REGION": "eu-fake-1",
    }
    head = subprocess.Popen(
        [
            str(ray_bin),
            "start",
            "--head",
            "--node-ip-address",
            "127.0.0.1",
            "--port",
            str(gcs),
            "--dashboard-host",
            "127.0.0.1",
            "--dashboard-port",
            str(dash),
            "--num-cpus",
            "2",
            "--block",
            "--temp-dir",
            ray_tmp,
        ],  # short: Ray's socket paths have a length limit
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        _wait_http(f"http://127.0.0.1:{dash}/api/version", timeout=120)
        results = tmp_path / "res"
        submit = [
            str(ray_bin),
            "job",
            "submit",
            "--address",
            f"http://127.0.0.1:{dash}",
            "--working-dir",
            str(ROOT),
            "--",
            "gnn2gnn",
            "sweep",
            "sweeps/smoke.yaml",
            "--profile",
            "smoke",
            "--address",
            "auto",
            "--results",
            str(results),
            "--data-dir",
            str(data_dir),
        ]
        # The dashboard answers before its job agent has registered; until then a submit
        # is refused ("No available agent", no job created): try again for a while.
        deadline = time.time() + 120
        while True:
            res = subprocess.run(submit, env=env, capture_output=True, text=True, timeout=600)
            if "No available agent" not in res.stderr or time.time() > deadline:
                break
            time.sleep(2)
        assert res.returncode == 0, (res.stdout + res.stderr)[-4000:]
        trials = read_trials(results / "smoke")
        assert len(trials) == 4 and set(trials.status) == {"ok"}
    finally:
        os.killpg(head.pid, signal.SIGTERM)
        try:
            head.wait(timeout=5)  # `ray start --block` may not stop on SIGTERM: then SIGKILL
        except subprocess.TimeoutExpired:
            os.killpg(head.pid, signal.SIGKILL)
        shutil.rmtree(ray_tmp, ignore_errors=True)


def test_embedded_ray_listens_on_loopback_only():
    import psutil
    import ray

    from pipeline.sweep.run import init_ray

    assert init_ray(None) is True
    try:
        assert ray.util.get_node_ip_address() == "127.0.0.1"
        me = psutil.Process()
        pids = {p.pid for p in me.children(recursive=True)} | {me.pid}
        listening = [
            c
            for c in psutil.net_connections("inet")
            if c.status == psutil.CONN_LISTEN and c.pid in pids
        ]
        assert listening, "found no Ray sockets to check"
        exposed = [
            c.laddr
            for c in listening
            if c.laddr.ip not in ("127.0.0.1", "::1") and not c.laddr.ip.startswith("::ffff:127.")
        ]
        assert not exposed, exposed
    finally:
        ray.shutdown()


def test_unreachable_address_fails_fast():
    from pipeline.sweep.run import SweepError, check_address

    with pytest.raises(SweepError, match="no Ray cluster at 127.0.0.1:1"):
        check_address("127.0.0.1:1")
