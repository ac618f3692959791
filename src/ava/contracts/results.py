"""What an evaluation run leaves behind, written down in one place.

A run directory (``ava eval --out DIR``) holds, as :class:`RunDirectory` names them:

* ``run.json`` — the run record (:class:`ava.contracts.runs.RunRecord`, kind ``eval``): its
  status (running / interrupted / failed / complete), the model identity it is bound to, and
  notes (model name, adapter, backend, tasks). Written first and last: the one place that says
  whether the run is finished.
* ``cache/scores.jsonl`` — one :class:`CachedScore` per scored prompt, appended and flushed
  chunk by chunk: an interrupted or extended run never scores a prompt twice.
  ``cache/generations.jsonl`` — the same for generation tasks (``ava-tasks``): one line per
  answered item, ``{"key", "task", "id", "record"}``.
* ``results.json`` — :class:`Results` (only once every task is done).
* ``items/<task>.jsonl`` — one :class:`ItemRecord` per prompt (a generation task: its records).
* ``scores/<task>.jsonl`` — one :class:`ItemScore` per item: what the task's metrics reduced.
* ``tables/<task>__<table>.csv`` — each :class:`~ava.evals.task.TaskResult` table.
* ``plots/<task>__<plot>.png`` — each :class:`PlotSpec` of a task's result.
* ``paper_table.json`` / ``.csv`` — a suite's headline row beside the uniform baseline.

``SCHEMA_VERSION`` changes whenever a field changes meaning or disappears.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

SCHEMA_VERSION = "2.0"


@dataclass(frozen=True)
class CachedScore:
    """One line of the score cache; ``key`` = hash of (identity, task, version, item id, request)."""

    key: str
    task: str
    id: str
    logprobs: list[float]


@dataclass(frozen=True)
class ItemRecord:
    """One line of ``items/<task>.jsonl``: a prompt's raw scores and its metadata.

    ``logprobs`` are per option letter, before renormalising (see ``ScoredItem``);
    ``probs`` renormalise them over all letters; ``letter_mass`` their total probability.
    """

    task: str
    id: str
    options: list[str]
    logprobs: list[float]
    probs: list[float]
    letter_mass: float
    meta: dict[str, Any]


@dataclass(frozen=True)
class ItemScore:
    """One line of ``scores/<task>.jsonl``: an item's score record, what every consumer reduces.

    A task turns each item's model output into one of these (as inspect's ``Score`` or
    lm-eval's per-document results); its metrics reduce them, and a comparison of two runs
    reduces the same records of both with one set of resamples (:mod:`ava.metrics.reducers`).
    ``unit`` is the resampling unit the item belongs to (a survey question with all its
    prompts); ``values`` holds the per-item quantities the task's reducer reads, named in that
    reducer's docstring (NaN is written as null).
    """

    id: str
    unit: str
    values: dict[str, Any]


@dataclass(frozen=True)
class TaskInfo:
    """``results["tasks"][name]["task_info"]``: what exactly was evaluated.

    ``dataset_hash`` hashes every item's request and metadata (so it changes with the data,
    the template or ``--limit``); ``template_version`` is the task's prompt template version
    (when it has one); ``n_cached`` items came from the cache, ``n_scored`` were scored now;
    ``reducer`` names how the task's item scores (``scores/<task>.jsonl``) are reduced
    (:mod:`ava.metrics.reducers`).
    """

    name: str
    version: str
    dataset_hash: str
    template_version: str | None
    reducer: str
    n_items: int
    n_scored: int
    n_cached: int
    scoring_s: float
    metrics_s: float
    prompts_per_s: float | None


@dataclass(frozen=True)
class Diagnostics:
    """``results["tasks"][name]["diagnostics"]``: is the model answering at all?

    ``low_letter_mass`` is True when the mean letter mass is below ``threshold``: the model's
    "opinions" are then mostly noise and a warning is printed.
    """

    letter_mass_mean: float
    letter_mass_min: float
    letter_mass_p10: float
    threshold: float
    low_letter_mass: bool


@dataclass(frozen=True)
class Interval:
    """A bootstrap confidence interval: ``{"value", "low", "high", "level", "n_resamples", "method",
    "reason"}``.

    ``method`` names how it was computed (``"percentile"``, ``"bc-percentile"``: bias-corrected
    percentile; :func:`ava.metrics.resampling.interval`); ``low``/``high`` are NaN (null) when there
    is no valid interval, and ``reason`` then says why (not resampled, no spread, or a point
    estimate that falls outside every method's interval). A written interval always contains
    ``value``.
    """

    value: float
    low: float
    high: float
    level: float
    n_resamples: int
    method: str = "percentile"
    reason: str | None = None


@dataclass(frozen=True)
class PlotSpec:
    """A bar chart a task asks for (``TaskResult.plots``; rendered by ``ava.evals.plots``).

    ``series`` maps a legend label to one value per label in ``labels``; ``errors`` (optional)
    maps the same legend labels to ``[low, high]`` pairs; ``reference`` draws horizontal
    lines (label -> value), e.g. the uniform model.
    """

    name: str
    title: str
    labels: list[str]
    series: dict[str, list[float]]
    ylabel: str = ""
    errors: dict[str, list[list[float]]] = field(default_factory=dict)
    reference: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class RunInfo:
    """``results["run"]``: the model, the settings and the timings of a run."""

    model: str
    adapter: str | None
    identity: str
    backend: str
    seed: int
    limit: int | None
    config: dict[str, Any]
    started_at: str
    finished_at: str
    wall_s: float
    scoring_s: float
    ava_version: str
    python: str
    platform: str


@dataclass(frozen=True)
class Results:
    """``results.json``.

    ``tasks[name]`` is the task's :class:`~ava.evals.task.TaskResult` (``headline``, ``units``,
    ``unit``, ``description``, ``intervals``, ``counts``, ``groups``, ``details``), with
    ``tables`` and ``plots`` as the relative paths of the files written for them, plus
    ``task_info`` (:class:`TaskInfo`) and ``diagnostics`` (:class:`Diagnostics`; null for a
    generation task). Each task's ``details`` sections are listed in ``docs/evaluation.md``.
    """

    schema_version: str
    run: RunInfo
    tasks: dict[str, dict[str, Any]]

    def to_dict(self) -> dict[str, Any]:
        return {"schema_version": self.schema_version, "run": asdict(self.run), "tasks": self.tasks}


def safe_name(name: str) -> str:
    """A task or table name as a file name (anything but letters, digits, ``-_.`` becomes ``_``)."""
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)


@dataclass(frozen=True)
class RunDirectory:
    """The paths of an evaluation run directory: every reader and writer of one goes through here."""

    root: Path

    OWNED = ("cache", "results.json", "items", "scores", "tables", "plots", "paper_table.json", "paper_table.csv")
    """What a run writes besides ``run.json``: removed by ``--restart``."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root))

    @property
    def results(self) -> Path:
        return self.root / "results.json"

    @property
    def score_cache(self) -> Path:
        return self.root / "cache" / "scores.jsonl"

    @property
    def generation_cache(self) -> Path:
        return self.root / "cache" / "generations.jsonl"

    def items(self, task: str) -> Path:
        return self.root / "items" / f"{safe_name(task)}.jsonl"

    def scores(self, task: str) -> Path:
        return self.root / "scores" / f"{safe_name(task)}.jsonl"

    @staticmethod
    def table(task: str, name: str) -> str:
        """A task's table, relative to the root (as ``results.json`` records it)."""
        return f"tables/{safe_name(task)}__{safe_name(name)}.csv"

    @staticmethod
    def plot(task: str, name: str) -> str:
        """A task's plot, relative to the root (as ``results.json`` records it)."""
        return f"plots/{safe_name(task)}__{safe_name(name)}.png"

    @property
    def paper_table_json(self) -> Path:
        return self.root / "paper_table.json"

    @property
    def paper_table_csv(self) -> Path:
        return self.root / "paper_table.csv"
