"""Tables, figures and the report from a real smoke-sweep results folder."""

import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.image import imread

from analysis.gnn2gnn.render import to_latex, to_markdown
from analysis.gnn2gnn.report import agreement
from analysis.gnn2gnn.tables import published, sweep_tables
from analysis.report import write_figures, write_report
from analysis.stats import mean_ci
from pipeline.store.results import read_part, read_trials


def _rewrite_trials(folder: Path, trials: pd.DataFrame) -> None:
    """Replace a sweep's trial records (one part per trial, as the store writes them)."""
    for old in (folder / "trials").glob("*.parquet"):
        old.unlink()
    for i in range(len(trials)):
        row = trials.iloc[[i]]
        row.to_parquet(folder / "trials" / f"{row['trial_id'].iloc[0]}.parquet", index=False)


ROOT = next(p for p in Path(__file__).resolve().parents if (p / "pyproject.toml").is_file())
PAPER = ROOT.parent / "shared" / "papers"
pytestmark = pytest.mark.slow


def _paper_row(prefix: str) -> list[float]:
    text = next(PAPER.glob("000_*.txt")).read_text()
    line = next(ln for ln in text.splitlines() if ln.replace("\t", " ").strip().startswith(prefix))
    return [float(x) for x in re.findall(r"(\d+\.\d+)%", line)]


@pytest.mark.parametrize(
    "table, select, prefix",
    [
        (3, {"model": "molgan"}, "MOLGAN"),
        (4, {"top_n_removed": 50}, "50%"),
        (1, {"mu": 2, "tau": 0.01, "lambda": 0.5}, "0.5 73.84%"),
        (5, {"benchmark": "nasbench101", "eval_dataset": "cifar100"}, "NAS101 NATS <sub>C100"),
    ],
)
def test_published_values_match_the_paper_text(table, select, prefix):
    frame = published(table)
    for k, v in select.items():
        frame = frame[frame[k] == v]
    assert len(frame) == 1
    cols = ["novelty", "top5", "top10", "top50", "acc_n", "mean_acc"]
    ours = [x for x in frame[cols].iloc[0].tolist() if x == x]
    assert ours == _paper_row(prefix)


def test_mean_ci_is_student_t():
    mean, half, n = mean_ci(np.array([1.0, 2.0, 3.0, np.nan]))
    assert (mean, n) == (2.0, 3) and half == pytest.approx(4.302653 * 1.0 / np.sqrt(3))
    assert np.isnan(mean_ci(np.array([5.0]))[1])


def test_tables_figures_report_from_the_smoke_sweep(smoke_results, tmp_path):
    out, _, _ = smoke_results
    results = tmp_path / "results"
    shutil.copytree(out, results)
    report = write_report(results)
    folder = report.parent
    names = {p.name for p in folder.iterdir()}
    assert {
        "table3_smoke.md",
        "table3_smoke.csv",
        "table3_smoke.tex",
        "report.md",
        "training_smoke.png",
        "paper_vs_reproduced.png",
    } <= names
    for png in folder.glob("*.png"):
        assert imread(png).shape[0] > 100
    # table values are the means over seeds taken straight from the trial records
    trials = read_trials(results / "smoke")
    table = pd.read_csv(folder / "table3_smoke.csv")
    table = table[table["row_kind"] == "trial"].set_index("model")
    for model, g in trials.groupby("model"):
        for m in ("novelty", "top10", "mean_acc"):
            assert table.loc[model, f"{m}_mean"] == pytest.approx(g[m].mean(), nan_ok=True)
    assert table.loc["molgan", "novelty_paper"] == 65.41
    # the authors' semantics (metrics: authors) beside the clean columns, paper value beside
    for model, g in trials.groupby("model"):
        for m in ("top10_authors", "mean_acc_authors", "validity_authors"):
            assert table.loc[model, f"{m}_mean"] == pytest.approx(g[m].mean(), nan_ok=True)
    assert table.loc["molgan", "top10_authors_paper"] == table.loc["molgan", "top10_all_paper"]
    md = (folder / "table3_smoke.md").read_text()
    assert "cifar10_test_acc" in md and "profile smoke" in md and "fingerprint" in md
    assert "[82.60]" in md  # published value beside the reproduced one
    assert "Top-10 (authors)" in md and "raw-encoding match" in md
    # the structure reference rows: a pair per generator, the best single op named
    lines = [ln for ln in md.splitlines() if "untrained generator's structures" in ln]
    assert len(lines) == 8
    assert {ln.split("|")[1].strip() for ln in lines} == {"gnn2gnn", "molgan", "rnn", "random"}
    assert sum("uniform ops" in ln for ln in lines) == 4
    assert sum("one best op (nor_conv_" in ln or "one best op (avg_pool" in ln for ln in lines) == 4
    text = report.read_text()
    assert "Table 3" in text and "within the reproduced 95% interval" in text


