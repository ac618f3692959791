"""Score benchmark tasks with a scorer, cache every score, and write a run directory.

The layout and the results schema are documented in :mod:`ava.contracts.results`.
Why a per-run score cache keyed by (scorer identity, task, task version, item id, request
hash): an interrupted or extended run (a larger ``--limit``, ``--steer`` added) never scores
a prompt twice, and a changed model or template never reuses a stale score.
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
import platform
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ava.benchmarks.base import EvalItem, Task
from ava.contracts.results import (
    SCHEMA_VERSION,
    CachedScore,
    Diagnostics,
    ItemRecord,
    Results,
    RunInfo,
    RunManifest,
    TaskInfo,
)
from ava.contracts.scoring import ScoredItem, ScoreRequest
from ava.io import atomic_write, write_json

LOW_LETTER_MASS = 0.25
"""Mean letter mass below which a model is warned to be not answering the questions."""

CHUNK = 4096
"""Most prompts scored (and appended to the cache) per step: the most an interruption can lose."""

FIRST_CHUNK = 32
CHUNK_SECONDS = 5.0
"""Steps start at FIRST_CHUNK prompts and double while a step takes under CHUNK_SECONDS: a slow
model (CPU) still shows progress and saves every few seconds, a fast one gets large batches."""


class RunDirMismatch(ValueError):
    """The run directory belongs to another model (or is not a run directory)."""


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def request_hash(request: ScoreRequest) -> str:
    """Hash of exactly what the model sees (segments and letters), not the item id."""
    payload = json.dumps([list(request.segments), list(request.options)], ensure_ascii=False)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def cache_key(identity: str, task: Task, item: EvalItem) -> str:
    payload = json.dumps([identity, task.name, task.version, item.id, request_hash(item.request)])
    return hashlib.sha256(payload.encode()).hexdigest()[:24]


def dataset_hash(items: Sequence[EvalItem]) -> str:
    """Changes whenever the data, the prompts or the selection (``--limit``) change."""
    digest = hashlib.sha256()
    for item in items:
        digest.update(item.id.encode())
        digest.update(request_hash(item.request).encode())
        digest.update(json.dumps(dict(item.meta), sort_keys=True, default=str).encode())
    return digest.hexdigest()[:16]


def limit_items(items: Sequence[EvalItem], limit: int | None) -> list[EvalItem]:
    """The items of the first ``limit`` units, in order.

    A unit is ``item.meta["unit"]`` when set (e.g. a survey question, so a question keeps all
    its personas and groups), else the item itself.
    """
    if limit is None:
        return list(items)
    if limit < 1:
        raise ValueError(f"--limit must be at least 1 (got {limit})")
    seen: set[Any] = set()
    kept: list[EvalItem] = []
    for item in items:
        unit = item.meta.get("unit", item.id)
        if unit not in seen:
            if len(seen) >= limit:
                continue
            seen.add(unit)
        kept.append(item)
    return kept


# -- the run directory ----------------------------------------------------------------------
def read_manifest(out_dir: Path) -> dict[str, Any] | None:
    path = out_dir / "run.json"
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise RunDirMismatch(
            f"{path}:{exc.lineno}: not a readable run manifest ({exc.msg}); use another --out"
        ) from None


def check_run_dir(out_dir: Path, identity: str) -> dict[str, Any] | None:
    """Refuse a directory that holds another model's run, or something that is not a run."""
    manifest = read_manifest(out_dir)
    if manifest is None:
        if (out_dir / "results.json").exists() or (out_dir / "cache" / "scores.jsonl").exists():
            raise RunDirMismatch(
                f"{out_dir} holds results but no run.json, so whose they are is unknown; choose another --out"
            )
        return None
    if manifest.get("identity") != identity:
        raise RunDirMismatch(
            f"{out_dir} holds a run of model {manifest.get('model')!r} (identity {manifest.get('identity')!r}), "
            f"not {identity!r}; pass a new --out to evaluate this model"
        )
    return manifest


def write_manifest(out_dir: Path, scorer: Any, model: str, adapter: str | None, status: str, tasks: list[str]) -> None:
    manifest = RunManifest(
        schema_version=SCHEMA_VERSION,
        model=model,
        adapter=adapter,
        identity=scorer.identity,
        backend=getattr(scorer, "backend", "unknown"),
        status=status,
        tasks=tasks,
        updated_at=now(),
    )
    write_json(out_dir / "run.json", manifest.to_dict())


