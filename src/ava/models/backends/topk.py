"""Letters read from the next token's top-k log-probabilities, and what the top-k did not show.

Why a rule is needed at all: a server that gives only the top-k of the next token (llama.cpp's,
chat endpoints, any server asked for top-k mode) says nothing exact about a letter outside the
top-k. ``../shared/docs/benchmarks.md`` fixes the rule (OpinionQA's): a missing letter gets
``log(min(smallest top-k prob, remaining mass / number missing))``, and the covered mass is kept
with the item so that a reader can see how much of the distribution the reply showed.

A letter counts as found when any of its spellings (``"A"``, ``" A"``) is in the top-k; its
log-probability is then the logsumexp of the spellings found (a spelling not shown has less
probability than the smallest shown, which bounds the error). A letter none of whose spellings
is shown is *missing* and filled by the rule.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ava.contracts.scoring import ScoredItem

_FLOOR = 1e-30  # the rule's fill when the top-k already holds all the mass (keeps log finite)


@dataclass(frozen=True, slots=True)
class CoveredItem(ScoredItem):
    """A scored item read from a top-k reply: ``covered_mass`` is the probability the top-k
    showed (all tokens, not only letters), ``letters_missing`` how many letters were filled."""

    covered_mass: float = 1.0
    letters_missing: int = 0


def logsumexp(values: Sequence[float]) -> float:
    top = max(values)
    if top == -math.inf:
        return -math.inf
    return top + math.log(sum(math.exp(v - top) for v in values))


def read_topk(rid: str, top: Mapping[int, float], letters: Sequence[Sequence[int]]) -> CoveredItem:
    """The letters' log-probabilities from one top-k reply (``{token id: logprob}``), missing
    letters filled by the OpinionQA rule."""
    probs = [math.exp(v) for v in top.values()]
    covered = sum(probs)
    found: list[float | None] = []
    for spellings in letters:
        shown = [top[t] for t in spellings if t in top]
        found.append(logsumexp(shown) if shown else None)
    missing = sum(v is None for v in found)
    if missing:
        fill = math.log(max(_FLOOR, min(min(probs), max(0.0, 1.0 - covered) / missing)))
        found = [fill if v is None else v for v in found]
    return CoveredItem(rid, tuple(float(v) for v in found), covered_mass=min(1.0, covered), letters_missing=missing)
