"""Info-NAS results from its sweep folders (``sweeps/io_embedding.yaml``): tables and figures.

Reads only Parquet (:mod:`pipeline.store.results`): the sweep's trials and epochs, and the
per-trial tables ``prediction`` and ``search`` the trials wrote.

Tables (Markdown, CSV, LaTeX), each mean +- half-width of the 95% Student-t interval (n):
- ``infonas_prediction``: RMSE and Pearson r per model and train size over trial seeds x
  forest seeds, the published arch2vec reference (RMSE 0.018, r 0.67; a Gaussian process on
  250 cells in the arch2vec paper) beside it;
- ``infonas_training``: final labelled validation L1 on unseen images / unseen networks with
  the mean-vector baseline, test losses, reconstruction accuracy, validity and uniqueness;
- ``infonas_search``: final regret of REINFORCE and random search per model.

Figures (PNG): prediction box plots, regret curves, validation-loss curves against the
baseline, reconstruction accuracy curves.
"""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from analysis.figures import save_figure  # noqa: E402
from analysis.render import (
    FORMATS,  # noqa: E402
    write_frame,  # noqa: E402
)
from analysis.stats import mean_ci, t_half_width  # noqa: E402
from pipeline.store.results import experiment_sweeps, fingerprint, read_part, read_trials  # noqa: E402

EXPERIMENT = "infonas"  # the experiment whose sweeps these read
OLDER_NAMES = ("io_embedding",)  # its name in the rows of sweeps run before the rename
REFERENCE = {"rmse": 0.018, "pearson_r": 0.67}  # arch2vec paper, as quoted by Info-NAS
MODELS = ("arch2vec", "arch2vec (IO batches)", "io-embedding")


def io_sweeps(results: Path) -> list[Path]:
    """Sweep folders under ``results`` whose trials are IO-embedding trials."""
    return [folder for folder, _ in experiment_sweeps(results, EXPERIMENT, *OLDER_NAMES)]


def _ok_trials(folder: Path) -> pd.DataFrame:
    """Finished trials; ``model`` is the display label (arch2vec on the IO model's batches
    reads ``arch2vec (IO batches)``)."""
    trials = read_trials(folder)
    trials = trials[trials["status"] == "ok"].copy()
    if "same_batches" in trials:
        same = trials["same_batches"].fillna(False).astype(bool)
        trials.loc[same, "model"] = trials.loc[same, "model"] + " (IO batches)"
    return trials


def per_trial(folder: Path, name: str) -> pd.DataFrame:
    """Concatenate ``<folder>/<name>/<trial_id>.parquet`` of finished trials, with model/seed."""
    trials = _ok_trials(folder)
    frame = read_part(folder, name, set(trials["trial_id"]))
    if frame.empty:
        return frame
    frame = frame.drop(columns=[c for c in ("model", "seed") if c in frame])  # the trial's
    return frame.merge(trials[["trial_id", "model", "seed"]], on="trial_id")


def _fmt(values, digits: int = 4) -> str:
    mean, half, n = mean_ci(np.asarray(values, dtype=float))
    if math.isnan(mean):
        return "missing"
    if math.isnan(half):
        return f"{mean:.{digits}f} (n={n})"
    return f"{mean:.{digits}f} ± {half:.{digits}f} (n={n})"


def _caption(folder: Path, trials: pd.DataFrame, what: str) -> str:
    label = trials["label"].iloc[0] if "label" in trials and len(trials) else "?"
    profile = trials["profile"].iloc[0] if "profile" in trials and len(trials) else "?"
    cov = trials["label_coverage"].iloc[0] if "label_coverage" in trials and len(trials) else 1
    return (
        f"{what}. Sweep `{folder.name}`, NAS-Bench-101 CIFAR-10, label `{label}` "
        f"(known for {100 * float(cov):.1f}% of cells; evaluations use labelled cells only), "
        f"profile `{profile}`; mean ± 95% t-interval half-width (n). "
        f"results fingerprint {fingerprint(folder)}."
    )


