"""The one interval of every table and curve: the 95% Student-t interval over seeds,
mean +/- t_{0.975, n-1} * s / sqrt(n) (none with one value)."""

from __future__ import annotations

import math

import numpy as np
from scipy import stats


def t_half_width(std, n):
    """Half-width of the 95% Student-t interval from sample sd(s) and count(s); NaN for
    n < 2. Works on scalars and on arrays (e.g. per-epoch curves)."""
    std = np.asarray(std, dtype=float)
    n = np.asarray(n, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        t = stats.t.ppf(0.975, np.where(n > 1, n - 1, np.nan))
        out = t * std / np.sqrt(n)
    return np.where(n > 1, out, np.nan)


def mean_ci(values) -> tuple[float, float, int]:
    """(mean, half-width of the 95% Student-t interval or NaN, n) over non-NaN values."""
    v = np.asarray(values, dtype=float)
    v = v[~np.isnan(v)]
    n = len(v)
    if n == 0:
        return math.nan, math.nan, 0
    if n == 1:
        return float(v[0]), math.nan, 1
    return float(v.mean()), float(t_half_width(v.std(ddof=1), n)), n
