"""The evaluation tasks of an experiment: the registry's tasks, narrowed as the recipe asks.

Why wrappers rather than new task options: a recipe wants a *seeded* sample of OpinionQA's
questions (``--limit`` keeps the first N, which may all come from one wave) and only the TAP
family of ``ava-tasks`` (the generative families cost minutes per item on a CPU). Both narrow
the item list and leave name, version and metrics untouched, so every score stays keyed exactly
as ``ava eval`` keys it and the same cache serves both.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ava.evals import registry
from ava.evals.task import EvalItem, GenerationItem, GenerationTask, TaskOptions


class SampledTask:
    """A letter task restricted to a seeded sample of ``n`` units (questions with all their prompts)."""

    def __init__(self, inner: Any, n: int, seed: int) -> None:
        self.inner, self.n, self.seed = inner, n, seed
        self.name, self.version, self.template_version = inner.name, inner.version, inner.template_version

    def items(self) -> list[EvalItem]:
        items = list(self.inner.items())
        units = list(dict.fromkeys(str(i.meta.get("unit", i.id)) for i in items))
        keep = set(random.Random(self.seed).sample(units, min(self.n, len(units))))
        return [i for i in items if str(i.meta.get("unit", i.id)) in keep]

    def metrics(self, items: Sequence[EvalItem], scores: Mapping[str, Any]) -> Any:
        return self.inner.metrics(items, scores)

    def __getattr__(self, name: str) -> Any:  # by_key, questions ...: what comparisons read
        if name in ("samples", "generate", "batch_size"):
            raise AttributeError(name)
        return getattr(self.inner, name)


class FamilyTask:
    """A generation task restricted to some task families (e.g. ``TAP``)."""

    def __init__(self, inner: Any, families: Sequence[str]) -> None:
        self.inner, self.families = inner, tuple(families)
        self.name, self.version, self.template_version = inner.name, inner.version, inner.template_version
        self.batch_size = inner.batch_size

    def samples(self) -> list[GenerationItem]:
        return [s for s in self.inner.samples() if s.group in self.families]

    def generate(self, model: Any, tokenizer: Any, chunk: Sequence[GenerationItem]) -> list[dict[str, Any]]:
        return self.inner.generate(model, tokenizer, chunk)

    def metrics(self, items: Sequence[GenerationItem], records: Mapping[str, Mapping[str, Any]]) -> Any:
        return self.inner.metrics(items, records)


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
            tasks = [t if isinstance(t, GenerationTask) else SampledTask(t, spec["sample"], seed) for t in tasks]
        if spec["families"]:
            tasks = [FamilyTask(t, spec["families"]) if isinstance(t, GenerationTask) else t for t in tasks]
        out[name] = tasks
    return out
