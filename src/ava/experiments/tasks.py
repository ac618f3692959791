"""The evaluation tasks of an experiment: the registry's tasks, narrowed as the recipe asks.

Why wrappers rather than new task options: a recipe wants a *seeded* sample of OpinionQA's
questions (``--limit`` keeps the first N, which may all come from one wave) and only the TAP
family of ``ava-tasks`` (the generative families cost minutes per item on a CPU). Both narrow
the item list and leave name, version, scoring and metrics untouched, so every score stays keyed
exactly as ``ava eval`` keys it and the same cache serves both.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ava.contracts.results import ItemScore
from ava.evals import registry
from ava.evals.task import EvalItem, GenerationItem, GenerationTask, TaskOptions, TaskResult
from ava.subsets import unit_subset


class SubsetTask:
    """A letter task restricted to a seeded sample of ``n`` units (questions with all their prompts)."""

    def __init__(self, inner: Any, n: int, seed: int) -> None:
        self.inner, self.n, self.seed = inner, n, seed
        self.name, self.version, self.template_version = inner.name, inner.version, inner.template_version
        self.reducer = inner.reducer

    def items(self) -> list[EvalItem]:
        return unit_subset(list(self.inner.items()), self.n, self.seed, "python")

    def score(self, items: Sequence[EvalItem], outputs: Mapping[str, Any]) -> list[ItemScore]:
        return self.inner.score(items, outputs)

    def metrics(self, scores: Sequence[ItemScore]) -> TaskResult:
        return self.inner.metrics(scores)


class FamilyTask:
    """A generation task restricted to some task families (e.g. ``TAP``)."""

    def __init__(self, inner: Any, families: Sequence[str]) -> None:
        self.inner, self.families = inner, tuple(families)
        self.name, self.version, self.template_version = inner.name, inner.version, inner.template_version
        self.reducer, self.batch_size = inner.reducer, inner.batch_size

    def items(self) -> list[GenerationItem]:
        return [s for s in self.inner.items() if s.group in self.families]

    def generate(self, model: Any, tokenizer: Any, chunk: Sequence[GenerationItem]) -> list[dict[str, Any]]:
        return self.inner.generate(model, tokenizer, chunk)

    def score(self, items: Sequence[GenerationItem], outputs: Mapping[str, Mapping[str, Any]]) -> list[ItemScore]:
        return self.inner.score(items, outputs)

    def metrics(self, scores: Sequence[ItemScore]) -> TaskResult:
        return self.inner.metrics(scores)


def make_tasks(benchmarks: Mapping[str, Mapping[str, Any]], build: Path, seed: int) -> dict[str, list[Any]]:
    """Tasks per benchmark of the recipe; ``ava-tasks`` reads the experiment's own build."""
    out: dict[str, list[Any]] = {}
    for name, spec in benchmarks.items():
        bench = registry.get(name)
        data = str(build) if name == "ava-tasks" else spec["data"]
        options = TaskOptions(limit=spec["limit"], steer=spec["steer"], seed=seed, data=data,
                              settings=dict(spec["settings"]))
        tasks = list(bench.factory()(options))
        if spec["sample"] is not None:
            tasks = [t if isinstance(t, GenerationTask) else SubsetTask(t, spec["sample"], seed) for t in tasks]
        if spec["families"]:
            tasks = [FamilyTask(t, spec["families"]) if isinstance(t, GenerationTask) else t for t in tasks]
        out[name] = tasks
    return out