def test_latex_is_a_well_formed_tabular(smoke_results):
    out, _, _ = smoke_results
    (t,) = sweep_tables(out)
    tex = to_latex(t)
    body = tex[tex.index(r"\begin{tabular}") :]
    ncols = len(re.search(r"\\begin\{tabular\}\{(\w+)\}", body).group(1))
    assert body.rstrip().endswith(r"\end{tabular}")
    assert body.count("{") == body.count("}")
    rows = [ln for ln in body.splitlines() if ln.endswith(r"\\")]
    assert rows and all(ln.count("&") == ncols - 1 for ln in rows)


def test_failed_trial_is_shown_as_missing(smoke_results, tmp_path):
    out, _, _ = smoke_results
    results = tmp_path / "results"
    shutil.copytree(out, results)
    trials = read_trials(results / "smoke")
    # what the sweep writes for a trial that kept failing: status, error, no metrics
    failed = trials["model"] == "rnn"
    metric_cols = ["novelty", "top5", "top10", "top50", "acc_n", "mean_acc"]
    trials.loc[failed, "status"] = "failed"
    trials.loc[failed, "error"] = "RuntimeError: boom"
    trials.loc[failed, metric_cols] = np.nan
    _rewrite_trials(results / "smoke", trials)
    (t,) = sweep_tables(results)
    row = t.rows.set_index("model").loc["rnn"]
    assert row["status"] == "missing" and row["seeds"] == 0 and row["failed"] == 1
    assert np.isnan(row["mean_acc_mean"]) and row["mean_acc_paper"] == 89.32
    assert "| rnn | 0 (1 failed) | 0 | missing [96.34]" in to_markdown(t)
    assert agreement(t)["missing"] == 6


