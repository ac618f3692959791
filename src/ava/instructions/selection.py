"""A seeded subset of an instruction split that keeps every task (``--limit`` in training and ava-tasks).

Stratified by task because the tasks differ greatly in size (a 10 K-ad build's train split holds
35,824 TC-A samples and 927 TC-R): a plain random subset of a few items could leave a small task out.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ava.contracts.instructions import InstructionSample
from ava.instructions.dataset import DatasetError, Samples


def task_codes(tasks: Any) -> tuple[list[str], np.ndarray]:
    """Sorted task names and each row's index into them, from an Arrow column or a list."""
    array = tasks if isinstance(tasks, pa.ChunkedArray | pa.Array) else pa.array(list(tasks), pa.string())
    names = sorted(pc.unique(array).to_pylist())
    codes = pc.index_in(array, value_set=pa.array(names, pa.string()))
    return names, np.asarray(codes.to_numpy(zero_copy_only=False), dtype=np.int64)


def stratified_indices(tasks: Any, limit: int | None, seed: int, per_task: bool = False) -> list[int]:
    """Row indices (ascending) of a seeded sample keeping every task: ``limit`` in total, or per task.

    With ``per_task=False`` the total is split evenly over the tasks (the first ``limit % n`` tasks,
    alphabetically, take one more); a task with fewer rows than its quota gives all of them.
    """
    names, codes = task_codes(tasks)
    if limit is None:
        return list(range(len(codes)))
    if limit < 0:
        raise DatasetError(f"--limit must be >= 0, got {limit}")
    rng = random.Random(seed)
    keep: list[np.ndarray] = []
    for k in range(len(names)):
        quota = limit if per_task else limit // len(names) + (1 if k < limit % len(names) else 0)
        idx = np.flatnonzero(codes == k)
        # rng.sample(seq, n) only uses len(seq) and indexing: sampling positions gives the same draw
        keep.append(idx if len(idx) <= quota else idx[rng.sample(range(len(idx)), quota)])
    return sorted(int(i) for i in np.concatenate(keep)) if keep else []


def stratified_sample(
    samples: Sequence[InstructionSample], limit: int | None, seed: int, per_task: bool = False
) -> Sequence[InstructionSample]:
    """A seeded sample keeping every task (see :func:`stratified_indices`), in input order.

    A :class:`Samples` view gives a :class:`Samples` view (no sample objects made); a list a list.
    """
    if limit is None:
        return samples if isinstance(samples, Samples) else list(samples)
    if isinstance(samples, Samples):
        return samples.select(stratified_indices(samples.dataset.with_format("arrow")["task"], limit, seed, per_task))
    chosen = stratified_indices([s.task for s in samples], limit, seed, per_task)
    return [samples[i] for i in chosen]
