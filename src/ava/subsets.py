"""Seeded subsets: which units a ``--limit`` or a sample keeps, in one place.

Every selection keeps the chosen units in their original order. Two random methods exist because
each defines draws that are already published or cached, and changing either would change which
questions or pairs a recorded number was computed on (and every cached score's key):

* ``"numpy"``: ``numpy.random.default_rng(seed).choice(n, k, replace=False)``: the seeded
  ``--limit`` samples of GlobalOpinionQA questions, CultureNLI pairs and CultureBank rows;
* ``"python"``: ``random.Random(seed).sample(range(n), k)``: the OpinionQA-XL steering set, an
  experiment recipe's ``sample`` of survey questions, the chat data mixed into training, and (one
  ``random.Random`` drawn task after task) the stratified samples of the instruction data.

``first_units`` is not random: OpinionQA's ``--limit N`` keeps its first N questions.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any, Literal

Method = Literal["numpy", "python"]


def seeded_subset(n: int, k: int | None, seed: int, method: Method = "numpy") -> list[int]:
    """Indices (ascending) of a seeded sample of ``k`` of ``n`` units; all of them when ``k`` is
    None or at least ``n``."""
    if k is None or k >= n:
        return list(range(n))
    if k < 1:
        raise ValueError(f"limit must be at least 1 (got {k})")
    if method == "python":
        return sorted(random.Random(seed).sample(range(n), k))
    if method == "numpy":
        import numpy as np

        return sorted(int(i) for i in np.random.default_rng(seed).choice(n, size=k, replace=False))
    raise ValueError(f"unknown subset method {method!r} (numpy or python)")


def first_units(items: Sequence[Any], limit: int | None) -> list[Any]:
    """The items of the first ``limit`` units, in order (``item.meta["unit"]``, else the item id)."""
    if limit is None:
        return list(items)
    if limit < 1:
        raise ValueError(f"limit must be at least 1 (got {limit})")
    seen: set[Any] = set()
    kept = []
    for item in items:
        unit = item.meta.get("unit", item.id)
        if unit not in seen:
            if len(seen) >= limit:
                continue
            seen.add(unit)
        kept.append(item)
    return kept


def unit_subset(items: Sequence[Any], k: int, seed: int, method: Method = "python") -> list[Any]:
    """The items of a seeded sample of ``k`` units (``item.meta["unit"]``, else the item id),
    every item of a chosen unit kept, in order."""
    units = list(dict.fromkeys(str(i.meta.get("unit", i.id)) for i in items))
    keep = {units[i] for i in seeded_subset(len(units), k, seed, method)}
    return [i for i in items if str(i.meta.get("unit", i.id)) in keep]
