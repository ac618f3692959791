"""Run benchmark tasks with a scorer into a run directory: score (or generate), cache, measure, write.

One loop for both kinds of task: the items not yet in the run's cache are done chunk by chunk
(:func:`ava.runs.run_in_chunks`: appended and flushed per chunk, so an interruption loses at
most one chunk), then the task scores every item (one item score each, written beside the
items) and its metrics reduce those scores, and the outputs are written. The
run directory is opened with :func:`ava.runs.start_run`: preflight, one writer, bound to the
model, ``run.json`` written first as running and last as complete.
"""

from __future__ import annotations

import math
import platform
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from ava.contracts.results import (
    SCHEMA_VERSION,
    CachedScore,
    Diagnostics,
    ItemScore,
    Results,
    RunDirectory,
    RunInfo,
    TaskInfo,
)
from ava.contracts.scoring import ScoredItem
from ava.evals import rundir
from ava.evals.task import EvalItem, GenerationItem, GenerationTask, Task, TaskResult, TextTask
from ava.io import write_json
from ava.models.backends.http import ServerError
from ava.models.backends.partial import keep_finished
from ava.models.loading import ModelError
from ava.models.scorer import Scorer
from ava.runs import (
    Binding,
    ChunkPolicy,
    JsonlLog,
    Output,
    Run,
    RunStatus,
    now,
    run_in_chunks,
    start_run,
    unfinished_chunks,
)

LOW_LETTER_MASS = 0.25
"""Mean letter mass below which a model is warned to be not answering the questions."""

CHUNKS = ChunkPolicy(first=256, most=256)
"""Prompts scored (and appended to the cache) per step, fixed by position in a task's items (chunk
k is items [256k, 256(k+1))): which prompts share a batch moves a model's scores in their last bits,
so an interrupted run resumes whole chunks and equals an uninterrupted one bit for bit (a chunk size
that grew with the time a step took made even two uninterrupted runs differ)."""

EXACT_COMPANY = ("transformers",)
"""Backends whose numbers depend on their batch company (redone whole chunks on resume); a server
batches as it likes, so every answer it gave is kept (:mod:`ava.models.backends.partial`)."""

GenerationModel = Callable[[], tuple[Any, Any]]
"""Loads (model, tokenizer) for generation tasks, on first need only."""


@dataclass
class _Done:
    """A task's items, their scores, its result, and what the run did for them."""

    items: Sequence[EvalItem] | Sequence[GenerationItem]
    item_scores: Sequence[ItemScore]
    result: TaskResult
    n_new: int
    seconds: float
    metrics_s: float
    scores: dict[str, ScoredItem] | None = None  # letter tasks
    records: dict[str, Any] | None = None  # generation tasks
    diagnostics: Diagnostics | None = None