def prediction_table(folder: Path) -> tuple[pd.DataFrame, str]:
    pred = per_trial(folder, "prediction")
    rows = []
    if len(pred):
        for (model, size), g in pred.groupby(["model", "train_size"]):
            rows.append(
                {
                    "model": model,
                    "train_size": int(size),
                    "rmse": _fmt(g["rmse"]),
                    "pearson_r": _fmt(g["pearson_r"], 3),
                    "rmse_mean": float(g["rmse"].mean()),
                    "pearson_r_mean": float(g["pearson_r"].mean()),
                    "n_test": str(int(g["n_test"].median())),
                }
            )
    rows.append(
        {
            "model": "arch2vec (published, GP)",
            "train_size": 250,
            "rmse": "0.018 ± 0.001",
            "pearson_r": "0.67 ± 0.02",
            "rmse_mean": REFERENCE["rmse"],
            "pearson_r_mean": REFERENCE["pearson_r"],
            "n_test": "",
        }
    )
    cap = _caption(
        folder,
        _ok_trials(folder),
        "Performance prediction: random forest (100 trees) on mean-pooled latent features, "
        "tested on held-out cells with accuracy > 0.8 (RMSE in accuracy fractions)",
    )
    return pd.DataFrame(rows), cap


def training_table(folder: Path) -> tuple[pd.DataFrame, str]:
    trials = _ok_trials(folder)
    cols = [
        ("val_l1_unseen_images", "val L1 unseen images"),
        ("baseline_l1_unseen_images", "baseline"),
        ("val_l1_unseen_networks", "val L1 unseen networks"),
        ("baseline_l1_unseen_networks", "baseline "),
        ("l1_test_seen_networks", "test L1 seen nets"),
        ("l1_test_unseen_networks", "test L1 unseen nets"),
        ("ops_acc", "ops recon"),
        ("adj_acc", "adjacency recon"),
        ("validity", "validity (%)"),
        ("uniqueness", "uniqueness (%)"),
    ]
    rows = []
    for model, g in trials.groupby("model"):
        row = {"model": model}
        for col, title in cols:
            row[title] = _fmt(g[col]) if col in g and g[col].notna().any() else "-"
        rows.append(row)
    cap = _caption(
        folder,
        trials,
        "Training: final labelled validation/test L1 beside the mean-vector baseline (the "
        "L1 between each example and its data set's mean), reconstruction accuracy on held-out "
        "cells, validity/uniqueness of cells decoded from N(0, I)",
    )
    return pd.DataFrame(rows), cap


def search_table(folder: Path) -> tuple[pd.DataFrame, str]:
    search = per_trial(folder, "search")
    rows = []
    if len(search):
        end = search["time"].max()
        last = search[search["time"] == end]
        for (model, method), g in last.groupby(["model", "method"]):
            rows.append(
                {
                    "model": model,
                    "method": method,
                    "final regret": _fmt(g["regret"]),
                    "queries": f"{g['queries'].mean():.0f}",
                    "budget (s)": f"{end:.3g}",
                    "regret_mean": float(g["regret"].mean()),
                }
            )
    cap = _caption(
        folder,
        _ok_trials(folder),
        "Search: regret (best accuracy among labelled cells minus the best found) at the end "
        "of the simulated time budget, REINFORCE in the latent space vs random search, over "
        "runs x trial seeds",
    )
    return pd.DataFrame(rows), cap


TABLE_BUILDERS = {
    "prediction": prediction_table,
    "training": training_table,
    "search": search_table,
}


def write_infonas_tables(
    results: Path, out: Path, formats: tuple[str, ...] = FORMATS
) -> list[Path]:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for folder in io_sweeps(results):
        for name, build in TABLE_BUILDERS.items():
            frame, caption = build(folder)
            stem = out / f"infonas_{name}_{folder.name}"
            title = f"Info-NAS {name} ({folder.name})"
            written += write_frame(frame, stem, formats, caption, title)
    return written


# --- figures ------------------------------------------------------------------------------


def prediction_boxplots(folder: Path, out: Path) -> Path | None:
    pred = per_trial(folder, "prediction")
    if pred.empty:
        return None
    sizes = sorted(pred["train_size"].unique())
    models = [m for m in MODELS if m in set(pred["model"])]
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    for ax, metric, title in ((axes[0], "rmse", "RMSE"), (axes[1], "pearson_r", "Pearson r")):
        width = 0.8 / max(1, len(models))
        for k, model in enumerate(models):
            data = [pred[(pred.model == model) & (pred.train_size == s)][metric] for s in sizes]
            pos = np.arange(len(sizes)) + (k - (len(models) - 1) / 2) * width
            box = ax.boxplot(data, positions=pos, widths=width * 0.9, patch_artist=True)
            for patch in box["boxes"]:
                patch.set_facecolor(f"C{k}")
                patch.set_alpha(0.5)
            ax.plot([], [], color=f"C{k}", lw=6, alpha=0.5, label=model)
        ax.axhline(REFERENCE[metric], color="k", ls="--", lw=1, label="arch2vec published")
        ax.set_xticks(np.arange(len(sizes)), [str(s) for s in sizes])
        ax.set_xlabel("train size (cells)")
        ax.set_ylabel(title)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(f"Performance prediction over seeds, sweep {folder.name}")
    return save_figure(fig, out / f"infonas_prediction_{folder.name}.png")


