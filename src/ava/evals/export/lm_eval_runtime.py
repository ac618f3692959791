"""What an exported task folder's ``utils.py`` calls while lm-evaluation-harness runs.

Each exported task's YAML records a *spec*: the ava benchmark and task, the options its
factory was given (limit, seed, steering, data, settings) and the dataset hash of the items
ava built at export time. Here:

* :func:`load_docs` rebuilds that task with ava's own factory (reading its data from where the
  export recorded it) and refuses to go on if the items differ from the exported ones (other
  data, another ava version); one document per item: the prompt up to the answer cue
  (``context``), the cue (``cue``, lm-eval's ``gen_prefix``, so ``--apply_chat_template``
  renders the cue as the start of the assistant turn exactly as ava's chat framing does) and
  both spellings of every option letter (``choices``: "A", " A", "B", " B", ...);
* :func:`process_results` turns lm-eval's log-likelihoods of those continuations into ava's
  letter log-probabilities: per letter, the logsumexp of its two spellings, as ava's engine
  combines them;
* :func:`aggregate` hands the scores to the ava task's own ``metrics`` (bootstrap, WD, JS
  similarity, macro-F1, ...) and returns one headline number: nothing is re-implemented.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any

from ava.contracts.scoring import ScoredItem
from ava.evals.task import EvalItem, Task, TaskOptions, TaskResult
from ava.models.encoding import spellings

SPEC_KEY = "ava"
"""The ``dataset_kwargs`` key of an exported task's YAML that holds its spec."""


class ExportMismatch(ValueError):
    """An exported task that ava can no longer build identically; the message says to re-export."""


def task_options(spec: Mapping[str, Any]) -> TaskOptions:
    return TaskOptions(limit=spec["limit"], steer=spec["steer"], seed=spec["seed"], data=spec["data"],
                       settings=dict(spec["settings"]))


def build(spec: Mapping[str, Any]) -> Task:
    """The ava task a spec names, built by its benchmark's factory (cached per spec)."""
    return _build(json.dumps(spec, sort_keys=True))


@lru_cache(maxsize=32)
def _build(spec_json: str) -> Task:
    from ava.evals import registry

    spec = json.loads(spec_json)
    tasks = registry.get(spec["benchmark"]).factory()(task_options(spec))
    found = [t for t in tasks if t.name == spec["task"]]
    if not found:
        raise ExportMismatch(f"ava task {spec['task']!r} is no longer built by benchmark {spec['benchmark']!r}; "
                             "re-run `ava export lm-eval`")
    return found[0]


def documents(task: Task, spec_json: str) -> list[dict[str, Any]]:
    """One lm-eval document per item of ``task``, in the task's order."""
    docs = []
    for item in task.items():
        *body, cue = item.request.segments
        if not body or not "".join(body):
            raise ValueError(f"{task.name}/{item.id}: a prompt that is only its answer cue cannot be exported "
                             "(lm-eval's chat rendering needs a user turn)")
        docs.append({"id": item.id, "context": "".join(body), "cue": cue,
                     "choices": [s for letter in item.request.options for s in spellings(letter)],
                     "ava_spec": spec_json})
    return docs


def load_docs(**kwargs: Any) -> Any:
    """lm-eval's ``custom_dataset``: a ``DatasetDict`` with the task's documents as ``test``.

    lm-eval passes its metadata (model arguments, version, ...) and the YAML's
    ``dataset_kwargs``; only the ``ava`` spec is read.
    """
    from datasets import Dataset, DatasetDict

    from ava.evals.rundir import dataset_hash

    spec = kwargs[SPEC_KEY]
    task = build(spec)
    items = list(task.items())
    if task.version != spec["task_version"] or dataset_hash(items) != spec["dataset_hash"]:
        raise ExportMismatch(
            f"{spec['task']}: ava (version {_ava_version()}) now builds task version {task.version} with dataset "
            f"hash {dataset_hash(items)}, but the export recorded {spec['task_version']} / {spec['dataset_hash']} "
            f"(ava {spec['ava_version']}): the data or ava changed since; re-run `ava export lm-eval`")
    spec_json = json.dumps(spec, sort_keys=True)
    return DatasetDict({"test": Dataset.from_list(documents(task, spec_json))})


def letter_logprobs(loglikelihoods: Sequence[float]) -> tuple[float, ...]:
    """Per letter, logsumexp of its two spellings' log-likelihoods (the choices come in pairs)."""
    if len(loglikelihoods) % 2:
        raise ValueError(f"expected two spellings per letter, got {len(loglikelihoods)} log-likelihoods")
    import numpy as np

    pairs = np.asarray(loglikelihoods, dtype=np.float64).reshape(-1, 2)
    return tuple(float(v) for v in np.logaddexp(pairs[:, 0], pairs[:, 1]))


def process_results(doc: Mapping[str, Any], results: Sequence[Any]) -> dict[str, dict[str, Any]]:
    """lm-eval's per-document hook: the letter log-probabilities, under every metric of the task.

    ``results`` holds one ``(loglikelihood, is_greedy)`` per choice; each metric's aggregation
    receives the same per-document record and computes the task's metrics over all of them.
    """
    record = {"spec": doc["ava_spec"], "id": doc["id"],
              "logprobs": list(letter_logprobs([float(r[0]) for r in results]))}
    return {metric: record for metric in json.loads(doc["ava_spec"])["metrics"]}


def aggregate(records: Sequence[Mapping[str, Any]], metric: str) -> float:
    """One headline number of the ava task over the documents lm-eval scored (NaN if undefined)."""
    specs = {r["spec"] for r in records}
    if len(specs) != 1:
        raise ValueError(f"records of {len(specs)} different exported tasks handed to one aggregation")
    scored = tuple((r["id"], tuple(float(v) for v in r["logprobs"])) for r in records)
    value = _result(specs.pop(), scored).headline.get(metric)
    return math.nan if value is None else float(value)


@lru_cache(maxsize=8)
def _result(spec_json: str, scored: tuple[tuple[str, tuple[float, ...]], ...]) -> TaskResult:
    """The task's metrics over the scored items (once per task and set of scores: every metric reads it)."""
    task = build(json.loads(spec_json))
    scores = {item_id: ScoredItem(item_id, logprobs) for item_id, logprobs in scored}
    items: list[EvalItem] = [item for item in task.items() if item.id in scores]
    missing = len(scores) - len(items)
    if missing:
        raise ExportMismatch(f"{task.name}: {missing} scored document(s) are not items of the task ava builds; "
                             "re-run `ava export lm-eval`")
    return task.metrics(task.score(items, scores))


def _ava_version() -> str:
    from ava import __version__

    return __version__
