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

import numpy as np

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


def interval(series: np.ndarray, level: float = LEVEL) -> dict[str, float]:
    """Point estimate (row 0) with the percentile interval of the resamples (rows 1..).

    NaN resamples (e.g. a group absent from a whole resample) are left out of the quantiles;
    with no finite resample, or a non-finite point estimate, ``low`` and ``high`` are NaN: no
    interval, and ``n_resamples`` counts the finite resamples (0 when none were drawn).
    """
    series = np.asarray(series, dtype=float)
    value = float(series[0])
    boot = series[1:]
    boot = boot[np.isfinite(boot)]
    if not np.isfinite(value) or boot.size == 0:
        return asdict(Interval(value, float("nan"), float("nan"), level, int(boot.size)))
    alpha = (1 - level) / 2
    low, high = np.quantile(boot, [alpha, 1 - alpha])
    return asdict(Interval(value, float(low), float(high), level, int(series.size - 1)))