def regret_curves(folder: Path, out: Path) -> Path | None:
    search = per_trial(folder, "search")
    if search.empty:
        return None
    fig, ax = plt.subplots(figsize=(7, 4.5))
    k = 0
    for (model, method), g in search.groupby(["model", "method"]):
        stats = g.groupby("time")["regret"].agg(["mean", "std", "count"])
        half = np.nan_to_num(t_half_width(stats["std"], stats["count"]))
        ls = "-" if method == "reinforce" else ":"
        ax.plot(stats.index, stats["mean"], ls, color=f"C{k // 2}", label=f"{model} {method}")
        ax.fill_between(
            stats.index, stats["mean"] - half, stats["mean"] + half, color=f"C{k // 2}", alpha=0.15
        )
        k += 1
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("simulated training time (s)")
    ax.set_ylabel("regret (accuracy fraction)")
    ax.set_title(f"Search regret, mean and 95% interval over runs, sweep {folder.name}")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    return save_figure(fig, out / f"infonas_regret_{folder.name}.png")


def _epochs(folder: Path) -> pd.DataFrame:
    trials = _ok_trials(folder)[["trial_id", "model"]]
    epochs = read_part(folder, "epochs", set(trials["trial_id"]))
    return epochs.merge(trials, on="trial_id")


def validation_loss_curves(folder: Path, out: Path) -> Path | None:
    epochs = _epochs(folder)
    if "val_l1_unseen_images" not in epochs:
        return None
    io = epochs[epochs["val_l1_unseen_images"].notna()]
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    for ax, key, title in (
        (axes[0], "unseen_images", "unseen images"),
        (axes[1], "unseen_networks", "unseen networks"),
    ):
        stats = io.groupby("epoch")[f"val_l1_{key}"].agg(["mean", "std", "count"])
        half = np.nan_to_num(t_half_width(stats["std"], stats["count"]))
        ax.plot(stats.index, stats["mean"], marker=".", label="IO model")
        ax.fill_between(stats.index, stats["mean"] - half, stats["mean"] + half, alpha=0.2)
        base = io.groupby("epoch")[f"baseline_l1_{key}"].mean()
        ax.plot(base.index, base.values, "k--", label="mean-vector baseline")
        ax.set_xlabel("epoch")
        ax.set_ylabel("labelled L1 loss")
        ax.set_title(f"Validation loss, {title}")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    return save_figure(fig, out / f"infonas_validation_loss_{folder.name}.png")


def reconstruction_curves(folder: Path, out: Path) -> Path | None:
    epochs = _epochs(folder)
    if "ops_acc" not in epochs:
        return None
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    for ax, col, title in (
        (axes[0], "ops_acc", "operations"),
        (axes[1], "adj_acc", "adjacency matrix"),
    ):
        for model, g in epochs.groupby("model"):
            curve = g.groupby("epoch")[col].mean()
            ax.plot(curve.index, curve.values, marker=".", label=model)
        ax.set_xlabel("epoch")
        ax.set_ylabel("reconstruction accuracy")
        ax.set_title(f"{title} (held-out cells)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    return save_figure(fig, out / f"infonas_reconstruction_{folder.name}.png")


def write_infonas_figures(results: Path, out: Path) -> list[Path]:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for folder in io_sweeps(results):
        for fn in (
            prediction_boxplots,
            regret_curves,
            validation_loss_curves,
            reconstruction_curves,
        ):
            written.append(fn(folder, out))
    return [p for p in written if p is not None]


def report_sections(results: Path, written: list[Path]) -> list[str]:
    """The Info-NAS part of ``report.md``: each table written, inline."""
    tables = [p for p in written if p.name.startswith("infonas_") and p.suffix == ".md"]
    if not tables:
        return []
    lines = ["## Info-NAS (IO-embedding sweeps)", ""]
    for p in tables:
        lines += [p.read_text(), f"([{p.name}]({p.name}), with .csv and .tex beside it)", ""]
    return lines


# The interface every paper's analysis gives :mod:`analysis.report`.
write_tables = write_infonas_tables
write_figures = write_infonas_figures
