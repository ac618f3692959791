"""The run directory of ``ava eval``: cache keys, the caches, and the files a run writes.

The layout and the results schema are documented in :mod:`ava.contracts.results`; the record
(``run.json``) in :mod:`ava.contracts.runs`. Why a score cache keyed by (scorer identity, task,
task version, item id, request hash): an interrupted or extended run (a larger ``--limit``,
``--steer`` added) never scores a prompt twice, and a changed model or template never reuses a
stale score, so a run directory is bound to the model alone.
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

from ava.contracts.results import ItemRecord
from ava.contracts.scoring import ScoredItem, ScoreRequest
from ava.evals.task import EvalItem, GenerationItem, TaskResult
from ava.io import atomic_write
from ava.runs import JsonlLog

OWNED = ("cache", "results.json", "items", "tables", "plots", "paper_table.json", "paper_table.csv")
"""What a run writes in its directory (besides ``run.json``): removed by ``--restart``."""


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


def open_caches(out_dir: Path) -> tuple[JsonlLog, JsonlLog]:
    """The score cache and the generation cache, read back (torn or unreadable lines are redone)."""
    scores = JsonlLog(out_dir / "cache" / "scores.jsonl", key="key")
    generations = JsonlLog(out_dir / "cache" / "generations.jsonl", key="key")
    for log in (scores, generations):
        log.load()
    return scores, generations


def safe_name(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)


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


def write_task_outputs(out_dir: Path, task_name: str, result: TaskResult) -> dict[str, Any]:
    """Write a task's tables (CSV) and plots (PNG); return its results entry with their paths."""
    from ava.reports.plots import render_bar_plot

    stem = safe_name(task_name)
    entry = result.to_dict()
    entry["tables"], entry["plots"] = {}, {}
    for name, rows in result.tables.items():
        rel = f"tables/{stem}__{safe_name(name)}.csv"
        write_table(out_dir / rel, rows)
        entry["tables"][name] = rel
    for spec in result.plots:
        rel = f"plots/{stem}__{safe_name(spec.name)}.png"
        render_bar_plot(spec, out_dir / rel)
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
