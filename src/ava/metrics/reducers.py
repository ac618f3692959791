"""Every reducer by name: how a task's item scores become resampled statistics.

A task names its reducer (``Task.reducer``) and the run records it (``task_info.reducer``), so
anything holding two runs' item scores (a base-vs-tuned comparison) reduces both the way the
task does, with one set of resamples, without rebuilding the task or its data.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from ava.contracts.results import ItemScore
from ava.metrics.classification import reduce_agreement, reduce_entailment
from ava.metrics.opinion import reduce_opinion, reduce_steering
from ava.metrics.reduction import Reduction, reduce_mean
from ava.metrics.similarity import reduce_similarity
from ava.metrics.text import reduce_ava_tasks

Reducer = Callable[[Sequence[ItemScore], np.ndarray], Reduction]

REDUCERS: dict[str, Reducer] = {
    "opinion": reduce_opinion,
    "steering": reduce_steering,
    "similarity": reduce_similarity,
    "entailment": reduce_entailment,
    "agreement": reduce_agreement,
    "ava-tasks": reduce_ava_tasks,
    "mean": reduce_mean,
}


def reducer(name: str) -> Reducer:
    """The reducer called ``name``; a clear error for one this ava does not know (a newer run)."""
    if name not in REDUCERS:
        raise ValueError(f"unknown reducer {name!r} (known: {', '.join(sorted(REDUCERS))}); "
                         "the run was made by another version of ava")
    return REDUCERS[name]