def load_cache(path: Path) -> tuple[dict[str, tuple[float, ...]], int]:
    """Cached scores by key, and the number of unreadable lines (a torn last line after a kill)."""
    cache: dict[str, tuple[float, ...]] = {}
    bad = 0
    if not path.exists():
        return cache, bad
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            try:
                row = json.loads(line)
                cache[row["key"]] = tuple(float(v) for v in row["logprobs"])
            except (json.JSONDecodeError, KeyError, TypeError, ValueError):
                bad += 1
    return cache, bad


def _json_float(x: float) -> float | None:
    return x if math.isfinite(x) else None


# -- scoring --------------------------------------------------------------------------------
def score_items(
    task: Task,
    items: Sequence[EvalItem],
    scorer: Any,
    cache: dict[str, tuple[float, ...]],
    cache_path: Path,
    progress: bool,
) -> tuple[dict[str, ScoredItem], int, float]:
    """Scores for ``items``: cached ones read back, the rest scored chunk by chunk and cached."""
    keys = {item.id: cache_key(scorer.identity, task, item) for item in items}
    todo = [item for item in items if keys[item.id] not in cache]
    started = time.perf_counter()
    if todo:
        from tqdm.auto import tqdm

        cache_path.parent.mkdir(parents=True, exist_ok=True)
        desc = f"{task.name} ({len(items) - len(todo)} cached)" if len(todo) < len(items) else task.name
        with (
            open(cache_path, "a", encoding="utf-8") as fh,
            tqdm(total=len(todo), unit="prompt", desc=desc, disable=not progress, dynamic_ncols=True) as bar,
        ):
            start, chunk = 0, min(CHUNK, FIRST_CHUNK)
            while start < len(todo):
                part = todo[start : start + chunk]
                start += len(part)
                t_chunk = time.perf_counter()
                scored = scorer.score([item.request for item in part])
                if time.perf_counter() - t_chunk < CHUNK_SECONDS:
                    chunk = min(CHUNK, chunk * 2)
                for item, s in zip(part, scored, strict=True):
                    if len(s.logprobs) != len(item.request.options):
                        raise ValueError(f"{task.name}/{item.id}: scorer returned {len(s.logprobs)} scores "
                                         f"for {len(item.request.options)} options")
                    cache[keys[item.id]] = s.logprobs
                    row = CachedScore(keys[item.id], task.name, item.id, list(s.logprobs))
                    fh.write(json.dumps(asdict(row)) + "\n")
                fh.flush()
                bar.update(len(part))
    elapsed = time.perf_counter() - started
    scores = {item.id: ScoredItem(item.id, cache[keys[item.id]]) for item in items}
    return scores, len(todo), elapsed


def diagnostics(scores: Mapping[str, ScoredItem]) -> Diagnostics:
    import numpy as np

    mass = np.array([s.letter_mass for s in scores.values()]) if scores else np.array([math.nan])
    mean = float(np.mean(mass))
    return Diagnostics(
        letter_mass_mean=mean,
        letter_mass_min=float(np.min(mass)),
        letter_mass_p10=float(np.percentile(mass, 10)),
        threshold=LOW_LETTER_MASS,
        low_letter_mass=bool(mean < LOW_LETTER_MASS),
    )


# -- outputs --------------------------------------------------------------------------------
def safe_name(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)


def write_items(path: Path, task: Task, items: Sequence[EvalItem], scores: Mapping[str, ScoredItem]) -> None:
    with atomic_write(path) as fh:
        for item in items:
            s = scores[item.id]
            record = ItemRecord(
                task=task.name,
                id=item.id,
                options=list(item.request.options),
                logprobs=[_json_float(v) for v in s.logprobs],  # type: ignore[misc]
                probs=list(s.probs),
                letter_mass=s.letter_mass,
                meta=dict(item.meta),
            )
            fh.write(json.dumps(asdict(record), ensure_ascii=False, default=str) + "\n")


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


def write_outputs(out_dir: Path, task: Task, metrics: dict[str, Any]) -> dict[str, Any]:
    """Write a task's tables (CSV) and plots (PNG); return the metrics with their paths instead."""
    from ava.reports.plots import render_bar_plot

    stem = safe_name(task.name)
    metrics = dict(metrics)
    tables = metrics.pop("tables", {}) or {}
    plots = metrics.pop("plots", []) or []
    metrics["tables"] = {}
    for name, rows in tables.items():
        rel = f"tables/{stem}__{safe_name(name)}.csv"
        write_table(out_dir / rel, rows)
        metrics["tables"][name] = rel
    metrics["plots"] = {}
    for spec in plots:
        rel = f"plots/{stem}__{safe_name(spec['name'])}.png"
        render_bar_plot(spec, out_dir / rel)
        metrics["plots"][spec["name"]] = rel
    return metrics