def test_cli_tables_figures_and_errors(smoke_results, tmp_path):
    import subprocess
    import sys

    out, _, _ = smoke_results
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "analysis",
            "tables",
            "--results",
            str(out),
            "--out",
            str(tmp_path / "t"),
            "--format",
            "md,tex",
        ],
        capture_output=True,
        text=True,
    )
    assert res.returncode == 0, res.stderr
    assert sorted(p.name for p in (tmp_path / "t").iterdir()) == [
        "table3_smoke.md",
        "table3_smoke.tex",
    ]
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "pipeline.cli",
            "figures",
            "--results",
            str(out),
            "--out",
            str(tmp_path / "f"),
        ],
        capture_output=True,
        text=True,
    )
    assert res.returncode == 0 and "training_smoke.png" in res.stdout
    bad = subprocess.run(
        [sys.executable, "-m", "pipeline.cli", "tables", "--results", str(tmp_path / "nothing")],
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 2 and "no sweep results" in bad.stderr


def test_lambda_and_robustness_figures_from_small_real_sweeps(tmp_path):
    """Tiny sweeps that declare themselves Table 1 and Table 4 exercise those figures."""
    import yaml

    from pipeline.experiment import get_experiment, validate_trial_config
    from pipeline.sweep.run import run_sweep
    from pipeline.sweep.spec import load_sweep

    sweeps = {
        "t1": {
            "table": 1,
            "base": {"benchmark": "natsbench", "model": "gnn2gnn", "mu": 1, "tau": 0.1},
            "grid": {"lambda": [1.0, 0.1]},
        },
        "t4": {
            "table": 4,
            "base": {"benchmark": "natsbench", "model": "random"},
            "grid": {"top_n_removed": [10, 50]},
        },
    }
    for name, fields in sweeps.items():
        path = tmp_path / f"{name}.yaml"
        path.write_text(yaml.safe_dump({"name": name, "seeds": 1, **fields}))
        spec = load_sweep(path, validate_trial_config)
        run_sweep(
            spec,
            experiment=get_experiment("gnn2gnn"),
            profile="smoke",
            results=tmp_path / "res",
        )
    figs = {p.name for p in write_figures(tmp_path / "res", tmp_path / "fig")}
    assert {
        "lambda_t1.png",
        "robustness_t4.png",
        "training_t1.png",
        "paper_vs_reproduced.png",
    } <= figs
    tables = {t.spec.number: t for t in sweep_tables(tmp_path / "res")}
    rows = tables[4].rows.set_index("top_n_removed")
    assert rows.loc[50.0, "seeds"] == 1 and rows.loc[90.0, "status"] == "missing"
    # clean trials (metrics: clean) under structure reference rows of both semantics: the
    # authors' columns show the reference values and say the trials did not record them
    md, tex = to_markdown(tables[1]), to_latex(tables[1])
    assert "Top-10 (authors)" in md and "not recorded" in md and "not recorded" in tex
    assert md.count("reference: untrained generator's structures") == 2  # one mu, one tau


def test_seed_with_no_known_cell_is_counted_not_dropped(smoke_results, tmp_path):
    out, _, _ = smoke_results
    results = tmp_path / "results"
    shutil.copytree(out, results)
    trials = read_trials(results / "smoke")
    # a second seed of molgan that generated no known cell (what a run drifting out of the
    # space records): known-cell metrics NaN, all-cells metrics 0
    extra = trials[trials["model"] == "molgan"].copy()
    extra["trial_id"], extra["seed"] = "nocells0001", 1
    extra[["n_valid", "n_known", "n_unique"]] = 0.0
    extra[["novelty", "uniqueness", "top5", "top10", "top50", "acc_n", "mean_acc"]] = np.nan
    extra[["validity", "top5_all", "top10_all", "top50_all", "acc_n_all"]] = 0.0
    _rewrite_trials(results / "smoke", pd.concat([trials, extra], ignore_index=True))
    (t,) = sweep_tables(results)
    row = t.rows.set_index("model").loc["molgan"]
    assert row["seeds"] == 2 and row["known"] == 1
    assert row["top10_n"] == 1 and row["top10_all_n"] == 2
    first = trials.loc[trials["model"] == "molgan", "top10_all"].iloc[0]
    assert row["top10_all_mean"] == pytest.approx(first / 2)  # the empty seed counts as 0
    md = to_markdown(t)
    assert "| molgan | 2 | 1 |" in md and "'known' counts the seeds" in md
    # reference rows close the table, computed from the data
    assert "reference: uniform over the benchmark" in md and "reference: copy the training" in md


def test_caption_names_the_selection_rule_and_warns_when_trials_differ(smoke_results, tmp_path):
    out, _, _ = smoke_results
    results = tmp_path / "results"
    shutil.copytree(out, results)
    trials = read_trials(results / "smoke")
    (t,) = sweep_tables(results)  # smoke sweep on NATS: a fully labelled table
    assert "Clean model selection: every generated split cell counted." in t.caption
    assert "WARNING" not in t.caption
    # one trial resumed into the folder from a version with another rule
    trials.loc[trials.index[0], "select_distinct"] = True
    _rewrite_trials(results / "smoke", trials)
    (t,) = sweep_tables(results)
    assert "WARNING: trials on one benchmark were selected by different rules" in t.caption
    assert "each distinct generated split cell counted once in 1 trials" in t.caption


def test_gap_decomposition_from_the_gap_sweep(tmp_path):
    """The real gap sweep (one seed, smoke profile) gives the decomposition's rows, each
    read from the trials and columns its step names, with the change from the row above."""
    import yaml

    from analysis.gnn2gnn.gap import SWEEPS, gap_tables
    from pipeline.experiment import get_experiment, validate_trial_config
    from pipeline.sweep.run import run_sweep
    from pipeline.sweep.spec import load_sweep

    fields = yaml.safe_load((ROOT / "sweeps" / "gap.yaml").read_text())
    path = tmp_path / "gap.yaml"
    path.write_text(yaml.safe_dump({**fields, "seeds": 1}))
    spec = load_sweep(path, validate_trial_config)
    results = tmp_path / "res"
    run_sweep(spec, experiment=get_experiment("gnn2gnn"), profile="smoke", results=results)
    [(sweep, frame, caption)] = gap_tables(results)
    structure = [
        "reference: untrained generator's structures, uniform ops",
        "reference: untrained generator's structures, one best op (conv3x3-bn-relu)",
    ]
    assert sweep == "gap"
    assert frame["row"].tolist() == [s.row for s in SWEEPS["gap"].steps] + ["published", *structure]
    row = frame.set_index("row")
    assert (row.drop("published")["seeds"] == 1).all()
    trials = read_trials(results / "gap")
    r1 = trials[trials["label"] == "val_acc_108_r1"]
    mean = trials[(trials["label"] == "val_acc_108_mean") & (trials["protocol"] == "clean")]
    assert row.loc["clean", "top5_mean"] == pytest.approx(r1["top5"].mean())
    assert row.loc["+ the covering label", "top5_mean"] == pytest.approx(mean["top5"].mean())
    semantics = row.loc["+ the authors' metric semantics"]
    assert semantics["top5_mean"] == pytest.approx(mean["top5_authors"].mean())
    leak = trials[(trials["protocol"] == "authors") & (trials["num_generated"] == 10000)]
    assert row.loc["+ the authors' leak", "top10_mean"] == pytest.approx(
        leak["top10_authors"].mean()
    )
    k1000 = trials[trials["num_generated"] == 1000]
    scaled = k1000["top10_authors"] * k1000["n_matched_authors"] / k1000["n_known_authors"]
    assert row.loc["+ full-table labels (estimate)", "top10_mean"] == pytest.approx(scaled.mean())
    assert row.loc["published", "top5_mean"] == 45.91
    assert row.loc["published", "top10_mean"] == 52.21
    delta = semantics["mean_acc_mean"] - row.loc["+ the covering label", "mean_acc_mean"]
    assert semantics["Acc"].endswith(f"[{delta:+.2f}]")
    assert "fingerprint" in caption
    report = write_report(results)
    text = report.read_text()
    assert "## Gap decomposition" in text and "+ the authors' leak" in text
    assert (report.parent / "gap_decomposition_nasbench101.csv").is_file()
    refs = read_part(results / "gap", "reference", set(mean["trial_id"]))
    best = refs[refs["reference"] == "init_best_op"]
    assert row.loc[structure[1], "top10_mean"] == pytest.approx(best["top10_authors"].mean())


def test_a_table_whose_trials_mix_labels_says_so():
    """A folder resumed across a change of the default label (issue 25) would average two
    labels in one row: the caption warns, naming the benchmark and the labels."""
    from analysis.gnn2gnn.tables import _label_note

    trials = pd.DataFrame(
        {
            "benchmark": ["nasbench101", "nasbench101", "natsbench"],
            "dataset": ["cifar10", "cifar10", "cifar10"],
            "label": ["val_acc_108_r1", "val_acc_108_mean", "cifar10_test_acc"],
        }
    )
    note = _label_note(trials)
    assert "WARNING" in note and "nasbench101/cifar10: val_acc_108_mean, val_acc_108_r1" in note
    assert "natsbench" not in note
    assert _label_note(trials.iloc[1:]) == ""
