"""GNN2GNN figures from a results folder: metric vs lambda, robustness curves, training
curves, and a paper-vs-reproduced scatter of every table cell. Reads Parquet only."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from analysis.figures import save_figure  # noqa: E402
from analysis.gnn2gnn.tables import METRIC_TITLES, METRICS, BuiltTable, sweep_tables  # noqa: E402
from pipeline.store.results import experiment_sweeps, read_part  # noqa: E402

UNITS = " (%)"


def metric_vs_lambda(t: BuiltTable, out: Path) -> Path | None:
    rows = t.rows.dropna(subset=["mean_acc_mean"])
    if t.spec.number != 1 or rows.empty:
        return None
    fig, axes = plt.subplots(1, 3, figsize=(13, 4))
    for ax, m in zip(axes, ("top10", "acc_n", "mean_acc"), strict=True):
        for (mu, tau), g in rows.groupby(["mu", "tau"]):
            g = g.sort_values("lambda")
            ax.errorbar(
                g["lambda"],
                g[f"{m}_mean"],
                yerr=g[f"{m}_ci"].fillna(0),
                marker="o",
                capsize=3,
                label=f"mu={mu:g}, tau={tau:g}",
            )
        ax.set_xscale("log")
        ax.set_xlabel("lambda (GAN weight after warm-up)")
        ax.set_ylabel(METRIC_TITLES[m] + UNITS)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle(t.caption[:140] + "...", fontsize=8)
    return save_figure(fig, out / f"lambda_{t.sweep}.png")


def robustness(t: BuiltTable, out: Path) -> Path | None:
    rows = t.rows.dropna(subset=["mean_acc_mean"])
    if t.spec.number != 4 or rows.empty:
        return None
    fig, ax = plt.subplots(figsize=(7, 4.5))
    rows = rows.sort_values("top_n_removed")
    for m in ("novelty", "top5", "top10", "top50", "acc_n"):
        line = ax.errorbar(
            rows["top_n_removed"],
            rows[f"{m}_mean"],
            yerr=rows[f"{m}_ci"].fillna(0),
            marker="o",
            capsize=3,
            label=METRIC_TITLES[m],
        )
        ax.plot(
            rows["top_n_removed"], rows[f"{m}_paper"], ls="--", color=line[0].get_color(), alpha=0.6
        )
    ax.set_xlabel("best N% of cells removed from training")
    ax.set_ylabel("metric" + UNITS)
    ax.set_title("Robustness (solid: reproduced, dashed: paper)", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return save_figure(fig, out / f"robustness_{t.sweep}.png")


def training_curves(folder: Path, trials: pd.DataFrame, out: Path) -> Path | None:
    epochs = read_part(folder, "epochs", set(trials["trial_id"]))
    if epochs.empty:
        return None
    epochs = epochs.merge(trials[["trial_id", "model"]], on="trial_id")
    epochs = epochs[epochs["epoch"] > 0]
    if epochs.empty:
        return None
    panels = [
        ("d_loss", "discriminator loss"),
        ("v_loss", "valuer loss"),
        ("g_loss", "generator loss"),
        ("validity", "validity (%)"),
        ("top10", "Top-10 (%)"),
        ("mean_acc", "mean accuracy (%)"),
    ]
    fig, axes = plt.subplots(2, 3, figsize=(13, 7))
    for ax, (col, label) in zip(axes.flat, panels, strict=True):
        if col not in epochs:
            ax.set_visible(False)
            continue
        for model, g in epochs.groupby("model"):
            curve = g.groupby("epoch")[col].mean()
            ax.plot(curve.index, curve.values, marker=".", label=model)
        ax.set_xlabel("epoch")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    axes.flat[0].legend(fontsize=8)
    fig.suptitle(f"Training curves, sweep {folder.name} (mean over trials per model)")
    return save_figure(fig, out / f"training_{folder.name}.png")


def paper_vs_reproduced(tables: list[BuiltTable], out: Path) -> Path | None:
    points = []
    for t in tables:
        for _, row in t.rows.iterrows():
            for m in METRICS:
                a, b = row[f"{m}_paper"], row[f"{m}_mean"]
                if not (math.isnan(a) or math.isnan(b)):
                    points.append((t.spec.number, m, a, b))
    if not points:
        return None
    frame = pd.DataFrame(points, columns=["table", "metric", "paper", "reproduced"])
    fig, ax = plt.subplots(figsize=(6, 6))
    for m, g in frame.groupby("metric"):
        ax.scatter(g["paper"], g["reproduced"], label=METRIC_TITLES[m], alpha=0.8)
    lim = [0, 100]
    ax.plot(lim, lim, color="grey", lw=1)
    ax.set_xlim(lim)
    ax.set_ylim(lim)
    ax.set_xlabel("published value (%)")
    ax.set_ylabel("reproduced mean (%)")
    ax.set_title(f"Every table cell ({len(frame)} points); grey: y = x", fontsize=10)
    ax.legend(fontsize=8)
    return save_figure(fig, out / "paper_vs_reproduced.png")


def write_figures(results: Path, out: Path) -> list[Path]:
    """All figures for every sweep under ``results``; returns the files written."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    tables = sweep_tables(results)
    written = [metric_vs_lambda(t, out) for t in tables]
    written += [robustness(t, out) for t in tables]
    written += [training_curves(f, t, out) for f, t in experiment_sweeps(results, "gnn2gnn")]
    written.append(paper_vs_reproduced(tables, out))
    return [p for p in written if p is not None]
