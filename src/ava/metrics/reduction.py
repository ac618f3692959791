"""What reducing a task's item scores gives: every statistic as a resampled series.

A reducer (:mod:`ava.metrics.reducers`) takes a task's :class:`~ava.contracts.results.ItemScore`
records and a weight matrix over their units (:func:`ava.metrics.resampling.resample_weights`)
and returns a :class:`Reduction`: one ``[B]`` series per headline statistic (row 0 the point
estimate) and per group (a demographic group, a country, a subtask). An evaluation reads row 0
(and its own intervals); a comparison of two runs calls the same reducer on both runs' records
with the same weights and resamples the differences.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from ava.contracts.results import ItemScore


@dataclass(frozen=True)
class Reduction:
    """``metrics``: name -> ``[B]``; ``higher_is_better``: name -> direction (every metric);
    ``groups``: group label -> ``[B]`` of ``group_metric`` for that group; ``group_units``:
    how many units each group has data on (a verdict on a group asked twice means nothing);
    ``references``: metric -> the reference points that do not depend on the model (``uniform``
    or ``random``, ``humans``, ``humans_worst``); ``notes``: metric -> counts worth showing
    beside it (e.g. answers that name no label)."""

    metrics: dict[str, np.ndarray]
    higher_is_better: dict[str, bool]
    n_units: int
    groups: dict[str, np.ndarray] = field(default_factory=dict)
    group_metric: str | None = None
    group_units: dict[str, int] = field(default_factory=dict)
    references: dict[str, dict[str, float | None]] = field(default_factory=dict)
    notes: dict[str, dict[str, int]] = field(default_factory=dict)


def unit_index(scores: Sequence[ItemScore]) -> tuple[list[str], np.ndarray]:
    """The units in first-seen order, and each record's position among them."""
    order: dict[str, int] = {}
    index = np.array([order.setdefault(s.unit, len(order)) for s in scores], dtype=np.int64)
    return list(order), index


def per_unit(index: np.ndarray, n_units: int, values: np.ndarray) -> np.ndarray:
    """Item values ``[n_items, ...]`` summed per unit ``[n_units, ...]`` (NaN stays NaN)."""
    out = np.zeros((n_units, *values.shape[1:]))
    np.add.at(out, index, values)
    return out


def nan_float(x: object) -> float:
    """A recorded number (null = NaN)."""
    return float("nan") if x is None else float(x)  # type: ignore[arg-type]


def reduce_mean(scores: Sequence[ItemScore], weights: np.ndarray) -> Reduction:
    """Every numeric value of the records (a boolean counts 0/1) averaged over the items, an item
    weighing as its unit; row 0 is the plain mean. For tasks whose metrics are means of per-item
    numbers (accuracy from ``{"correct": True}``)."""
    _, index = unit_index(scores)
    w = weights[:, index]
    names = [k for k, v in (scores[0].values.items() if scores else ()) if isinstance(v, int | float)]
    metrics = {}
    for name in names:
        values = np.array([float(s.values[name]) for s in scores])
        series = (w @ values) / w.sum(axis=1)
        series[0] = float(np.mean(values))
        metrics[name] = series
    return Reduction(metrics=metrics, higher_is_better={k: True for k in metrics}, n_units=weights.shape[1])
