"""The run directory of ``ava eval``: cache keys, the caches, and the files a run writes.

The layout (:class:`~ava.contracts.results.RunDirectory`) and the results schema are in
:mod:`ava.contracts.results`; the record (``run.json``) in :mod:`ava.contracts.runs`. Why a
score cache keyed by (scorer identity, task, task version, item id, request hash): an
interrupted or extended run (a larger ``--limit``, ``--steer`` added) never scores a prompt
twice, and a changed model or template never reuses a stale score, so a run directory is bound
to the model alone.
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from ava.contracts.results import ItemRecord, ItemScore, RunDirectory
from ava.contracts.scoring import ScoredItem, ScoreRequest
from ava.evals.task import EvalItem, GenerationItem, TaskResult
from ava.io import atomic_write
from ava.runs import JsonlLog


def request_hash(request: ScoreRequest) -> str:
    """Hash of exactly what the model sees (segments and letters), not the item id."""
    payload = json.dumps([list(request.segments), list(request.options)], ensure_ascii=False)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def prompt_hash(item: EvalItem | GenerationItem) -> str:
    """What the model sees for an item: its request, or a generation prompt and its settings group."""
    if isinstance(item, EvalItem):
        return request_hash(item.request)
    return hashlib.sha256(json.dumps([item.prompt, item.group], ensure_ascii=False).encode()).hexdigest()[:16]


def cache_key(identity: str, task_name: str, task_version: str, item: EvalItem | GenerationItem) -> str:
    payload = json.dumps([identity, task_name, task_version, item.id, prompt_hash(item)])
    return hashlib.sha256(payload.encode()).hexdigest()[:24]


def dataset_hash(items: Sequence[EvalItem | GenerationItem]) -> str:
    """Changes whenever the data, the prompts or the selection (``--limit``) change."""
    digest = hashlib.sha256()
    for item in items:
        digest.update(item.id.encode())
        digest.update(prompt_hash(item).encode())
        digest.update(json.dumps(dict(item.meta), sort_keys=True, default=str).encode())
    return digest.hexdigest()[:16]


def open_caches(run: RunDirectory) -> tuple[JsonlLog, JsonlLog]:
    """The score cache and the generation cache, read back (torn or unreadable lines are redone)."""
    scores = JsonlLog(run.score_cache, key="key")
    generations = JsonlLog(run.generation_cache, key="key")
    for log in (scores, generations):
        log.load()
    return scores, generations


def json_float(x: float) -> float | None:
    return x if math.isfinite(x) else None


def write_items(path: Path, task_name: str, items: Sequence[EvalItem], scores: Mapping[str, ScoredItem]) -> None:
    with atomic_write(path) as fh:
        for item in items:
            s = scores[item.id]
            record = ItemRecord(
                task=task_name,
                id=item.id,
                options=list(item.request.options),
                logprobs=[json_float(v) for v in s.logprobs],  # type: ignore[misc]
                probs=list(s.probs),
                letter_mass=s.letter_mass,
                meta=dict(item.meta),
            )
            fh.write(json.dumps(asdict(record), ensure_ascii=False, default=str) + "\n")


def write_scores(path: Path, scores: Sequence[ItemScore]) -> None:
    """A task's item scores, one JSON line each (NaN written as null: strict JSON)."""
    with atomic_write(path) as fh:
        for score in scores:
            fh.write(json.dumps(clean(asdict(score)), ensure_ascii=False) + "\n")


def read_scores(path: Path) -> list[ItemScore]:
    """The item scores a run wrote for a task (:func:`write_scores`)."""
    from ava.io import read_jsonl

    return [ItemScore(r["id"], r["unit"], r["values"]) for r in read_jsonl(path)]


def write_generated(path: Path, records: Sequence[Mapping[str, Any]]) -> None:
    """A generation task's records, one JSON line each, sorted keys (the items file of such a task)."""
    with atomic_write(path) as fh:
        for record in records:
            fh.write(json.dumps(record, ensure_ascii=False, sort_keys=True) + "\n")


def write_table(path: Path, rows: Sequence[Mapping[str, Any]]) -> None:
    """A list of row dicts as CSV; columns in first-seen order."""
    columns: list[str] = []
    for row in rows:
        columns.extend(k for k in row if k not in columns)
    with atomic_write(path) as fh:
        writer = csv.DictWriter(fh, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: row.get(k, "") for k in columns})


def write_task_outputs(run: RunDirectory, task_name: str, result: TaskResult) -> dict[str, Any]:
    """Write a task's tables (CSV) and plots (PNG); return its results entry with their paths."""
    from ava.evals.plots import render_bar_plot

    entry = result.to_dict()
    entry["tables"], entry["plots"] = {}, {}
    for name, rows in result.tables.items():
        rel = run.table(task_name, name)
        write_table(run.root / rel, rows)
        entry["tables"][name] = rel
    for spec in result.plots:
        rel = run.plot(task_name, spec.name)
        render_bar_plot(spec, run.root / rel)
        entry["plots"][spec.name] = rel
    return entry


def clean(obj: Any) -> Any:
    """JSON-safe copy: NaN/inf become null (strict JSON has no NaN), numpy scalars Python numbers."""
    if isinstance(obj, float):
        return json_float(obj)
    if isinstance(obj, Mapping):
        return {str(k): clean(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [clean(v) for v in obj]
    if hasattr(obj, "item") and callable(obj.item):  # numpy scalars
        return clean(obj.item())
    return obj
