"""Verdicts over a family of groups: bootstrap p-values and family-wise (Holm) or false-discovery
(Benjamini-Hochberg) control.

Why: a comparison gives every one of ~60 OpinionQA groups and ~30 countries its own interval;
with 95% intervals about 1 in 20 groups excludes 0 by chance alone, so a fine-tune that changed
nothing still paints a few groups "away from people". A verdict on a group must survive the size
of the family; the unadjusted intervals stay visible beside it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

METHODS = ("holm", "bh", "none")


def bootstrap_p_value(delta: np.ndarray) -> float:
    """Two-sided p-value of "no change" from a resampled difference (rows 1..): twice the smaller
    share of resamples on either side of 0 (a resample at exactly 0 counts half to each side),
    at least 1 / (resamples + 1). NaN without finite resamples."""
    boot = np.asarray(delta, dtype=float)[1:]
    boot = boot[np.isfinite(boot)]
    if boot.size == 0:
        return float("nan")
    below = (np.sum(boot < 0) + 0.5 * np.sum(boot == 0)) / boot.size
    above = (np.sum(boot > 0) + 0.5 * np.sum(boot == 0)) / boot.size
    return float(min(1.0, max(2 * min(below, above), 1 / (boot.size + 1))))


def rejected(p_values: Sequence[float], alpha: float, method: str = "holm") -> list[bool]:
    """Which hypotheses of the family are rejected at level ``alpha`` (NaN p-values never are).

    ``holm``: step-down, controls the family-wise error rate; ``bh``: Benjamini-Hochberg
    step-up, controls the false discovery rate at ``alpha``; ``none``: each at ``alpha`` alone.
    """
    p = np.asarray(p_values, dtype=float)
    finite = np.flatnonzero(np.isfinite(p))
    out = np.zeros(len(p), dtype=bool)
    if method not in METHODS:
        raise ValueError(f"unknown correction {method!r} (known: {', '.join(METHODS)})")
    if finite.size == 0:
        return out.tolist()
    if method == "none":
        out[finite] = p[finite] <= alpha
        return out.tolist()
    order = finite[np.argsort(p[finite], kind="stable")]
    m = finite.size
    if method == "holm":
        for rank, idx in enumerate(order):
            if p[idx] > alpha / (m - rank):
                break
            out[idx] = True
        return out.tolist()
    passing = [rank for rank, idx in enumerate(order) if p[idx] <= alpha * (rank + 1) / m]
    if passing:
        out[order[: max(passing) + 1]] = True
    return out.tolist()
