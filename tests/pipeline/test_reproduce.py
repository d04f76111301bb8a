"""``gnn2gnn reproduce``: the study file's checks, the whole study at the smoke profile
through real Ray Tune, Parquet, MLflow and the report (rendered in headless Chromium), and
kill -9 at random moments followed by ``--resume``."""

import html
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import mlflow
import pytest
import yaml

from pipeline.config import ConfigError
from pipeline.store.results import read_trials
from pipeline.study import Study
from pipeline.sweep.spec import expand, trial_id

ROOT = next(p for p in Path(__file__).resolve().parents if (p / "pyproject.toml").is_file())
GNN2GNN = [sys.executable, "-m", "pipeline.cli"]
STUDY = ROOT / "sweeps" / "papers.yaml"


def _study(tmp_path: Path, **change) -> Path:
    data = yaml.safe_load(STUDY.read_text())
    for entry in data["entries"]:
        if "sweep" in entry:
            entry["sweep"] = str(ROOT / "sweeps" / entry["sweep"])
    data.update(change)
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def test_the_study_file_lists_every_table_and_validates():
    study = Study(STUDY)
    assert {"1", "2", "3", "4", "5", "6", "7", "8", "gap", "gap_nats", "infonas"} <= set(
        study.entries
    )
    jobs = study.jobs(study.select(None), "results", "cpu")
    ids = [trial_id(c) for j in jobs for c in expand(j.spec, j.profile, j.overrides)]
    assert len(set(ids)) < len(ids)  # tables share trials: fewer trainings than records
    by_key = {j.key: j for j in jobs}
    assert by_key["nasbench101/protocol"].profile == "paper"  # Table 6's own profile
    assert by_key["natsbench/ablation"].overrides == {"benchmark": "natsbench"}
    io = by_key["infonas/io_embedding"]
    assert io.needs == "pretrain" and io.spec.base["io_data"] == "results/infonas/pretrain"
    assert [e.id for e in study.select(["infonas"])] == ["pretrain", "infonas"]


@pytest.mark.parametrize(
    "change, message",
    [
        ({"entrys": []}, "entrys: unknown field"),
        ({"profiles": {"cpu": {"seeds": 0}}}, "profiles.cpu.seeds"),
        ({"profiles": {"laptop": {}}}, "profiles.laptop"),
        ({"entries": [{"id": "x", "sweep": "a.yaml", "task": "infonas.pretrain"}]}, "exactly one"),
        ({"entries": [{"id": "x", "sweep": "a.yaml", "colour": 1}]}, "entries.0.colour"),
        ({"entries": [{"id": "x", "sweep": "nowhere.yaml"}]}, "sweep file not found"),
        ({"entries": [{"id": "x", "sweep": "a.yaml", "folder": "a/../.."}]}, "no . or .."),
        (
            {
                "entries": [
                    {
                        "id": "p",
                        "task": "infonas.pretrain",
                        "settings": {"cpu": {"task": {"colour": 1}}},
                    }
                ]
            },
            "settings.task",
        ),
        (
            {"entries": [{"id": "t", "task": "infonas.train"}]},
            "expected one of ['infonas.pretrain']",
        ),
        (
            {"entries": [{"id": "s", "sweep": str(ROOT / "sweeps/smoke.yaml"), "needs": "s"}]},
            "not a task entry's id",
        ),
        (
            {
                "entries": [
                    {"id": "s", "sweep": str(ROOT / "sweeps/smoke.yaml"), "runs": {"a": {"mu": 1}}}
                ]
            },
            "runs.a: ['mu'] are not sweep-wide fields",
        ),
        (
            {
                "entries": [
                    {
                        "id": "s",
                        "sweep": str(ROOT / "sweeps/smoke.yaml"),
                        "settings": {"cpu": {"set": {"colour": 1}}},
                    }
                ]
            },
            "colour",
        ),
    ],
)
def test_a_bad_study_file_names_the_file_and_the_field(tmp_path, change, message):
    path = _study(tmp_path, **change)
    with pytest.raises(ConfigError) as err:
        Study(path)
    assert str(path) in str(err.value) and message in str(err.value), str(err.value)