def _warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr)


def run_tasks(
    tasks: Sequence[Task],
    scorer: Any,
    out_dir: Path,
    *,
    limit: int | None = None,
    seed: int = 0,
    config: Mapping[str, Any] | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Score every task's items (cached), compute metrics, write the run directory, return the results.

    ``config`` is recorded in the results (``model`` and ``adapter`` keys name the scorer
    there; anything else is free-form, e.g. the command line). An interruption leaves
    ``run.json`` at ``interrupted`` with every finished chunk cached: re-running the same
    command resumes.
    """
    from ava import __version__

    out_dir = Path(out_dir)
    config = dict(config or {})
    model = str(config.get("model", scorer.identity))
    adapter = config.get("adapter")
    names = [t.name for t in tasks]
    if len(set(names)) != len(names):
        raise ValueError(f"task names must be unique, got {names}")
    check_run_dir(out_dir, scorer.identity)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "results.json").unlink(missing_ok=True)  # never leave an old result beside new work
    write_manifest(out_dir, scorer, model, adapter, "running", names)
    cache_path = out_dir / "cache" / "scores.jsonl"
    cache, torn = load_cache(cache_path)
    if torn:
        _warn(f"{cache_path}: ignored {torn} unreadable line(s) (an interrupted write); those items are re-scored")

    started_at, t0 = now(), time.perf_counter()
    results_tasks: dict[str, dict[str, Any]] = {}
    scoring_total = 0.0
    try:
        for task in tasks:
            items = limit_items(task.items(), limit)
            ids = [item.id for item in items]
            if len(set(ids)) != len(ids):
                raise ValueError(f"task {task.name}: item ids are not unique")
            scores, n_scored, scoring_s = score_items(task, items, scorer, cache, cache_path, progress)
            scoring_total += scoring_s
            diag = diagnostics(scores)
            if diag.low_letter_mass:
                _warn(
                    f"{task.name}: the model puts only {diag.letter_mass_mean:.1%} of its probability on the "
                    f"option letters on average (min {diag.letter_mass_min:.1%}); its distributions are mostly "
                    "not answers: try --chat, or a larger or instruction-tuned model"
                )
            t_metrics = time.perf_counter()
            metrics = task.metrics(items, scores)
            metrics_s = time.perf_counter() - t_metrics
            write_items(out_dir / "items" / f"{safe_name(task.name)}.jsonl", task, items, scores)
            metrics = write_outputs(out_dir, task, metrics)
            metrics["task_info"] = asdict(
                TaskInfo(
                    name=task.name,
                    version=task.version,
                    dataset_hash=dataset_hash(items),
                    template_version=getattr(task, "template_version", None),
                    n_items=len(items),
                    n_scored=n_scored,
                    n_cached=len(items) - n_scored,
                    scoring_s=round(scoring_s, 3),
                    metrics_s=round(metrics_s, 3),
                    prompts_per_s=round(n_scored / scoring_s, 2) if n_scored and scoring_s > 0 else None,
                )
            )
            metrics["diagnostics"] = asdict(diag)
            results_tasks[task.name] = metrics
    except BaseException:
        write_manifest(out_dir, scorer, model, adapter, "interrupted", names)
        _warn(
            f"run interrupted; every finished chunk is cached in {cache_path}: re-run the same command to resume"
        )
        raise

    run = RunInfo(
        model=model,
        adapter=adapter,
        identity=scorer.identity,
        backend=getattr(scorer, "backend", "unknown"),
        seed=seed,
        limit=limit,
        config={k: v for k, v in config.items() if k not in ("model", "adapter")},
        started_at=started_at,
        finished_at=now(),
        wall_s=round(time.perf_counter() - t0, 3),
        scoring_s=round(scoring_total, 3),
        ava_version=__version__,
        python=platform.python_version(),
        platform=platform.platform(),
    )
    results = Results(schema_version=SCHEMA_VERSION, run=run, tasks=results_tasks).to_dict()
    write_json(out_dir / "results.json", _clean(results))
    write_manifest(out_dir, scorer, model, adapter, "complete", names)
    return results


def _clean(obj: Any) -> Any:
    """JSON-safe copy: NaN/inf become null (strict JSON has no NaN)."""
    if isinstance(obj, float):
        return _json_float(obj)
    if isinstance(obj, Mapping):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_clean(v) for v in obj]
    if hasattr(obj, "item") and callable(obj.item):  # numpy scalars
        return _clean(obj.item())
    return obj
