"""What a benchmark task is: items, item scores, a result type, and the options a factory takes.

A task never touches a model. A letter task (:class:`Task`) gives prompts with option letters;
the runner scores them with any :class:`~ava.models.scorer.Scorer` and caches the scores. A
generation task (:class:`GenerationTask`, e.g. ``ava-tasks``) gives prompts to continue; the
runner has the model answer them in chunks (``generate``) and caches the records. Then both
kinds do the same two things: ``score`` turns every item's output into one
:class:`~ava.contracts.results.ItemScore` (written to the run directory), and ``metrics``
reduces those into a :class:`TaskResult`. ``reducer`` names the function of
:mod:`ava.metrics.reducers` that reduces the item scores to resampled statistics: the task's
own metrics use it, and so does a comparison of two runs (base vs tuned), on the same records.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from ava.contracts.results import ItemScore, PlotSpec
from ava.contracts.scoring import ScoredItem, ScoreRequest


@dataclass(frozen=True)
class EvalItem:
    """One prompt of a letter task; ``meta`` carries what the metrics need (unit, group, gold...).

    ``meta["unit"]`` groups items that stand or fall together (a survey question with all its
    personas); ``--limit`` counts units.
    """

    id: str
    request: ScoreRequest
    meta: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class GenerationItem:
    """One prompt of a generation task; ``group`` items share generation settings (one chunk never mixes two)."""

    id: str
    prompt: str
    group: str
    meta: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TaskResult:
    """What a task's metrics return, and what ``results.json`` holds per task (plus run bookkeeping).

    ``headline``: name -> number (None where undefined), the numbers a table shows;
    ``units`` / ``unit``: how many of what the numbers are over ("questions", "pairs", ...);
    ``description``: what the headline numbers are, in one paragraph;
    ``intervals``: headline name -> :class:`~ava.contracts.results.Interval` fields;
    ``counts``: sizes and exclusions; ``groups``: ``ATTR:group`` -> score (the report's heatmap);
    ``details``: task-specific sections (consistency, references, load reports, ...);
    ``tables``: name -> rows (written as CSV); ``plots``: bar charts (written as PNG).
    """

    headline: Mapping[str, float | None]
    units: int
    unit: str
    description: str = ""
    intervals: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    counts: Mapping[str, Any] = field(default_factory=dict)
    groups: Mapping[str, float | None] = field(default_factory=dict)
    details: Mapping[str, Any] = field(default_factory=dict)
    tables: Mapping[str, Sequence[Mapping[str, Any]]] = field(default_factory=dict)
    plots: Sequence[PlotSpec] = ()

    def to_dict(self) -> dict[str, Any]:
        """The JSON form, ``tables`` and ``plots`` left out (the run directory writes them as files)."""
        return {
            "headline": dict(self.headline),
            "units": self.units,
            "unit": self.unit,
            "description": self.description,
            "intervals": {k: dict(v) for k, v in self.intervals.items()},
            "counts": dict(self.counts),
            "groups": dict(self.groups),
            "details": dict(self.details),
        }


@runtime_checkable
class Task(Protocol):
    """A letter-scored benchmark task; ``version`` changes when its items or metrics change,
    ``template_version`` when its prompt template does (None for a task without a template),
    ``reducer`` names how its item scores are reduced (:data:`ava.metrics.reducers.REDUCERS`)."""

    name: str
    version: str
    template_version: str | None
    reducer: str

    def items(self) -> Sequence[EvalItem]: ...

    def score(self, items: Sequence[EvalItem], outputs: Mapping[str, ScoredItem]) -> list[ItemScore]: ...

    def metrics(self, scores: Sequence[ItemScore]) -> TaskResult: ...


@runtime_checkable
class GenerationTask(Protocol):
    """A task whose items the model answers in free text, read by ``generate`` into records."""

    name: str
    version: str
    template_version: str | None
    reducer: str
    batch_size: int

    def items(self) -> Sequence[GenerationItem]: ...

    def generate(self, model: Any, tokenizer: Any, chunk: Sequence[GenerationItem]) -> list[dict[str, Any]]: ...

    def score(self, items: Sequence[GenerationItem], outputs: Mapping[str, Mapping[str, Any]]) -> list[ItemScore]: ...

    def metrics(self, scores: Sequence[ItemScore]) -> TaskResult: ...


@runtime_checkable
class TextTask(Protocol):
    """A task whose items the model answers in text through the scorer's own ``generate`` (the
    canonical tokenisation and framing of scoring, any backend that can generate), e.g. an opinion
    task read with ``--expression verbalized``. ``check_backend`` refuses, before anything is
    scored, a backend that cannot do what the task asks."""

    name: str
    version: str
    template_version: str | None
    reducer: str
    batch_size: int

    def check_backend(self, backend: str) -> None: ...

    def items(self) -> Sequence[GenerationItem]: ...

    def generate_with(self, scorer: Any, chunk: Sequence[GenerationItem]) -> list[dict[str, Any]]: ...

    def score(self, items: Sequence[GenerationItem], outputs: Mapping[str, Mapping[str, Any]]) -> list[ItemScore]: ...

    def metrics(self, scores: Sequence[ItemScore]) -> TaskResult: ...


def evaluate(task: Task, outputs: Mapping[str, ScoredItem]) -> TaskResult:
    """A letter task's result from its items' scored outputs: score each item, reduce."""
    return task.metrics(task.score(list(task.items()), outputs))


@dataclass(frozen=True)
class TaskOptions:
    """What ``ava eval`` hands a benchmark's task factory.

    ``limit``: units per task (how a benchmark counts and picks them is its own: the first N
    survey questions, a seeded sample of N pairs, ...); ``task_limits``: per task name, used by
    suites (the smaller of the two applies); ``data``: the benchmark's data, a file or the folder
    holding it (None: its default location); ``settings``: ``--set`` values, checked against the
    benchmark's declared settings before the factory is called.
    """

    limit: int | None = None
    steer: bool = False
    seed: int = 0
    data: str | Path | None = None
    settings: Mapping[str, str] = field(default_factory=dict)
    task_limits: Mapping[str, int] = field(default_factory=dict)

    def limit_for(self, task: str) -> int | None:
        own = self.task_limits.get(task)
        if own is None or self.limit is None:
            return self.limit if own is None else own
        return min(own, self.limit)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["data"] = None if self.data is None else str(self.data)
        out["settings"], out["task_limits"] = dict(self.settings), dict(self.task_limits)
        return out