def run_tasks(
    tasks: Sequence[Task | GenerationTask | TextTask],
    scorer: Scorer,
    out_dir: Path,
    *,
    seed: int = 0,
    config: Mapping[str, Any] | None = None,
    progress: bool = True,
    restart: bool = False,
    generation_model: GenerationModel | None = None,
) -> dict[str, Any]:
    """Do every task's items (cached), compute metrics, write the run directory, return the results.

    ``config`` is recorded in the results (``model``, ``adapter`` and ``limit`` keys name the
    scorer and the selection there; anything else is free-form, e.g. the command line). A rerun
    resumes from the cache; another model's directory is refused (``restart`` starts over).
    """
    out_dir = Path(out_dir)
    config = dict(config or {})
    names = [t.name for t in tasks]
    if len(set(names)) != len(names):
        raise ValueError(f"task names must be unique, got {names}")
    for task in tasks:  # before anything is opened or scored: a method this backend cannot do
        if isinstance(task, TextTask):
            task.check_backend(scorer.backend)
    model = str(config.get("model", scorer.identity))
    info = {"model": model, "adapter": config.get("adapter"), "backend": scorer.backend, "tasks": names}
    output, run_dir = Output(out_dir, folder=True), RunDirectory(out_dir)
    with start_run(output, "eval", Binding(model=scorer.identity), info=info, restart=restart,
                   owned=RunDirectory.OWNED) as record:
        _keep_threads(record, scorer)
        run_dir.results.unlink(missing_ok=True)  # never leave an old result beside new work
        scores_log, generations_log = rundir.open_caches(run_dir)
        for log in (scores_log, generations_log):
            if log.unreadable:
                _warn(f"{log.path}: ignored {log.unreadable} unreadable line(s) (an interrupted write); "
                      "those items are redone")
        started_at, t0 = now(), time.perf_counter()
        results_tasks: dict[str, dict[str, Any]] = {}
        for task in tasks:
            if isinstance(task, TextTask):
                done = _generate_task(task, scorer.identity, generations_log, _with_scorer(task, scorer), progress)
            elif isinstance(task, GenerationTask):
                done = _generate_task(task, scorer.identity, generations_log,
                                      _with_model(task, scorer.identity, generation_model), progress)
            else:
                done = _score_task(task, scorer, scores_log, progress, generations_log)
            results_tasks[task.name] = _task_entry(run_dir, task, done)
        run = _run_info(scorer, model, config, seed, started_at, t0, results_tasks)
        results = Results(schema_version=SCHEMA_VERSION, run=run, tasks=results_tasks).to_dict()
        write_json(run_dir.results, rundir.clean(results))
    return results


def _keep_threads(run: Run, scorer: Scorer) -> None:
    """Give a model loaded in this process one CPU thread count for the run directory's whole life
    (the one its first run chose, from the free cores): how many threads split each operator moves
    scores in their last bits, and a resumed run equals an uninterrupted one bit for bit."""
    if scorer.backend not in EXACT_COMPANY or getattr(scorer, "loaded", True) or not hasattr(scorer, "config"):
        return
    from ava.models.engine import EngineConfig
    from ava.models.threads import free_threads

    threads = (run.previous.info.get("threads") if run.previous is not None else None) or free_threads()
    scorer.config = replace(scorer.config or EngineConfig(), threads=threads)
    run.update_info({"threads": threads})
    run.set_status(RunStatus.RUNNING)  # noted at once: a SIGKILL must not lose it