def test_bad_input_to_reproduce_is_one_line_and_exit_2(tmp_path):
    for args, message in (
        (["reproduce", str(tmp_path / "none.yaml")], "study file not found"),
        (["reproduce", "--only", "3,99"], "--only: ['99'] are not entries"),
    ):
        res = subprocess.run(
            [*GNN2GNN, *args, "--results", str(tmp_path / "r")],
            cwd=ROOT,
            capture_output=True,
            text=True,
        )
        assert res.returncode == 2 and message in res.stderr, res.stderr
        assert "Traceback" not in res.stderr and len(res.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "r").exists()  # nothing written before the input is checked


def _trainings(results: Path, runs: set[str] | None = None) -> list[str]:
    """The trial ids that Ray Tune trained to the end, from its own trial folders (one per
    Ray trial, a packed one listing its members; a finished one holds its checkpoint), in
    every Tune run under ``results/ray`` (or in ``runs``)."""
    ids = []
    for params in results.glob("ray/*/*/params.json"):
        if runs is not None and params.parent.parent.name not in runs:
            continue
        if not any(params.parent.glob("checkpoint_*")):
            continue  # started, never finished (killed)
        spec = json.loads(params.read_text())["spec"]
        ids += [m["trial_id"] for m in spec.get("members") or [spec]]
    return ids


def _check_records(results: Path, only: list[str] | None = None) -> dict[str, list[str]]:
    """Every job's trials are each in its Parquet folder exactly once (status ok) and have
    exactly one MLflow run, FINISHED; job key -> its trial ids."""
    study = Study(STUDY)
    out = {}
    for job in study.jobs(study.select(only), str(results), "smoke"):
        expected = {trial_id(c) for c in expand(job.spec, job.profile, job.overrides, job.key,
                                                override=job.experiment.override)}  # fmt: skip
        folder = Path(job.folder.path)
        trials = read_trials(folder)
        assert trials.trial_id.is_unique and set(trials.trial_id) == expected, job.key
        assert set(trials.status) == {"ok"}, job.key
        client = mlflow.tracking.MlflowClient(f"sqlite:///{folder}/mlflow.db")
        exp = client.get_experiment_by_name(job.spec.name)
        runs = client.search_runs([exp.experiment_id], max_results=10000)
        tids = [r.data.tags["trial_id"] for r in runs]
        assert sorted(tids) == sorted(expected), job.key
        assert {r.info.status for r in runs} == {"FINISHED"}, job.key
        for run in runs:  # a copied trial's curves are the trained one's, epoch by epoch
            if "copied_from" in run.data.tags:
                source, s_client = _source(results, run)
                assert run.data.metrics == source.data.metrics, job.key
                for key in source.data.metrics:  # a killed attempt may have left points too
                    assert _history(s_client, source, key) <= _history(client, run, key), key
        out[job.key] = sorted(expected)
    return out


def _source(results: Path, copied):
    """The run, and its client, of the sweep that trained a copied trial (``copied_from``)."""
    key, tid = copied.data.tags["copied_from"], copied.data.tags["trial_id"]
    client = mlflow.tracking.MlflowClient(f"sqlite:///{results / key}/mlflow.db")
    ids = [e.experiment_id for e in client.search_experiments()]
    (run,) = client.search_runs(ids, f"tags.trial_id = '{tid}'")
    return run, client


def _history(client, run, key: str) -> set[tuple[int, float]]:
    return {(m.step, m.value) for m in client.get_metric_history(run.info.run_id, key)}


