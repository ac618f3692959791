"""A paired comparison where one model left some asked questions unscored (a text method's
unreadable replies, never imputed): compared on the questions both answered, with that n;
runs that asked different items are still refused."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ava.contracts.results import RunDirectory
from ava.contracts.scoring import ScoredItem
from ava.evals.rundir import write_scores
from ava.evals.tasks.opinion_items import load_questions
from ava.evals.tasks.opinion_task import OpinionTask
from ava.experiments.compare import ComparisonError, reduce_pair


def _run(tmp_path, name, task, drop=(), asked=None, seed=0):
    """A run directory holding the task's items file and item scores (a seeded random model)."""
    run = RunDirectory(tmp_path / name)
    items = task.items()
    rng = np.random.default_rng(seed)
    outputs = {}
    for item in items:
        p = rng.dirichlet(np.ones(len(item.request.options)))
        outputs[item.id] = ScoredItem(item.id, tuple(float(x) for x in np.log(0.9 * p)))
    scores = [s for s in task.score(items, outputs) if s.id not in drop]
    run.scores(task.name).parent.mkdir(parents=True)
    write_scores(run.scores(task.name), scores)
    run.items(task.name).parent.mkdir(parents=True)
    ids = asked if asked is not None else [i.id for i in items]
    run.items(task.name).write_text("".join(json.dumps({"id": i}) + "\n" for i in ids))
    return run


def test_pairs_on_the_questions_both_models_answered(tmp_path):
    try:
        questions = load_questions("opinionqa", None)
    except Exception as exc:  # noqa: BLE001 - the bundled survey data is part of the package
        pytest.skip(f"bundled OpinionQA not readable: {exc}")
    task = OpinionTask("opinionqa", questions, limit=20, n_resamples=50)
    ids = task.ids[:20]
    base = _run(tmp_path, "base", task, drop={ids[3]})
    tuned = _run(tmp_path, "tuned", task, drop={ids[5], ids[7]}, seed=1)
    b, t = reduce_pair(base, tuned, "opinionqa", "opinion", 50, 0)
    assert b.n_units == t.n_units == 17  # 20 asked, 3 unanswered by one model or the other
    # the base's reduction equals a reduction of its own scores on those 17 questions alone
    only = _run(tmp_path, "base17", task, drop={ids[3], ids[5], ids[7]})
    b17, _ = reduce_pair(only, only, "opinionqa", "opinion", 50, 0)
    for k, v in b17.metrics.items():
        np.testing.assert_array_equal(b.metrics[k], v)


def test_other_items_asked_are_still_refused(tmp_path):
    try:
        questions = load_questions("opinionqa", None)
    except Exception as exc:  # noqa: BLE001
        pytest.skip(f"bundled OpinionQA not readable: {exc}")
    task = OpinionTask("opinionqa", questions, limit=20, n_resamples=50)
    ids = [i.id for i in task.items()]
    base = _run(tmp_path, "base", task)
    tuned = _run(tmp_path, "tuned", task, drop={task.ids[0]}, asked=ids[1:])
    with pytest.raises(ComparisonError, match="scored different items"):
        reduce_pair(base, tuned, "opinionqa", "opinion", 50, 0)
