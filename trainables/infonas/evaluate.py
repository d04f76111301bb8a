"""What an architecture embedding does for NAS (Info-NAS section 4, arch2vec's protocols).

Both evaluations take a latent table (``hash``, ``z0..z{L-1}``: one vector a cell, the encoder
mean averaged over the cell's nodes) and the benchmark. Accuracies are in percent in the
benchmark; here they are used as fractions (the papers' RMSE of 0.018 is in fraction units).
On a partially labelled benchmark (the shared NAS-Bench-101 subset) both work on the
labelled cells only, and every output names the label.

**Performance prediction** (:func:`predict_performance`): a random forest (scikit-learn,
100 trees) on the latent features; for each train size and seed, ``n`` cells are drawn from
the pool (labelled cells outside the IO training set), the forest is fitted on them and
evaluated on the REST of the pool restricted to cells with accuracy above 0.8, as the paper:
RMSE and Pearson r.

**REINFORCE search** (:func:`reinforce_search`), as arch2vec: a policy (LSTM cell) reads the
embedding of the current cell and outputs the mean of a Gaussian over the embedding space;
the sampled point moves the search to the nearest cell not yet visited; the reward is that
cell's accuracy (queried from the benchmark) and its training time is added to a simulated
clock; the run stops when the clock passes the budget. The policy is updated every
``batch`` steps with the REINFORCE gradient of (reward - baseline), baseline an exponential
moving average of rewards (decay 0.9). arch2vec's released code computes a discounted
return and then does not use it; we use the immediate reward minus the baseline, on
purpose: the reward of a step does not depend on later steps. Regret = the best accuracy
among the searchable cells minus the best found so far, recorded against simulated time.

**Random search** (:func:`random_search`): uniformly random unvisited cells on the same clock.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from pipeline.config import ConfigError
from pipeline.nas.table import BenchmarkError


@dataclass
class SearchSpaceView:
    """The cells a search can visit: embeddings, accuracy (fraction), cost (seconds)."""

    hashes: np.ndarray
    z: np.ndarray  # [n, L] float32, standardised per dimension
    acc: np.ndarray  # [n] fraction
    cost: np.ndarray  # [n] seconds

    @property
    def best(self) -> float:
        return float(self.acc.max())


def latent_matrix(latent) -> tuple[np.ndarray, np.ndarray]:
    """A latent table (DataFrame or dict of columns) -> (hashes, z [n, L] float32)."""
    cols = sorted((c for c in latent if str(c).startswith("z")), key=lambda c: int(c[1:]))
    z = np.stack([np.asarray(latent[c], dtype=np.float32) for c in cols], axis=1)
    return np.asarray(latent["hash"]), z


def search_view(latent, bench, cost_column: str | None = None) -> SearchSpaceView:
    """Labelled cells of ``bench`` that have an embedding; cost = their training time."""
    hashes, z = latent_matrix(latent)
    rows = np.array([bench.lookup(h) for h in hashes.tolist()], dtype=object)
    ok = np.array([r is not None for r in rows])
    rows = rows[ok].astype(np.int64)
    hashes, z = hashes[ok], z[ok]
    acc = bench.accuracy[rows] / 100.0
    keep = ~np.isnan(acc)
    cost_column = cost_column or _cost_column(bench)
    cost = bench.extra[cost_column].to_numpy(dtype=np.float64)[rows]
    keep &= ~np.isnan(cost)
    z = z[keep]
    z = (z - z.mean(0)) / (z.std(0) + 1e-8)
    return SearchSpaceView(hashes[keep], z.astype(np.float32), acc[keep], cost[keep])


def _cost_column(bench) -> str:
    """The training-time column matching the label (train_time_108_r1 for val_acc_108_r1)."""
    suffix = bench.label.split("_acc_")[-1] if "_acc_" in bench.label else ""
    wanted = f"train_time_{suffix}"
    cols = [c for c in bench.extra.columns if c.startswith("train_time_")]
    if wanted in cols:
        return wanted
    if not cols:
        raise BenchmarkError(f"{bench.name} has no training-time column for the search's clock")
    return cols[0]


# --- performance prediction ---------------------------------------------------------------


def predict_performance(
    z: np.ndarray,
    acc: np.ndarray,
    sizes: list[int],
    seeds: list[int],
    threshold: float = 0.8,
    trees: int = 100,
    n_jobs: int = 1,
) -> list[dict]:
    """Random-forest prediction rows: size, seed, rmse, pearson_r, n_test (see module doc)."""
    from scipy.stats import pearsonr
    from sklearn.ensemble import RandomForestRegressor

    z, acc = np.asarray(z), np.asarray(acc, dtype=np.float64)
    rows = []
    for size in sizes:
        if size >= len(acc):
            raise ConfigError(f"train size {size} >= the {len(acc)} cells of the pool")
        for seed in seeds:
            rng = np.random.default_rng(seed)
            perm = rng.permutation(len(acc))
            tr, te = perm[:size], perm[size:]
            te = te[acc[te] > threshold]
            forest = RandomForestRegressor(n_estimators=trees, random_state=seed, n_jobs=n_jobs)
            forest.fit(z[tr], acc[tr])
            pred = forest.predict(z[te])
            rmse = float(np.sqrt(np.mean((pred - acc[te]) ** 2)))
            r = float(pearsonr(pred, acc[te])[0]) if len(te) > 1 else float("nan")
            rows.append(
                {"train_size": size, "seed": seed, "rmse": rmse, "pearson_r": r, "n_test": len(te)}
            )
    return rows


# --- search ---------------------------------------------------------------------------------


class Policy(nn.Module):
    def __init__(self, dim: int, hidden: int = 64) -> None:
        super().__init__()
        self.cell = nn.LSTMCell(dim, hidden)
        self.mean = nn.Linear(hidden, dim)

    def forward(self, x, state):
        h, c = self.cell(x, state)
        return self.mean(h), (h, c)


def _curve(times: list[float], best: list[float], grid: np.ndarray, best_all: float):
    """Regret at each grid time (the best found by then; NaN before the first query ends)."""
    t = np.asarray(times)
    b = np.maximum.accumulate(np.asarray(best))
    idx = np.searchsorted(t, grid, side="right") - 1
    return np.where(idx >= 0, best_all - b[np.clip(idx, 0, None)], np.nan)


@dataclass
class SearchRun:
    visited: list[int]  # indices into the view, in order
    times: list[float]  # simulated clock after each query
    found: list[float]  # accuracy of each queried cell

    def regret(self, grid: np.ndarray, best_all: float) -> np.ndarray:
        return _curve(self.times, self.found, grid, best_all)


def reinforce_search(
    view: SearchSpaceView,
    budget: float,
    seed: int,
    hidden: int = 64,
    lr: float = 1e-2,
    sigma: float = 0.5,
    batch: int = 8,
    decay: float = 0.9,
    max_steps: int | None = None,
) -> SearchRun:
    """One REINFORCE run on the simulated clock (see module docstring)."""
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    z = torch.from_numpy(view.z)
    n, dim = z.shape
    policy = Policy(dim, hidden)
    opt = torch.optim.Adam(policy.parameters(), lr=lr)
    visited = np.zeros(n, dtype=bool)
    current = int(rng.integers(n))
    run = SearchRun([current], [float(view.cost[current])], [float(view.acc[current])])
    visited[current] = True
    clock, baseline = run.times[0], float(view.acc[current])
    state = None
    log_probs: list[torch.Tensor] = []
    advantages: list[float] = []
    while clock < budget and not visited.all():
        if max_steps is not None and len(run.visited) >= max_steps:
            break
        mean, state = policy(z[current][None], state)
        action = mean + sigma * torch.randn(mean.shape, generator=gen)
        log_probs.append(torch.distributions.Normal(mean, sigma).log_prob(action.detach()).sum())
        dist = torch.cdist(action.detach(), z)[0]
        dist[torch.from_numpy(visited)] = float("inf")
        current = int(dist.argmin())
        visited[current] = True
        reward = float(view.acc[current])
        advantages.append(reward - baseline)
        baseline = decay * baseline + (1 - decay) * reward
        clock += float(view.cost[current])
        run.visited.append(current)
        run.times.append(clock)
        run.found.append(reward)
        if len(log_probs) == batch:
            loss = -(torch.stack(log_probs) * torch.tensor(advantages)).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            log_probs, advantages = [], []
            state = (state[0].detach(), state[1].detach())
    return run


def random_search(view: SearchSpaceView, budget: float, seed: int) -> SearchRun:
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(view.acc))
    times = np.cumsum(view.cost[order])
    stop = int(np.searchsorted(times, budget, side="left")) + 1  # the query crossing the budget
    order = order[:stop]
    return SearchRun(order.tolist(), times[:stop].tolist(), view.acc[order].tolist())


def time_grid(budget: float, points: int = 40) -> np.ndarray:
    """Log-spaced simulated times from 1e4 s (or budget/100) to the budget."""
    lo = min(1e4, budget / 100)
    return np.geomspace(lo, budget, points)


def search_rows(
    view: SearchSpaceView, runs: int, budget: float, seed0: int = 0, points: int = 40, **kw
) -> list[dict]:
    """Regret curves of ``runs`` REINFORCE and random-search runs: one row a (method, run,
    grid time); runs use seeds seed0 .. seed0 + runs - 1 for both methods."""
    grid = time_grid(budget, points)
    rows = []
    for method in ("reinforce", "random"):
        for r in range(runs):
            s = seed0 + r
            run = (
                reinforce_search(view, budget, s, **kw)
                if method == "reinforce"
                else random_search(view, budget, s)
            )
            regret = run.regret(grid, view.best)
            rows += [
                {
                    "method": method,
                    "run": s,
                    "time": float(t),
                    "regret": float(g),
                    "queries": int(np.searchsorted(run.times, t, side="right")),
                }
                for t, g in zip(grid, regret, strict=True)
            ]
    return rows


def evaluate_latent(
    latent,
    bench,
    sizes: list[int],
    seeds: int,
    runs: int,
    budget: float,
    threshold: float = 0.8,
    exclude: set[str] | frozenset[str] = frozenset(),
) -> tuple[dict, dict[str, list[dict]]]:
    """Both evaluations on one latent table: (summary metrics, {"prediction", "search"} rows).

    ``exclude``: hashes left out of the prediction pool (the IO model's pretrained networks,
    whose outputs it was trained on); the search may still visit them."""
    view = search_view(latent, bench)
    pool = ~np.isin(view.hashes, np.array(sorted(exclude), dtype=object))
    pred = predict_performance(
        view.z[pool], view.acc[pool], sizes, list(range(seeds)), threshold=threshold
    )
    metrics: dict = {"label": bench.label, "search_cells": len(view.hashes)}
    for size in sizes:
        these = [r for r in pred if r["train_size"] == size]
        metrics[f"pred_rmse_{size}"] = float(np.mean([r["rmse"] for r in these]))
        metrics[f"pred_r_{size}"] = float(np.mean([r["pearson_r"] for r in these]))
    search = search_rows(view, runs, budget)
    end = max(r["time"] for r in search)
    for method in ("reinforce", "random"):
        final = [r["regret"] for r in search if r["method"] == method and r["time"] == end]
        metrics[f"regret_{method}"] = float(np.mean(final))
    metrics["search_best_acc"] = view.best
    return metrics, {"prediction": pred, "search": search}
