"""What an evaluation run leaves behind, written down in one place.

A run directory (``ava eval --out DIR``) holds:

* ``run.json`` — :class:`RunManifest`: who is being scored and the run's status
  (``running`` / ``interrupted`` / ``complete``). Written first, so a half-finished
  directory never looks complete, and so a later run with another model is refused.
* ``cache/scores.jsonl`` — one :class:`CachedScore` per scored prompt, appended and
  flushed chunk by chunk: an interrupted or extended run never scores a prompt twice.
* ``results.json`` — :class:`Results` (only once every task is done).
* ``items/<task>.jsonl`` — one :class:`ItemRecord` per prompt.
* ``tables/<task>__<table>.csv`` — each ``metrics()["tables"]`` entry.
* ``plots/<task>__<plot>.png`` — each ``metrics()["plots"]`` entry (see :class:`PlotSpec`).

``SCHEMA_VERSION`` changes whenever a field changes meaning or disappears.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

SCHEMA_VERSION = "1.0"

RUN_STATUSES = ("running", "interrupted", "complete")


@dataclass(frozen=True)
class RunManifest:
    """``run.json``: the scorer a run directory belongs to, and how far it got."""

    schema_version: str
    model: str
    adapter: str | None
    identity: str
    backend: str
    status: str
    tasks: list[str]
    updated_at: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


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
class TaskInfo:
    """``results["tasks"][name]["task_info"]``: what exactly was evaluated.

    ``dataset_hash`` hashes every item's request and metadata (so it changes with the data,
    the template or ``--limit``); ``template_version`` is the task's prompt template version
    (when it has one); ``n_cached`` items came from the cache, ``n_scored`` were scored now.
    """

    name: str
    version: str
    dataset_hash: str
    template_version: str | None
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
    """A bootstrap confidence interval: ``{"value", "low", "high", "level", "n_resamples"}``."""

    value: float
    low: float
    high: float
    level: float
    n_resamples: int


@dataclass(frozen=True)
class PlotSpec:
    """A bar chart a task asks for (``metrics()["plots"]`` entries; rendered by ``ava.reports``).

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

    ``tasks[name]`` is the task's ``metrics()`` dict, with ``tables`` and ``plots`` replaced
    by the relative paths of the files written for them, plus ``task_info`` (:class:`TaskInfo`)
    and ``diagnostics`` (:class:`Diagnostics`). Every task has ``headline``: name -> number;
    tasks may add ``intervals`` (name -> :class:`Interval`) for their headline numbers and
    other sections (the opinion tasks' sections are listed in ``docs/evaluation.md``).
    """

    schema_version: str
    run: RunInfo
    tasks: dict[str, dict[str, Any]]

    def to_dict(self) -> dict[str, Any]:
        return {"schema_version": self.schema_version, "run": asdict(self.run), "tasks": self.tasks}
