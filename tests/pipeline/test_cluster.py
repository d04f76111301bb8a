"""Beyond one machine: results on object storage, a two-node Ray cluster, launcher configs.

The two-node tests start a real Ray head and a second node with ``ray start``, each in a
network namespace of its own joined by a veth link (their addresses exist only there), each
in its own process group and temporary directory (stopped by process group, never ``ray
stop``), an S3-compatible server (moto's standalone server) beside the head, and run the
smoke sweep and the study's Table 3 against them. Tests of object storage alone use a
server on 127.0.0.1.
"""

from __future__ import annotations

import copy
import io
import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pyarrow.dataset as pads
import pyarrow.fs as pafs
import pytest
import yaml

ROOT = next(p for p in Path(__file__).resolve().parents if (p / "pyproject.toml").is_file())
BIN = Path(sys.executable).parent
BUCKET = "gnn2gnn-test"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait(predicate, timeout: float, what: str, poll: float = 0.5):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(poll)
    raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")


def _stop(proc: subprocess.Popen) -> None:
    """Stop a process started in its own session, and everything in its group."""
    for sig, wait in ((signal.SIGTERM, 5), (signal.SIGKILL, 10)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


# -- the launcher configs -----------------------------------------------------------------
def _prepared(path: Path) -> dict:
    from ray.autoscaler._private.util import prepare_config, validate_config

    config = prepare_config(copy.deepcopy(yaml.safe_load(path.read_text())))
    validate_config(config)  # Ray's own validation, as `ray up` runs it
    return config


def test_cluster_configs_pass_rays_validation():
    import jsonschema

    files = sorted((ROOT / "cluster").glob("*.yaml"))
    assert {f.name for f in files} >= {"local.yaml", "aws.yaml"}
    for path in files:
        config = _prepared(path)
        assert any("gnn2gnn" in cmd for cmd in config["setup_commands"]), path
        assert config["file_mounts"], path  # the checkout goes to every node
    aws = _prepared(ROOT / "cluster" / "aws.yaml")
    assert aws["available_node_types"]["gpu_worker"]["node_config"]["InstanceType"].startswith("g")
    # the same validation rejects a broken config: the check above can fail
    from ray.autoscaler._private.util import validate_config

    broken = copy.deepcopy(aws)
    broken["max_workers"] = "many"
    with pytest.raises(jsonschema.ValidationError):
        validate_config(broken)


def test_submit_script_waits_for_the_workers_each_config_starts_with(tmp_path):
    sys.path.insert(0, str(ROOT / "cluster"))
    try:
        import submit_sweep
    finally:
        sys.path.remove(str(ROOT / "cluster"))
    for name, workers in (("aws.yaml", 1), ("local.yaml", 2)):
        boot = tmp_path / name  # what `ray up` writes to the head as ~/ray_bootstrap_config.yaml
        boot.write_text(yaml.safe_dump(_prepared(ROOT / "cluster" / name)))
        assert submit_sweep.expected_workers(boot) == workers, name
    assert submit_sweep.expected_workers(tmp_path / "none.yaml") == 0


def test_submit_script_runs_any_subcommand_and_the_older_sweep_form():
    sys.path.insert(0, str(ROOT / "cluster"))
    try:
        import submit_sweep
    finally:
        sys.path.remove(str(ROOT / "cluster"))
    line = submit_sweep.command_line
    assert line(["reproduce", "--profile", "paper"]) == [
        "reproduce", "--profile", "paper", "--address", "auto",
    ]  # fmt: skip
    assert line(["sweeps/ablation.yaml", "--profile", "paper"])[:2] == [
        "sweep",
        "sweeps/ablation.yaml",
    ]
    assert line(["sweep", "s.yaml", "--address", "ray://h:10001"]) == [
        "sweep", "s.yaml", "--address", "ray://h:10001",
    ]  # fmt: skip
    assert line(["report", "--results", "s3://b/p"]) == ["report", "--results", "s3://b/p"]


# -- an S3-compatible server and a two-node cluster ----------------------------------------
@dataclass
class S3:
    endpoint: str
    env: dict
    pid: int = 0  # the server's process (SIGSTOP makes it stop answering)

    def fs(self) -> pafs.S3FileSystem:
        return pafs.S3FileSystem(
            endpoint_override=self.endpoint,
            access_key=self.env["AWS_ACCESS_KEY_ID"],
            secret_key=self.env["AWS_SECRET_ACCESS_KEY"],
            region=self.env["AWS_DEFAULT_REGION"],
            allow_bucket_creation=True,
        )


def _moto(host: str, port: int, log: Path, wrap=lambda argv: argv):
    """moto's S3 server on ``host:port`` (``wrap``: e.g. into a namespace): the process and
    the variables that reach it."""
    server = subprocess.Popen(
        wrap([str(BIN / "moto_server"), "-H", host, "-p", str(port)]),
        stdout=open(log, "w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    env = {
        "AWS_ENDPOINT_URL": f"http://{host}:{port}",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    return server, env


@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    port = _free_port()
    log = tmp_path_factory.mktemp("moto") / "moto.log"
    server, env = _moto("127.0.0.1", port, log)
    endpoint = env["AWS_ENDPOINT_URL"]
    try:
        _wait(lambda: _listening(port), 60, "the S3 server")
        store = S3(endpoint, env, server.pid)
        store.fs().create_dir(BUCKET)
        yield store
    finally:
        _stop(server)


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


# -- a two-node cluster in network namespaces of its own -----------------------------------
@dataclass
class Netns:
    """Two network namespaces joined by a veth link; nothing else reaches them."""

    names: tuple[str, str]
    ips: tuple[str, str]

    def argv(self, i: int, argv: list[str]) -> list[str]:
        """``argv`` run inside namespace ``i``."""
        return ["ip", "netns", "exec", self.names[i], *argv]

    def listening(self, i: int, port: int) -> bool:
        probe = f"import socket; socket.create_connection(({self.ips[i]!r}, {port}), timeout=1)"
        res = subprocess.run(self.argv(i, [sys.executable, "-c", probe]), capture_output=True)
        return res.returncode == 0


def _remove_stale_netns() -> None:
    """Remove the namespaces of a test run that was killed (SIGKILL skips the fixture's own
    clean-up): they are named after the run's PID, and removed, with whatever still runs in
    them, once that process is gone (or when this run reuses its PID)."""
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    for name in (line.split()[0] for line in listed.splitlines() if line.strip()):
        owner = re.fullmatch(r"g2g(\d+)[ab]", name)
        if not owner:
            continue
        pid = int(owner.group(1))
        if pid != os.getpid() and Path(f"/proc/{pid}").exists():
            continue  # another test run's, still alive
        inside = subprocess.run(["ip", "netns", "pids", name], capture_output=True, text=True)
        for leftover in inside.stdout.split():
            try:
                os.kill(int(leftover), signal.SIGKILL)
            except (ProcessLookupError, ValueError):
                pass
        subprocess.run(["ip", "netns", "del", name], capture_output=True)


@pytest.fixture(scope="module")
def netns():
    """Two namespaces joined by a veth pair (10.231.R.1 and .2 on it), loopback up, and a
    default route over the link (Ray finds a node's address by the route; a packet sent
    anywhere else ends in the other namespace, which has no way out). The cluster tests'
    Ray nodes, S3 server and drivers run only in there, on addresses the test made. Skipped
    with the reason where namespaces cannot be made; removed afterwards, also on failure, and
    by the next run when this one is killed."""
    _remove_stale_netns()
    tag = os.getpid()  # names at most 15 characters: g2g + PID (up to 7 digits) + vb
    names, links = (f"g2g{tag}a", f"g2g{tag}b"), (f"g2g{tag}va", f"g2g{tag}vb")
    net = f"10.231.{secrets.randbelow(250) + 1}"
    ips = (f"{net}.1", f"{net}.2")
    steps = [["ip", "netns", "add", names[0]], ["ip", "netns", "add", names[1]]]
    steps.append(
        ["ip", "link", "add", links[0], "netns", names[0], "type", "veth"]
        + ["peer", "name", links[1], "netns", names[1]]
    )
    for i in (0, 1):
        steps += [
            ["ip", "-n", names[i], "link", "set", "lo", "up"],
            ["ip", "-n", names[i], "addr", "add", f"{ips[i]}/24", "dev", links[i]],
            ["ip", "-n", names[i], "link", "set", links[i], "up"],
            ["ip", "-n", names[i], "route", "add", "default", "dev", links[i]],
        ]
    try:
        for step in steps:
            res = subprocess.run(step, capture_output=True, text=True)
            if res.returncode != 0:
                pytest.skip(
                    f"cannot make network namespaces here ({' '.join(step)}: "
                    f"{res.stderr.strip() or res.returncode}); the two-node tests need them"
                )
        yield Netns(names, ips)
    finally:
        for name in names:
            subprocess.run(["ip", "netns", "del", name], capture_output=True)


_NS_S3 = """
import json, sys
import pyarrow.dataset as pads, pyarrow.fs as pafs
fs = pafs.S3FileSystem(endpoint_override=sys.argv[1], access_key="testing",
                       secret_key="testing", region="us-east-1", allow_bucket_creation=True)
op, path = sys.argv[2], sys.argv[3]
if op == "mkdir":
    fs.create_dir(path)
elif op == "put":
    with fs.open_output_stream(path) as out:
        out.write(open(sys.argv[4], "rb").read())
elif op == "names":
    infos = fs.get_file_info(pafs.FileSelector(path, allow_not_found=True))
    print(json.dumps([i.base_name for i in infos]))
elif op == "table":
    frame = pads.dataset(path, filesystem=fs, format="parquet").to_table().to_pandas()
    print(frame.to_json(orient="records"))
elif op == "text":
    with fs.open_input_stream(path) as f:
        sys.stdout.write(f.read().decode())
elif op == "is_file":
    print(json.dumps(fs.get_file_info(path).type == pafs.FileType.File))
"""


@dataclass
class NsS3:
    """The S3 server of the namespaced cluster, read and written from inside namespace 0
    (the test process itself cannot reach it)."""

    net: Netns
    endpoint: str
    env: dict

    def _run(self, *args: str) -> str:
        cmd = self.net.argv(0, [sys.executable, "-c", _NS_S3, self.endpoint, *args])
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        assert res.returncode == 0, res.stderr[-2000:]
        return res.stdout

    def put(self, path: str, local: Path) -> None:
        self._run("put", path, str(local))

    def names(self, prefix: str) -> list[str]:
        return json.loads(self._run("names", prefix))

    def table(self, prefix: str):
        import pandas as pd

        return pd.DataFrame(json.loads(self._run("table", prefix)))

    def text(self, path: str) -> str:
        return self._run("text", path)

    def is_file(self, path: str) -> bool:
        return json.loads(self._run("is_file", path))


@pytest.fixture(scope="module")
def ns_s3(netns, tmp_path_factory):
    """moto's S3 server in namespace 0, on its veth address."""
    port = _free_port()
    log = tmp_path_factory.mktemp("moto-ns") / "moto.log"
    server, env = _moto(netns.ips[0], port, log, lambda argv: netns.argv(0, argv))
    endpoint = env["AWS_ENDPOINT_URL"]
    try:
        _wait(lambda: netns.listening(0, port), 60, "the S3 server in its namespace")
        store = NsS3(netns, endpoint, env)
        store._run("mkdir", BUCKET)
        yield store
    finally:
        _stop(server)


@dataclass
class Cluster:
    address: str
    env: dict
    node2_cache: Path
    net: Netns
    node2_pgid: int  # the second node's `ray start` process group


@pytest.fixture(scope="module")
def two_nodes(tmp_path_factory, netns, ns_s3):
    """A Ray head (no trial resource) in namespace 0 and a second node with the
    ``trial_node`` resource in namespace 1, each advertising its own veth address, each its
    own process group and temp dir; token auth with a fresh token. The nodes hold the S3
    server's credentials in their own environment (a node's own credentials: the driver
    forwards none)."""
    port = _free_port()
    env = {
        **os.environ,
        **ns_s3.env,
        "RAY_AUTH_MODE": "token",
        "RAY_AUTH_TOKEN": secrets.token_hex(16),
        "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "1",  # multi-node mode (a sweep's default: 0)
        "PATH": f"{BIN}:{os.environ['PATH']}",
    }
    common = ["--num-cpus", "1", "--block", "--disable-usage-stats"]
    common += ["--object-store-memory", str(150 * 1024**2)]

    tmp_path = tmp_path_factory.mktemp("two-nodes")
    procs = []
    temps = [Path(f"/tmp/g2g-ray-{os.getpid()}-{i}-{secrets.token_hex(2)}") for i in (1, 2)]
    address = f"{netns.ips[0]}:{port}"
    try:
        head_cmd = [str(BIN / "ray"), "start", "--head", "--port", str(port)]
        head_cmd += ["--node-ip-address", netns.ips[0], "--include-dashboard", "false"]
        head_cmd += [*common, "--temp-dir", str(temps[0])]
        procs.append(_start(netns.argv(0, head_cmd), env, tmp_path / "head.log"))
        _wait(lambda: netns.listening(0, port), 120, "the Ray head")
        node2_cache = tmp_path / "node2-cache"
        node2_env = {**env, "GNN2GNN_CACHE": str(node2_cache)}
        node_cmd = [str(BIN / "ray"), "start", "--address", address]
        node_cmd += ["--node-ip-address", netns.ips[1], "--resources", '{"trial_node": 4}']
        node_cmd += [*common, "--temp-dir", str(temps[1])]
        procs.append(_start(netns.argv(1, node_cmd), node2_env, tmp_path / "node2.log"))
        _wait(lambda: _has_two_nodes(netns, address, env), 180, "the second node", poll=3)
        yield Cluster(address, env, node2_cache, netns, procs[1].pid)
    finally:
        for proc in reversed(procs):
            _stop(proc)
        for temp in temps:
            subprocess.run(["rm", "-rf", str(temp)], check=False)


def _start(cmd: list[str], env: dict, log: Path) -> subprocess.Popen:
    return subprocess.Popen(
        cmd, env=env, stdout=open(log, "w"), stderr=subprocess.STDOUT, start_new_session=True
    )


def _has_two_nodes(net: Netns, address: str, env: dict) -> bool:
    probe = f"import ray; ray.init(address={address!r}, log_to_driver=False); "
    probe += "print(sum(n['Alive'] for n in ray.nodes()))"
    res = subprocess.run(
        net.argv(0, [sys.executable, "-c", probe]),
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return res.returncode == 0 and res.stdout.strip().endswith("2")


@pytest.mark.slow
def test_smoke_sweep_on_two_nodes_lands_once_on_s3_after_kill_and_resume(
    tmp_path, data_dir, ns_s3, two_nodes
):
    from mlflow.tracking import MlflowClient

    # the data on object storage: the trials' node copies it once into its cache
    ns_s3.put(f"{BUCKET}/data/natsbench_tss.parquet", Path(data_dir) / "natsbench_tss.parquet")
    spec = yaml.safe_load((ROOT / "sweeps" / "smoke.yaml").read_text())
    spec["resources"] = {**spec.get("resources", {}), "custom": {"trial_node": 1}}  # node 2 only
    sweep_file = tmp_path / "smoke.yaml"
    sweep_file.write_text(yaml.safe_dump(spec))
    results = f"s3://{BUCKET}/runs/one"
    mlflow_db = tmp_path / "mlflow.db"
    cmd = [str(BIN / "gnn2gnn"), "sweep", str(sweep_file), "--profile", "smoke"]
    cmd += ["--address", two_nodes.address, "--results", results]
    cmd += ["--tracking-uri", f"sqlite:///{mlflow_db}", "--data-dir", f"s3://{BUCKET}/data"]
    cmd = two_nodes.net.argv(0, cmd)  # the driver on the head's machine
    # the driver as a user's shell starts it: the project's own default (single-node mode
    # for an embedded Ray) applies; only the nodes run in multi-node mode
    env = {**two_nodes.env, **ns_s3.env}
    env.pop("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER")
    trials_dir = f"{BUCKET}/runs/one/smoke/trials"

    def parts() -> list[str]:
        return [n for n in ns_s3.names(trials_dir) if n.endswith(".parquet")]

    log = open(tmp_path / "driver1.log", "w")
    driver = subprocess.Popen(
        cmd, env=env, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    try:
        _wait(lambda: parts() or driver.poll() is not None, 400, "the first trial on S3")
        assert driver.poll() is None, (tmp_path / "driver1.log").read_text()[-3000:]
        os.kill(driver.pid, signal.SIGKILL)  # the driver dies between trials
        driver.wait(timeout=30)
    finally:
        _stop(driver)
    before = len(parts())
    assert 1 <= before < 4
    res = subprocess.run(
        [*cmd, "--resume"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=600
    )
    assert res.returncode == 0, (res.stdout + res.stderr)[-4000:]
    assert f"{before} finished already, {4 - before} to run" in res.stdout + res.stderr

    # every trial exactly once in the bucket, read back with pyarrow alone
    table = ns_s3.table(trials_dir)
    assert len(table) == 4 and table["trial_id"].is_unique
    assert set(table["status"]) == {"ok"}
    assert sorted(table["model"]) == ["gnn2gnn", "molgan", "random", "rnn"]
    epochs = ns_s3.table(f"{BUCKET}/runs/one/smoke/epochs")
    assert set(epochs["trial_id"]) == set(table["trial_id"])
    # the trials ran on node 2: its cache holds the staged data (the head's does not)
    staged = list((two_nodes.node2_cache / "data").glob("*/natsbench_tss.parquet"))
    assert len(staged) == 1 and (staged[0].parent / ".complete").exists()
    # and exactly once in MLflow, nothing left RUNNING by the killed driver
    client = MlflowClient(f"sqlite:///{mlflow_db}")
    exp = client.get_experiment_by_name("smoke")
    runs = client.search_runs([exp.experiment_id], max_results=100)
    ids = [r.data.tags["trial_id"] for r in runs]
    assert sorted(ids) == sorted(table["trial_id"])
    assert {r.info.status for r in runs} == {"FINISHED"}
    assert {r.data.tags["results"] for r in runs} == {f"{results}/smoke"}


@pytest.mark.slow
def test_reproduce_on_two_nodes_lands_every_trial_once_on_s3_and_reports_from_it(
    tmp_path, data_dir, ns_s3, two_nodes
):
    """`gnn2gnn reproduce --only 3` at the smoke profile on the two-node cluster, results on
    the S3 server: every trial of both benchmarks' Table 3 in the bucket once, and the
    report written from the bucket into it."""
    from mlflow.tracking import MlflowClient

    results = f"s3://{BUCKET}/runs/papers"
    mlflow_db = tmp_path / "mlflow.db"
    cmd = [str(BIN / "gnn2gnn"), "reproduce", "--profile", "smoke", "--only", "3"]
    cmd += ["--address", two_nodes.address, "--results", results, "--data-dir", str(data_dir)]
    cmd += ["--tracking-uri", f"sqlite:///{mlflow_db}", "--out", str(tmp_path / "report")]
    env = {**two_nodes.env, **ns_s3.env}
    env.pop("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER")
    t0 = time.monotonic()
    res = subprocess.run(
        two_nodes.net.argv(0, cmd), env=env, cwd=ROOT, capture_output=True, text=True, timeout=600
    )
    assert res.returncode == 0, (res.stdout + res.stderr)[-4000:]
    print(f"reproduce --only 3 on two nodes: {time.monotonic() - t0:.0f}s")
    summary = json.loads(res.stdout.strip().splitlines()[-1])
    assert summary["trainings"] == 8 and summary["failed"] == []
    client = MlflowClient(f"sqlite:///{mlflow_db}")
    runs = client.search_runs([client.get_experiment_by_name("baselines").experiment_id])
    for bench in ("nasbench101", "natsbench"):
        where = f"{BUCKET}/runs/papers/{bench}/baselines"
        table = ns_s3.table(f"{where}/trials")
        assert len(table) == 4 and table["trial_id"].is_unique and set(table["status"]) == {"ok"}
        assert set(table["benchmark"]) == {bench}
        mine = [r for r in runs if r.data.tags["results"] == f"{results}/{bench}/baselines"]
        assert sorted(r.data.tags["trial_id"] for r in mine) == sorted(table["trial_id"])
        assert {r.info.status for r in mine} == {"FINISHED"}
    text = ns_s3.text(f"{BUCKET}/runs/papers/report/report.html")
    assert "Table 3" in text and text.count("data:image/png;base64,") >= 2
    for bench in ("nasbench101", "natsbench"):
        assert ns_s3.is_file(f"{BUCKET}/runs/papers/report/{bench}/table3_baselines.md"), bench
    assert ns_s3.is_file(f"{BUCKET}/runs/papers/report/done.json")


def _in_namespace(name: str) -> list[int]:
    """The processes living in network namespace ``name``."""
    want = os.stat(f"/run/netns/{name}").st_ino
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.stat(f"/proc/{entry}/ns/net").st_ino == want:
                    found.append(int(entry))
            except OSError:
                continue
    return found


def _trial_actors_in(name: str) -> set[int]:
    """The Tune trial processes (``ray::ImplicitFunc``) living in namespace ``name``."""
    out = set()
    for pid in _in_namespace(name):
        try:
            if b"ImplicitFunc" in Path(f"/proc/{pid}/cmdline").read_bytes():
                out.add(pid)
        except OSError:
            continue
    return out


@pytest.mark.slow
def test_a_node_killed_mid_trial_is_survived_each_trial_once(tmp_path, data_dir, two_nodes):
    """The second node dies (kill -9 of its raylet's process group, and of every process
    left in its namespace) while one of its trials trains: the trial is retried on the head
    within the sweep's retries, and every trial ends once in Parquet with one FINISHED
    MLflow run. The last of the two-node tests: the module's second node is gone after it."""
    from mlflow.tracking import MlflowClient

    from pipeline.store.results import read_trials

    spec = yaml.safe_load((ROOT / "sweeps" / "smoke.yaml").read_text())
    spec["retries"] = 2  # the trial on the dying node, and a margin for one more
    spec["base"] = {**spec["base"], "epochs": 40}  # trials long enough to be cut
    sweep_file = tmp_path / "smoke.yaml"
    sweep_file.write_text(yaml.safe_dump(spec))
    results, mlflow_db = tmp_path / "results", tmp_path / "mlflow.db"
    cmd = [str(BIN / "gnn2gnn"), "sweep", str(sweep_file), "--profile", "smoke"]
    cmd += ["--address", two_nodes.address, "--results", str(results)]
    cmd += ["--tracking-uri", f"sqlite:///{mlflow_db}", "--data-dir", str(data_dir)]
    env = dict(two_nodes.env)
    env.pop("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER")
    node2 = two_nodes.net.names[1]
    seen: dict[int, float] = {}

    def training_on_node2() -> bool:  # a trial process there for 4 s: past its start
        now = time.monotonic()
        for pid in _trial_actors_in(node2):
            seen.setdefault(pid, now)
        return any(now - t >= 4 for pid, t in seen.items() if Path(f"/proc/{pid}").exists())

    log = open(tmp_path / "driver.log", "w")
    driver = subprocess.Popen(
        two_nodes.net.argv(0, cmd),
        env=env,
        cwd=tmp_path,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        _wait(lambda: training_on_node2() or driver.poll() is not None, 300, "a trial", 0.5)
        assert driver.poll() is None, (tmp_path / "driver.log").read_text()[-3000:]
        os.killpg(two_nodes.node2_pgid, signal.SIGKILL)  # its raylet's process group
        for pid in _in_namespace(node2):  # and what it started in groups of their own
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        code = driver.wait(timeout=600)
    finally:
        _stop(driver)
    out = (tmp_path / "driver.log").read_text()
    assert code == 0, out[-4000:]
    trials = read_trials(results / "smoke")
    client = MlflowClient(f"sqlite:///{mlflow_db}")
    runs = client.search_runs([client.get_experiment_by_name("smoke").experiment_id])
    statuses = [r.info.status for r in runs]
    print(
        f"node killed: 4 trials expected, {len(trials)} found, "
        f"{int(trials['trial_id'].duplicated().sum())} duplicates, {len(runs)} MLflow runs, "
        f"{statuses.count('RUNNING')} RUNNING; retried: {out.count('after an error')}"
    )
    assert "after an error" in out, out[-4000:]  # the trial that was cut, run again
    assert len(trials) == 4 and trials["trial_id"].is_unique and set(trials.status) == {"ok"}
    assert sorted(r.data.tags["trial_id"] for r in runs) == sorted(trials["trial_id"])
    assert set(statuses) == {"FINISHED"}


@pytest.mark.slow
def test_a_sweep_waits_out_object_storage_that_stops_answering_for_30s(tmp_path, s3):
    """The S3 server stopped (SIGSTOP: connections hang, then time out) for 30 s after the
    first trial is recorded, then continued: the sweep completes (writes retried with
    backoff), or fails with one line naming the location and --resume completes; every
    trial once, no partial part, no MLflow run left RUNNING."""
    from mlflow.tracking import MlflowClient

    fs = s3.fs()
    results = f"s3://{BUCKET}/runs/outage-{secrets.token_hex(3)}"
    trials_dir = f"{results.removeprefix('s3://')}/smoke/trials"
    mlflow_db = tmp_path / "mlflow.db"
    cmd = [str(BIN / "gnn2gnn"), "sweep", str(ROOT / "sweeps" / "smoke.yaml"), "--profile"]
    cmd += ["smoke", "--results", results, "--tracking-uri", f"sqlite:///{mlflow_db}"]
    env = {**os.environ, **s3.env, "GNN2GNN_STORAGE_RETRY_S": "120"}

    def parts() -> list[str]:
        infos = fs.get_file_info(pafs.FileSelector(trials_dir, allow_not_found=True))
        return [i.base_name for i in infos]

    log = open(tmp_path / "driver.log", "w")
    driver = subprocess.Popen(
        cmd, env=env, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    try:
        _wait(lambda: parts() or driver.poll() is not None, 400, "the first trial on S3")
        os.kill(s3.pid, signal.SIGSTOP)
        try:
            time.sleep(30)
        finally:
            os.kill(s3.pid, signal.SIGCONT)
        code = driver.wait(timeout=600)
    finally:
        _stop(driver)
    out = (tmp_path / "driver.log").read_text()
    print(f"driver after the outage: exit {code}; {out.strip().splitlines()[-1][:300]}")
    if code != 0:  # a one-line error naming the location, then --resume completes
        assert "Traceback" not in out and f"gnn2gnn: error: {results}" in out, out[-3000:]
        res = subprocess.run(
            [*cmd, "--resume"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=600
        )
        assert res.returncode == 0, (res.stdout + res.stderr)[-4000:]
    table = pads.dataset(trials_dir, filesystem=fs, format="parquet").to_table().to_pandas()
    assert len(table) == 4 and table["trial_id"].is_unique and set(table["status"]) == {"ok"}
    assert sorted(parts()) == sorted(f"{t}.parquet" for t in table["trial_id"])  # nothing else
    client = MlflowClient(f"sqlite:///{mlflow_db}")
    runs = client.search_runs([client.get_experiment_by_name("smoke").experiment_id])
    assert sorted(r.data.tags["trial_id"] for r in runs) == sorted(table["trial_id"])
    assert {r.info.status for r in runs} == {"FINISHED"}


# -- the results store and the data on object storage, without Ray -----------------------
@pytest.fixture
def s3_env(s3, monkeypatch):
    for key, value in s3.env.items():
        monkeypatch.setenv(key, value)
    return s3


def test_results_store_on_s3_writes_whole_parts_and_reads_them_back(s3_env, tmp_path):
    import pandas as pd

    from pipeline.store.results import (
        ResultsStore,
        fingerprint,
        read_part,
        read_trials,
        sweep_folders,
    )

    root = f"s3://{BUCKET}/store-{secrets.token_hex(3)}"
    store = ResultsStore(f"{root}/toy")
    latent = tmp_path / "latent.parquet"
    pd.DataFrame({"z": [0.5, 1.5]}).to_parquet(latent)
    epochs = pd.DataFrame({"epoch": [1, 2], "loss": [0.9, 0.4]})
    store.record({"trial_id": "a", "status": "ok", "mu": 1}, {"epochs": epochs, "latent": latent})
    store.record({"trial_id": "b", "status": "failed", "mu": 2, "error": "boom"})
    assert ResultsStore(f"{root}/toy").finished_ids() == {"a"}  # what --resume skips
    trials = read_trials(f"{root}/toy").set_index("trial_id")
    assert trials.loc["a", "mu"] == 1 and trials.loc["b", "error"] == "boom"
    assert list(read_part(f"{root}/toy", "epochs")["loss"]) == [0.9, 0.4]
    assert list(read_part(f"{root}/toy", "latent")["trial_id"]) == ["a", "a"]
    assert [f.name for f in sweep_folders(root)] == ["toy"]
    first = fingerprint(f"{root}/toy")
    store.record({"trial_id": "b", "status": "ok", "mu": 2}, {"epochs": epochs})  # a retry
    assert fingerprint(f"{root}/toy") != first
    assert set(read_trials(f"{root}/toy")["status"]) == {"ok"}
    # a write that fails half-way publishes nothing (pyarrow's stream would upload what it
    # had on close): here the payload is not bytes, so the stream's write raises
    from pipeline.store.location import Location

    target = Location.of(f"{root}/toy/trials/c.parquet")
    with pytest.raises(TypeError):
        target.write_bytes(object())
    assert not target.exists() and ResultsStore(f"{root}/toy").finished_ids() == {"a", "b"}
    # nothing but whole parts under the prefix: no temporary objects left behind
    fs = s3_env.fs()
    prefix = root.removeprefix("s3://")
    names = [i.base_name for i in fs.get_file_info(pafs.FileSelector(prefix, recursive=True))]
    assert not [n for n in names if n.startswith(".")]


def test_data_on_s3_is_staged_once_per_machine(s3_env, tmp_path, data_dir, monkeypatch):
    from pipeline.paths import resolve_data_dir

    monkeypatch.setenv("GNN2GNN_CACHE", str(tmp_path / "cache"))
    fs = s3_env.fs()
    prefix = f"{BUCKET}/data-{secrets.token_hex(3)}"
    with fs.open_output_stream(f"{prefix}/natsbench_tss.parquet") as out:
        out.write((Path(data_dir) / "natsbench_tss.parquet").read_bytes())
    first = resolve_data_dir(f"s3://{prefix}")
    again = resolve_data_dir(f"s3://{prefix}")
    assert first == again and first.parent == tmp_path / "cache" / "data"
    assert (first / "natsbench_tss.parquet").read_bytes() == (
        Path(data_dir) / "natsbench_tss.parquet"
    ).read_bytes()
    assert len(list((tmp_path / "cache" / "data").iterdir())) == 2  # the copy and its lock
    with fs.open_output_stream(f"{prefix}/extra.txt") as out:  # a changed folder: new copy
        out.write(b"x")
    second = resolve_data_dir(f"s3://{prefix}")
    assert second != first and (second / "extra.txt").read_bytes() == b"x"
    assert not first.exists()  # the old copy of the same folder is removed


def test_missing_data_on_a_worker_names_the_node_and_the_path(tmp_path):
    import socket as sock

    from pipeline.paths import DataNotFoundError
    from pipeline.sweep.worker import node_data_dir

    missing = tmp_path / "nowhere"
    with pytest.raises(DataNotFoundError) as err:
        node_data_dir(str(missing))
    assert str(missing) in str(err.value) and sock.gethostname() in str(err.value)
    assert node_data_dir(str(tmp_path)) == tmp_path


def test_pretraining_writes_its_networks_to_s3_and_the_io_dataset_reads_them(
    s3_env, data_dir, pretrained
):
    import numpy as np

    from trainables.infonas.iodata import load_io_dataset
    from trainables.infonas.pretrain import run_pretraining

    folder = f"s3://{BUCKET}/pretrain-{secrets.token_hex(3)}"
    config = {"profile": "smoke", "data_dir": str(data_dir)}
    summary = run_pretraining(config, folder, log=print)  # embedded Ray tasks write to S3
    assert summary["finished"] == 3 and not summary["failed"]
    assert run_pretraining(config, folder, log=print)["trained_now"] == 0  # done.json on S3
    remote = load_io_dataset(folder)
    local = load_io_dataset(pretrained[0])
    for name, split in local.splits.items():
        assert remote.splits[name].targets.shape == split.targets.shape, name
    saved = remote.save(f"{folder}/io_dataset")
    back = np.load(io.BytesIO((saved / "train.npy").read_bytes()))
    np.testing.assert_array_equal(back, remote.splits["train"].targets)


_HOLD_LEASE = """
import sys, time
from pipeline.store.lease import DriverLease
from pipeline.store.location import Location
DriverLease([Location.of(sys.argv[1])], beat=0.5).acquire()
print("held", flush=True)
time.sleep(600)
"""


def test_a_second_driver_on_a_results_prefix_on_s3_is_refused_until_the_first_dies(s3_env):
    import json as json_
    import socket as sock

    from pipeline.store.lease import LEASE_NAME, DriverLease, LeaseHeldError, read_holder
    from pipeline.store.location import Location

    where = f"s3://{BUCKET}/lease-{secrets.token_hex(3)}/smoke"
    folder = Location.of(where)
    first = subprocess.Popen(
        [sys.executable, "-c", _HOLD_LEASE, where],
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        assert first.stdout.readline().strip() == "held"
        with pytest.raises(LeaseHeldError) as err:
            DriverLease([folder]).acquire()
        assert f"host {sock.gethostname()}, PID {first.pid}, started " in str(err.value)
    finally:
        os.killpg(first.pid, signal.SIGKILL)
        first.wait()
    with DriverLease([folder]) as lease:  # the killed driver's lease is over at once here
        assert read_holder(folder).token == lease.holder.token
    assert not (folder / LEASE_NAME).exists()
    # a lease from another machine holds until its heartbeat is older than the TTL
    now = time.time()
    theirs = {"host": "node-9", "pid": 7, "started": now, "process_start": None}
    for age, held in ((5, True), (120, False)):
        (folder / LEASE_NAME).write_bytes(
            json_.dumps({**theirs, "beat": now - age, "token": "t", "command": ""}).encode()
        )
        if held:
            with pytest.raises(LeaseHeldError, match="host node-9, PID 7"):
                DriverLease([folder], ttl=60).acquire()
        else:
            DriverLease([folder], ttl=60).acquire().release()


class _Proxy:
    """A TCP relay on 127.0.0.1 in front of a server, which can go away (connections
    refused, open ones cut) and come back on the same port, the server keeping its state."""

    def __init__(self, target: int) -> None:
        import threading

        self.target, self.port = target, _free_port()
        self._lock, self._conns, self._listener = threading.Lock(), [], None
        self.up()

    def up(self) -> None:
        import threading

        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def down(self) -> None:
        self._listener.close()
        with self._lock:
            for conn in self._conns:
                try:
                    conn.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                conn.close()
            self._conns.clear()

    def _accept(self, listener: socket.socket) -> None:
        import threading

        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # closed: down()
            server = socket.create_connection(("127.0.0.1", self.target))
            with self._lock:
                self._conns += [client, server]
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass


def test_writes_to_object_storage_are_retried_while_it_refuses_and_then_given_up(
    s3_env, monkeypatch
):
    """The store behind a relay that goes away: a write issued while connections are
    refused waits until it is back (5 s), then lands whole; one that outlasts
    GNN2GNN_STORAGE_RETRY_S fails with one line naming the location."""
    import threading

    from pipeline.store.location import Location, StorageError

    proxy = _Proxy(int(s3_env.endpoint.rsplit(":", 1)[1]))
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{proxy.port}")
    monkeypatch.setenv("GNN2GNN_STORAGE_RETRY_S", "60")
    target = Location.of(f"s3://{BUCKET}/retry-{secrets.token_hex(3)}/part.bin")
    target.write_bytes(b"before")
    proxy.down()
    threading.Timer(5, proxy.up).start()
    t0 = time.monotonic()
    target.write_bytes(b"after the outage")
    waited = time.monotonic() - t0
    print(f"write during a 5 s outage went through after {waited:.1f}s")
    assert waited >= 4 and target.read_bytes() == b"after the outage"
    proxy.down()  # for good
    monkeypatch.setenv("GNN2GNN_STORAGE_RETRY_S", "3")
    t0 = time.monotonic()
    with pytest.raises(StorageError, match=f"{target.uri}: writing it failed for"):
        target.write_bytes(b"never")
    print(f"gave up after {time.monotonic() - t0:.1f}s")