def _render(page: Path, tmp_path: Path) -> str:
    """The page in headless Chromium: a screenshot is taken, and the DOM's text returned."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("chromium not installed (apt-get install chromium): report page not rendered")
    common = [
        chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        f"--user-data-dir={tmp_path / 'chrome'}", "--window-size=1400,3000",
    ]  # fmt: skip
    shot = tmp_path / "report.png"
    subprocess.run(
        [*common, f"--screenshot={shot}", page.as_uri()], capture_output=True, timeout=120
    )
    assert shot.is_file() and shot.stat().st_size > 20_000  # a page, not a blank
    dom = subprocess.run(
        [*common, "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120
    ).stdout
    return html.unescape(re.sub(r"<[^>]+>", "", dom))


def _check_report(results: Path, tmp_path: Path) -> None:
    report = results / "report"
    expected = {
        "nasbench101": ["table1_ablation", "table2_valuer", "table3_baselines",
                        "table4_robustness", "table6_protocol", "table8_conv",
                        "gap_decomposition_nasbench101"],
        "natsbench": ["table1_ablation", "table2_valuer", "table3_baselines",
                      "table4_robustness", "table5_transfer", "table7_edgeform", "table8_conv",
                      "gap_decomposition_natsbench"],
        "infonas": ["infonas_prediction_io_embedding", "infonas_training_io_embedding",
                    "infonas_search_io_embedding"],
    }  # fmt: skip
    titles = []
    for folder, stems in expected.items():
        for stem in stems:
            for fmt in ("md", "csv", "tex"):
                assert (report / folder / f"{stem}.{fmt}").is_file(), f"{folder}/{stem}.{fmt}"
            titles.append((report / folder / f"{stem}.md").read_text().splitlines()[0])
        figures = re.findall(
            r"!\[[^\]]*\]\(([^)]+\.png)\)", (report / folder / "report.md").read_text()
        )
        assert figures and all((report / folder / f).is_file() for f in figures), folder
    page = report / "report.html"
    text = page.read_text()
    assert text.count("data:image/png;base64,") >= 10 and 'src="infonas/' not in text
    for needed in ("Headline findings", "Settings", "Package versions", "sweeps/papers.yaml"):
        assert needed in text, needed
    shown = _render(page, tmp_path)
    for title in titles:  # "### Title" or "_Table N: title. Sweep ...; caption_"
        title = title.lstrip("#_ ").replace("`", "").split(". ")[0]
        assert title in shown, title
    done = json.loads((report / "done.json").read_text())
    assert done["html"] == str(page)


@pytest.mark.slow
def test_reproduce_smoke_runs_every_table_of_both_papers_then_the_report(tmp_path):
    results = tmp_path / "papers"
    t0 = time.monotonic()
    res = subprocess.run(
        [*GNN2GNN, "reproduce", "--profile", "smoke", "--results", str(results), "--json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    wall = time.monotonic() - t0
    assert res.returncode == 0, res.stderr[-4000:]
    summary = json.loads(res.stdout.strip().splitlines()[-1])
    print(f"reproduce --profile smoke: {wall:.0f}s, {summary}")
    jobs = _check_records(results)
    records = sum(len(v) for v in jobs.values())
    unique = {t for v in jobs.values() for t in v}
    trained = _trainings(results)
    assert sorted(trained) == sorted(unique)  # every trial trained once, shared ones too
    assert len(trained) < records and summary["trainings"] == len(unique)
    assert summary["trial_records"] == records and summary["failed"] == []
    shared = read_trials(results / "nasbench101" / "baselines").set_index("seed")
    row = shared[(shared.model == "gnn2gnn")].iloc[0]
    assert set(json.loads(row["trained_for"])) >= {"nasbench101/ablation", "nasbench101/baselines"}
    progress = [json.loads(line) for line in res.stderr.splitlines() if line.startswith("{")]
    assert progress and progress[-1]["done"] == len(unique) and "groups" in progress[-1]
    assert progress[-1]["groups"]["3"]["total"] == 8  # 4 models x 2 benchmarks
    _check_report(results, tmp_path)


def _kill_when(proc, results: Path, ready, timeout: float = 600) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline and not ready():
        assert proc.poll() is None, "the study ended before the moment to kill it"
        time.sleep(0.2)
    assert ready(), "the moment to kill never came"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


@pytest.mark.slow
def test_reproduce_killed_twice_resumes_with_every_trial_once(tmp_path):
    """kill -9 of the whole study at a random moment of the queue and again during the
    report, then --resume: every trial once in Parquet and MLflow, none RUNNING, nothing
    trained twice, the report complete."""
    results = tmp_path / "papers"
    only = ["2", "3", "infonas"]  # Tables 2 and 3 share a trial; Info-NAS has its task
    cmd = [*GNN2GNN, "reproduce", "--profile", "smoke", "--only", ",".join(only),
           "--results", str(results)]  # fmt: skip
    rng = random.Random()
    finished_needed = rng.randint(1, 12)
    print(f"first kill after {finished_needed} trial records")
    log = results / "progress.log"

    def records() -> int:
        return sum(1 for p in results.glob("*/*/trials/*.parquet") if not p.name.startswith("."))

    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)  # fmt: skip
    _kill_when(proc, results, lambda: records() >= finished_needed)
    again = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    assert again.returncode == 2 and "--resume" in again.stderr  # no silent re-run
    recorded = {p.stem for p in results.glob("*/*/trials/*.parquet") if not p.name.startswith(".")}
    first_runs = {p.name for p in (results / "ray").iterdir()}
    files_needed = rng.randint(1, 4)
    print(f"second kill in the report stage, after {files_needed} of its files")
    proc = subprocess.Popen([*cmd, "--resume"], cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)  # fmt: skip

    def in_report() -> bool:
        if not (log.is_file() and "[report] writing" in log.read_text()):
            return False
        return sum(1 for p in (results / "report").rglob("*") if p.is_file()) >= files_needed

    _kill_when(proc, results, in_report)
    assert not (results / "report" / "done.json").exists()  # killed inside the report
    second = {p.name for p in (results / "ray").iterdir()} - first_runs
    assert not recorded & set(_trainings(results, second))  # nothing recorded trained again
    trained = _trainings(results)
    res = subprocess.run([*cmd, "--resume"], cwd=ROOT, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr[-4000:]
    summary = json.loads(res.stdout.strip().splitlines()[-1])
    assert summary["trainings"] == 0 and summary["finished_before"] == summary["trial_records"]
    assert _trainings(results) == trained  # the last run trained nothing
    jobs = _check_records(results, only)
    assert set(trained) == {t for v in jobs.values() for t in v}
    _check_study_report(results, tmp_path, ("Table 2", "Table 3", "Info-NAS prediction"))

    # a trial recorded in one of its sweeps but not the other (as a kill between the two
    # records leaves it) is copied on resume, not trained
    rows = read_trials(results / "natsbench" / "baselines")
    shared = rows[rows["trained_for"].map(lambda t: len(json.loads(t)) > 1)]
    tid = shared["trial_id"].iloc[0]
    for part in (results / "natsbench" / "baselines").glob(f"*/{tid}.parquet"):
        part.unlink()
    res = subprocess.run([*cmd, "--resume"], cwd=ROOT, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr[-4000:]
    summary = json.loads(res.stdout.strip().splitlines()[-1])
    assert summary["trainings"] == 0 and summary["shared_or_copied"] == 1
    _check_records(results, only)
    copy = read_trials(results / "natsbench" / "baselines").set_index("trial_id").loc[tid]
    source = read_trials(results / "natsbench" / "valuer").set_index("trial_id").loc[tid]
    assert copy["versions"] == source["versions"] and copy["top10"] == source["top10"]
    assert copy["sweep"] == "baselines" and int(copy["table"]) == 3
    assert len(read_trials(results / "natsbench" / "baselines")) == 4


def _check_study_report(results: Path, tmp_path: Path, titles) -> None:
    page = results / "report" / "report.html"
    assert json.loads((results / "report" / "done.json").read_text())["html"] == str(page)
    shown = _render(page, tmp_path)
    for title in titles:
        assert title in shown, title
