"""What a letter-scored benchmark is: items to score, and metrics over their scores.

A task never touches a model; the runner (``ava.benchmarks.runner``) scores its items with
any :class:`~ava.models.scorer.Scorer`, caches scores, and hands them to ``metrics``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from ava.contracts.scoring import ScoredItem, ScoreRequest


@dataclass(frozen=True)
class EvalItem:
    """One prompt of a benchmark; ``meta`` carries what the metrics need (group, topic, gold...)."""

    id: str
    request: ScoreRequest
    meta: Mapping[str, Any] = field(default_factory=dict)


class Task(Protocol):
    """A benchmark (or one part of it); ``version`` is bumped when prompts or metrics change."""

    name: str
    version: str

    def items(self) -> Sequence[EvalItem]: ...

    def metrics(self, items: Sequence[EvalItem], scores: Mapping[str, ScoredItem]) -> dict[str, Any]: ...