def _score_task(task: Task, scorer: Scorer, log: JsonlLog, progress: bool, text_log: JsonlLog | None = None) -> _Done:
    """Scores for every item of ``task``: cached ones read back, the rest scored chunk by chunk."""
    items = list(task.items())
    _check_ids(task.name, items)
    keys = {item.id: rundir.cache_key(scorer.identity, task.name, task.version, item) for item in items}
    # a task may need some items' scores before the rest is worth scoring (calibration's fitting set):
    # those are scored, as their own chunks, and checked first
    first = set(task.score_first(items)) if hasattr(task, "score_first") else set()
    phases = [[i for i in items if i.id in first], [i for i in items if i.id not in first]] if first else [items]

    def unfinished(part: Sequence[EvalItem]) -> list[EvalItem]:
        if scorer.backend in EXACT_COMPANY:
            return unfinished_chunks(part, lambda item: keys[item.id], log, CHUNKS.first)
        return [item for item in part if keys[item.id] not in log.rows]

    def rows_of(part: Sequence[EvalItem], scored: Sequence[ScoredItem]) -> list[dict[str, Any]]:
        rows = []
        for item, s in zip(part, scored, strict=True):
            if len(s.logprobs) != len(item.request.options):
                raise ValueError(f"{task.name}/{item.id}: scorer returned {len(s.logprobs)} scores "
                                 f"for {len(item.request.options)} options")
            row = asdict(CachedScore(keys[item.id], task.name, item.id, list(s.logprobs)))
            if hasattr(s, "covered_mass"):  # a top-k reading: what the server's reply covered (models.backends)
                row.update(covered_mass=s.covered_mass, letters_missing=s.letters_missing)
            rows.append(row)
        return rows

    def work(part: Sequence[EvalItem]) -> list[dict[str, Any]]:
        try:
            return rows_of(part, scorer.score([item.request for item in part]))
        except ServerError as exc:  # a server died mid-chunk: keep the items it finished
            by_request = {item.request.id: item for item in part}
            keep_finished(log, rows_of([by_request[s.id] for s in exc.scored], exc.scored))
            raise

    def read(part: Sequence[EvalItem]) -> dict[str, ScoredItem]:
        return {item.id: ScoredItem(item.id, tuple(float(v) for v in log.rows[keys[item.id]]["logprobs"]))
                for item in part}

    started, n_todo = time.perf_counter(), 0
    for k, part in enumerate(phases):
        todo = unfinished(part)
        n_todo += len(todo)
        run_in_chunks(todo, work, log, policy=CHUNKS, desc=_desc(task.name, len(part), len(todo)), unit="prompt",
                      progress=progress)
        if first and k == 0:
            task.check_first(part, read(part))  # type: ignore[attr-defined]
    seconds = time.perf_counter() - started
    scores = read(items)
    diag = diagnostics(scores)
    if diag.low_letter_mass:
        _warn(f"{task.name}: the model puts only {diag.letter_mass_mean:.1%} of its probability on the option "
              f"letters on average (min {diag.letter_mass_min:.1%}); its distributions are mostly not answers: "
              "try the other framing (--framing chat or plain), or a larger or instruction-tuned model")
    if hasattr(task, "probe_items") and text_log is not None:  # its time is not the scoring's (prompts_per_s)
        _probe(task, scorer, text_log, progress)
    t_metrics = time.perf_counter()
    item_scores = task.score(items, scores)
    result = task.metrics(item_scores)
    return _Done(items, item_scores, result, n_todo, seconds, time.perf_counter() - t_metrics, scores=scores,
                 diagnostics=diag)


def _probe(task: Any, scorer: Scorer, log: JsonlLog, progress: bool) -> None:
    """A letter task's text probe (:mod:`ava.evals.tasks.text_probe`): a few questions answered in
    text through the scorer, cached beside the generations; a backend that writes no text skips it."""
    if scorer.backend == "uniform" or not callable(getattr(scorer, "generate", None)):
        task.attach_probe(None, f"the {scorer.backend} backend writes no text")
        return
    try:
        done = _generate_task(_ProbeTask(task), scorer.identity, log,
                              lambda: (lambda p: task.generate_probe(scorer, p)), progress, reduce=False)
    except (ModelError, NotImplementedError) as exc:  # a diagnostic never fails the run it describes
        _warn(f"{task.name}: the text probe was not generated ({exc}); the result records why")
        task.attach_probe(None, f"generation failed: {exc}")
        return
    task.attach_probe(done.records)


@dataclass
class _ProbeTask:
    """A letter task's probe seen as a generation task (its own cache keys: ``probe:`` ids)."""

    task: Any

    def __post_init__(self) -> None:
        self.name, self.version, self.batch_size = f"{self.task.name}/probe", self.task.version, 8

    def items(self) -> list[GenerationItem]:
        return self.task.probe_items()


Generate = Callable[[Sequence[GenerationItem]], list[dict[str, Any]]]


def _with_model(task: GenerationTask, identity: str,
                generation_model: GenerationModel | None) -> Callable[[], Generate]:
    """A generation task's chunks, answered by the (model, tokenizer) loaded on first need."""
    def make() -> Generate:
        if generation_model is None:
            raise ValueError(f"{task.name} generates text: it needs a language model, not {identity!r}")
        model, tokenizer = generation_model()
        return lambda part: task.generate(model, tokenizer, part)
    return make


def _with_scorer(task: TextTask, scorer: Scorer) -> Callable[[], Generate]:
    """A text task's chunks, answered through the scorer's own ``generate``."""
    return lambda: (lambda part: task.generate_with(scorer, part))


