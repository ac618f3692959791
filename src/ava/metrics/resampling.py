"""The bootstrap every interval in ava uses: resamples as a weight matrix over units.

Every statistic here is a function of a weight matrix ``weights`` of shape ``[B, n_units]``:
row 0 is all ones (the point estimate) and rows 1.. are bootstrap resamples (how often each
unit, e.g. a survey question, was drawn). A statistic written as weighted sums over units then
gives its point estimate and all its resamples with one matrix product, every number of a task
shares one draw (so their intervals agree with each other), and a comparison of two runs applies
the *same* draw to both (a paired bootstrap: the noise the runs share cancels).

Why hand-written rather than ``scipy.stats.bootstrap``: the statistics are ratios of sums with
missing values (a group without respondents on a question), maxima over formats and argmaxes
over topics, all sharing one set of resamples; scipy resamples one statistic at a time.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import numpy as np
from scipy.stats import norm

from ava.contracts.results import Interval

N_RESAMPLES = 1000
"""Resamples of an evaluation's own intervals (``--set n_resamples``)."""
LEVEL = 0.95


def resample_weights(n: int, n_resamples: int = N_RESAMPLES, seed: int = 0) -> np.ndarray:
    """``[1 + n_resamples, n]``: row 0 all ones (point estimate), then bootstrap draw counts."""
    rng = np.random.default_rng(seed)
    weights = np.ones((1 + n_resamples, n), dtype=np.float64)
    if n_resamples and n:
        draws = rng.integers(0, n, size=(n_resamples, n))
        offsets = (np.arange(n_resamples) * n)[:, None]
        weights[1:] = np.bincount((draws + offsets).ravel(), minlength=n_resamples * n).reshape(n_resamples, n)
    return weights


def weighted_mean(weights: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Per-column weighted mean over units, ignoring NaN: ``[B, n] x [n, G] -> [B, G]``."""
    valid = ~np.isnan(values)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (weights @ np.where(valid, values, 0.0)) / (weights @ valid.astype(np.float64))


PERCENTILE = "percentile"
"""The percentile bootstrap: the resamples' quantiles (the published-style CIs of means)."""
BIAS_CORRECTED = "bc-percentile"
"""Efron's bias-corrected percentile bootstrap: quantiles shifted by the share of resamples below
the point estimate; for statistics whose resamples sit off-centre (argmaxes, maxima)."""


def interval(series: np.ndarray, level: float = LEVEL, method: str = PERCENTILE,
             n_units: int | None = None) -> dict[str, Any]:
    """Point estimate (row 0) with a bootstrap interval of the resamples (rows 1..) that contains it.

    ``method`` ``"percentile"``: the resamples' quantiles; where they exclude the point estimate
    (a biased statistic) it falls back to ``"bc-percentile"``. ``"bc-percentile"``: bias-corrected
    from the start (for a discrete argmax statistic such as consistency, whose resamples are
    biased against the point). An interval that still excludes the point is not written:
    ``low``/``high`` are NaN and ``reason`` says why, as it does for no point estimate, no
    finite resample (``n_resamples`` then counts the finite ones), fewer than two units
    (``n_units``: every resample is the same data) or no spread at all. NaN resamples (a group
    absent from a whole resample) are left out of the quantiles.
    """
    if method not in (PERCENTILE, BIAS_CORRECTED):
        raise ValueError(f"unknown interval method {method!r} (known: {PERCENTILE}, {BIAS_CORRECTED})")
    series = np.asarray(series, dtype=float)
    value = float(series[0])
    boot = series[1:]
    boot = boot[np.isfinite(boot)]

    def none(reason: str) -> dict[str, Any]:
        return asdict(Interval(value, float("nan"), float("nan"), level, int(boot.size), method, reason))

    if not np.isfinite(value):
        return none("no point estimate")
    if boot.size == 0:
        return none("not resampled: " + ("n_resamples = 0" if series.size == 1 else "no finite resample"))
    if n_units is not None and n_units < 2:
        return none(f"not resampled: {n_units} unit, so every resample is the same data")
    if np.max(np.abs(boot - value)) <= 1e-9 * max(1.0, abs(value)):  # equal but for rounding of the sums
        return none("no spread: every resample equals the point estimate")
    alpha = (1 - level) / 2
    if method == PERCENTILE:
        low, high = np.quantile(boot, [alpha, 1 - alpha])
        if low <= value <= high:
            return asdict(Interval(value, float(low), float(high), level, int(series.size - 1), method))
        method = BIAS_CORRECTED
    low, high, below = _bias_corrected(boot, value, alpha)
    if low <= value <= high and low < high:  # [x, x] would read as certainty
        return asdict(Interval(value, float(low), float(high), level, int(series.size - 1), method))
    return none(f"point estimate outside the {method} interval [{low:.4g}, {high:.4g}] ({below:.1%} of the "
                "resamples lie below it): the statistic is too biased under resampling at this sample size")


def _bias_corrected(boot: np.ndarray, value: float, alpha: float) -> tuple[float, float, float]:
    """Efron's bias-corrected percentile interval (BC, Efron & Tibshirani 1993, 14.3 with a = 0).

    ``z0`` = Phi^-1 of the share of resamples below the point estimate, ties counted half (a
    discrete statistic has many resamples equal to its point); the quantiles taken are
    Phi(2 z0 + z_alpha) and Phi(2 z0 + z_(1-alpha)). Hand-written rather than
    ``scipy.stats.bootstrap(method="BCa")`` because our resamples come from one shared weight
    matrix (see the module docstring); the acceleration of BCa needs a jackknife of every
    statistic and is left at 0. Returns (low, high, share below).
    """
    below = (np.sum(boot < value) + 0.5 * np.sum(boot == value)) / boot.size
    if below <= 0.0 or below >= 1.0:
        return float("nan"), float("nan"), float(below)
    z0 = norm.ppf(below)
    q = norm.cdf([2 * z0 + norm.ppf(alpha), 2 * z0 + norm.ppf(1 - alpha)])
    low, high = np.quantile(boot, q)
    return float(low), float(high), float(below)