def _generate_task(task: Any, identity: str, log: JsonlLog, make: Callable[[], Generate],
                   progress: bool, reduce: bool = True) -> _Done:
    """Records for every item of ``task``: cached ones read back, the rest generated chunk by chunk."""
    items = list(task.items())
    _check_ids(task.name, items)
    keys = {item.id: rundir.cache_key(identity, task.name, task.version, item) for item in items}
    todo = unfinished_chunks(items, lambda item: keys[item.id], log, task.batch_size, boundary=lambda item: item.group)
    started = time.perf_counter()
    if todo:
        generate = make()

        def work(part: Sequence[GenerationItem]) -> list[dict[str, Any]]:
            records = generate(part)
            return [{"key": keys[i.id], "task": task.name, "id": i.id, "record": r}
                    for i, r in zip(part, records, strict=True)]

        run_in_chunks(todo, work, log, policy=ChunkPolicy(task.batch_size, task.batch_size),
                      boundary=lambda item: item.group, desc=_desc(task.name, len(items), len(todo)), unit="item",
                      progress=progress)
    seconds = time.perf_counter() - started
    records = {item.id: log.rows[keys[item.id]]["record"] for item in items}
    if not reduce:
        return _Done(items, [], TaskResult({}, 0, ""), len(todo), seconds, 0.0, records=records)
    t_metrics = time.perf_counter()
    item_scores = task.score(items, records)
    result = task.metrics(item_scores)
    return _Done(items, item_scores, result, len(todo), seconds, time.perf_counter() - t_metrics, records=records)


def _task_entry(run_dir: RunDirectory, task: Task | GenerationTask | TextTask, done: _Done) -> dict[str, Any]:
    """Write a task's item, item score, table and plot files; return its ``results.json`` entry."""
    items_path = run_dir.items(task.name)
    if done.scores is not None:
        rundir.write_items(items_path, task.name, done.items, done.scores)  # type: ignore[arg-type]
    else:
        rundir.write_generated(items_path, [done.records[i.id] for i in done.items])  # type: ignore[index]
    rundir.write_scores(run_dir.scores(task.name), done.item_scores)
    entry = rundir.write_task_outputs(run_dir, task.name, done.result)
    entry["task_info"] = asdict(TaskInfo(
        name=task.name,
        version=task.version,
        dataset_hash=rundir.dataset_hash(done.items),
        template_version=task.template_version,
        reducer=task.reducer,
        n_items=len(done.items),
        n_scored=done.n_new,
        n_cached=len(done.items) - done.n_new,
        scoring_s=round(done.seconds, 3),
        metrics_s=round(done.metrics_s, 3),
        prompts_per_s=round(done.n_new / done.seconds, 2) if done.n_new and done.seconds > 0 else None,
    ))
    entry["diagnostics"] = asdict(done.diagnostics) if done.diagnostics is not None else None
    return entry


def _run_info(scorer: Scorer, model: str, config: Mapping[str, Any], seed: int, started_at: str, t0: float,
              results_tasks: Mapping[str, Mapping[str, Any]]) -> RunInfo:
    from ava import __version__

    return RunInfo(
        model=model,
        adapter=config.get("adapter"),
        identity=scorer.identity,
        backend=scorer.backend,
        seed=seed,
        limit=config.get("limit"),
        config={k: v for k, v in config.items() if k not in ("model", "adapter", "limit")},
        started_at=started_at,
        finished_at=now(),
        wall_s=round(time.perf_counter() - t0, 3),
        scoring_s=round(sum(t["task_info"]["scoring_s"] for t in results_tasks.values()), 3),
        ava_version=__version__,
        python=platform.python_version(),
        platform=platform.platform(),
    )


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


def _check_ids(name: str, items: Sequence[EvalItem | GenerationItem]) -> None:
    ids = [item.id for item in items]
    if len(set(ids)) != len(ids):
        raise ValueError(f"task {name}: item ids are not unique")


def _desc(name: str, n_items: int, n_todo: int) -> str:
    return f"{name} ({n_items - n_todo} cached)" if n_todo < n_items else name


def _warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr)
