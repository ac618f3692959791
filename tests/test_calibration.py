"""expression=calibrated: one temperature fitted on a seeded, unscored set of questions.

Hand-computed cases where the best temperature is known, the fitting set's record, the errors
before scoring, and the real bundled OpinionQA with the ``tiny`` model (default run unchanged).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import replace

import numpy as np
import pytest

from ava.contracts.results import RunDirectory
from ava.contracts.scoring import ScoredItem, ScoreRequest
from ava.contracts.surveys import SurveyQuestion
from ava.evals import rundir
from ava.evals.runner import run_tasks
from ava.evals.task import TaskOptions
from ava.evals.tasks import calibration as cal
from ava.evals.tasks.opinionqa import make_tasks
from test_opinionqa import fixtures, gd


def many(n: int, overall: Sequence[float] = (0.5, 0.3, 0.2)) -> list[SurveyQuestion]:
    """``n`` copies of the fixtures' first question under distinct keys, Overall ``overall``."""
    q = fixtures()[0]
    groups = (gd("Overall", "Overall", overall, 0.1), *q.groups[1:])
    return [replace(q, key=f"Q{i:03d}_W26", groups=groups) for i in range(n)]


class PowerScorer:
    """A model whose substantive letters are ``Overall ** power`` of the options shown at them
    (renormalised; no position preference): sharper than the humans for power > 1, so
    ``softmax(log p / power)`` is exactly Overall. The refusal letter gets ``refusal`` of the mass."""

    identity = "power-fake"
    backend = "test"

    def __init__(self, questions: Sequence[SurveyQuestion] | Mapping[str, SurveyQuestion], power: float,
                 refusal: float = 0.1) -> None:
        self.by_key = dict(questions) if isinstance(questions, Mapping) else {q.key: q for q in questions}
        self.power, self.refusal = power, refusal

    def score(self, requests: Sequence[ScoreRequest], progress: bool = False) -> list[ScoredItem]:
        out = []
        for r in requests:
            q = self.by_key[r.id.split("#")[0]]
            lines = {line[:3]: line[3:] for line in r.prompt.splitlines()}  # "A. text" -> text, per letter
            shown = [lines[f"{letter}. "] for letter in r.options[:len(q.options)]]
            p = np.array([q.overall.distribution[q.options.index(s)] for s in shown]) ** self.power
            share = self.refusal if q.refusal_options else 0.0
            p = (1 - share) * p / p.sum()
            rest = [share / len(q.refusal_options)] * len(q.refusal_options) if share else []
            out.append(ScoredItem(r.id, tuple(math.log(x) if x > 0 else -1e4 for x in [*p, *rest])))
        return out


def tasks(questions, seed=0, **settings):
    return make_tasks(TaskOptions(seed=seed, settings={k: str(v) for k, v in settings.items()}), questions=questions)


def run(tmp_path, questions, scorer, **settings):
    (task,) = tasks(questions, **settings)
    return task, run_tasks([task], scorer, tmp_path, progress=False)["tasks"]["opinionqa"]


# -- hand-computed -------------------------------------------------------------------------------
def test_temper_is_softmax_of_log_p_over_t_and_keeps_refusal_and_letter_mass():
    s = ScoredItem("x", (math.log(0.4), math.log(0.2), math.log(0.2), math.log(0.2)))
    t = cal.temper(s, 3, 0.5)  # p ** 2 over the substantive letters: [.25, .0625, .0625] / .375
    assert np.allclose(t.renormalised(range(3)), [2 / 3, 1 / 6, 1 / 6])
    assert math.isclose(t.letter_mass, s.letter_mass) and t.logprobs[3] == s.logprobs[3]
    assert np.allclose(cal.temper(s, 3, 1.0).logprobs, s.logprobs)


def test_a_model_sharper_than_the_humans_is_fitted_back_to_them(tmp_path):
    """Model = Overall ** 2: the best T is 2, where every scored question's WD to Overall is 0."""
    qs = many(30)
    task, res = run(tmp_path, qs, PowerScorer(qs, 2.0), expression="calibrated", calibration_questions=10)
    c = res["details"]["calibration"]
    assert math.isclose(c["temperature"], 2.0, rel_tol=1e-4) and c["fit_mean_wd"] < 1e-5
    assert c["fit_mean_wd_at_t1"] > 0.05 and c["fitting_questions"] == 10 and c["excluded_from_score"]
    assert res["units"] == 20 and res["counts"]["calibration_fit"] == 10
    scored = {s.unit for s in rundir.read_scores(RunDirectory(tmp_path).scores("opinionqa"))}
    assert len(scored) == 20 and not scored & set(c["fitting_ids"]) and set(c["fitting_ids"]) == set(
        task.calibration.fit_ids)
    assert res["headline"]["representativeness_tv"] == pytest.approx(1.0, abs=1e-4)


def test_a_two_option_fit_solves_the_temperature_by_hand(tmp_path):
    """Model [0.8, 0.2], humans [0.6, 0.4]: 4 ** (1/T) = 1.5, T = ln 4 / ln 1.5 = 3.41902."""
    two = replace(fixtures()[0], options=("Yes", "No"), ordinals=(1, 2))
    qs = [replace(two, key=f"T{i:02d}_W26", groups=(gd("Overall", "Overall", [0.6, 0.4]),
                                                    gd("SEX", "Male", [0.5, 0.5]))) for i in range(25)]

    class Fixed(PowerScorer):
        def score(self, requests, progress=False):
            return [ScoredItem(r.id, (math.log(0.72), math.log(0.18), math.log(0.1))) for r in requests]

    _, res = run(tmp_path, qs, Fixed(qs, 1.0), expression="calibrated", calibration_questions=12)
    assert res["details"]["calibration"]["temperature"] == pytest.approx(math.log(4) / math.log(1.5), rel=1e-4)
    assert res["units"] == 13


# -- the fitting set -----------------------------------------------------------------------------
def test_fitting_set_is_seeded_recorded_and_versioned():
    qs = many(40)
    (a,), (b,), (c,) = tasks(qs, expression="calibrated", calibration_questions=10), \
        tasks(qs, expression="calibrated", calibration_questions=10), \
        tasks(qs, seed=1, expression="calibrated", calibration_questions=10)
    assert a.calibration.fit_ids == b.calibration.fit_ids != c.calibration.fit_ids
    assert len(set(a.calibration.fit_ids)) == 10
    assert a.version == "1+opinion-v1+calibrated-n10-seed0" and c.version.endswith("-seed1")
    section = a.calibration.section()
    assert section["fitting_ids_sha256"] and section["temperature"] is None  # fitted when scored


def test_bad_calibration_settings_are_refused_before_scoring():
    qs = many(25)
    with pytest.raises(ValueError, match=r"calibration_questions=20: only 25 questions, and 10 must be left to "
                                         r"score; use at most 15"):
        tasks(qs, expression="calibrated", calibration_questions=20)
    with pytest.raises(ValueError, match="calibration_questions=5: too few to fit"):
        tasks(qs, expression="calibrated", calibration_questions=5)
    with pytest.raises(ValueError, match="expected a whole number"):
        tasks(qs, expression="calibrated", calibration_questions="many")
    with pytest.raises(ValueError, match="only with expression=calibrated"):
        tasks(qs, calibration_questions=10)
    with pytest.raises(ValueError, match="use one of them"):
        tasks(qs, expression="calibrated", calibration_questions=10, debias="pride")


def test_a_model_with_no_signal_hits_the_bound_and_says_so(tmp_path):
    """Letters opposite to the humans: flattening always helps, the best T is the upper bound."""
    qs = many(25)
    with pytest.raises(ValueError, match=r"best temperature is at the bound T=100"):
        run(tmp_path, qs, PowerScorer(qs, -1.0), expression="calibrated", calibration_questions=10)


def test_calibration_composes_with_orders(tmp_path):
    """T applies per prompt before the orders are mapped back: an order-free model still fits T=2."""
    qs = many(20)
    _, res = run(tmp_path, qs, PowerScorer(qs, 2.0), expression="calibrated", calibration_questions=10, orders=2)
    assert res["details"]["calibration"]["temperature"] == pytest.approx(2.0, rel=1e-4)


# -- real data -----------------------------------------------------------------------------------
def test_default_opinionqa_is_unchanged_by_calibration(shared_data):
    """No expression setting: the published protocol's version and items (pinned before option
    orders and calibration existed, commit 1b9a8c0) and no calibration anywhere."""
    (task,) = make_tasks(TaskOptions())
    items = task.items()
    assert (task.version, len(items), rundir.dataset_hash(items)) == ("1+opinion-v1", 1494, "8fdd94989b4d9878")
    assert task.calibration is None
    (logprobs,) = make_tasks(TaskOptions(settings={"expression": "logprobs"}))
    assert logprobs.version == task.version and logprobs.calibration is None


def test_the_tiny_model_on_real_opinionqa_is_refused_at_the_bound(shared_data, tiny_scorer, tmp_path):
    """The 1M-parameter test model's letters are noise: flattening them to uniform fits best, and
    calibration says so in one line rather than report the uniform guess as the model's number."""
    (calib,) = make_tasks(TaskOptions(task_limits={"opinionqa": 120},
                                      settings={"expression": "calibrated", "calibration_questions": "40"}))
    with pytest.raises(ValueError, match=r"^calibration: the best temperature is at the bound T=100: 40 fitting "
                                         r"questions are fit best by flattening the letters to uniform"):
        run_tasks([calib], tiny_scorer, tmp_path, progress=False)
    # refused before the rest was scored: the cache holds the 40 fitting questions' prompts only
    scored = (tmp_path / "cache" / "scores.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(scored) == 40 and {json.loads(line)["id"] for line in scored} == set(calib.calibration.fit_ids)


def test_real_opinionqa_questions_recover_a_known_temperature(shared_data, tmp_path):
    """Every real question (their option counts, ordinals, refusal options) with a model sharper
    than Overall by a power of 3: T = 3, and the scored questions' TV to Overall is 0."""
    from ava.evals.tasks.opinion_items import load_questions

    qs = load_questions("opinionqa", None)
    (task,) = make_tasks(TaskOptions(settings={"expression": "calibrated"}), questions=qs)
    res = run_tasks([task], PowerScorer(task.by_key, 3.0), tmp_path, progress=False)["tasks"]["opinionqa"]
    c = res["details"]["calibration"]
    assert c["temperature"] == pytest.approx(3.0, rel=1e-3) and c["fitting_questions"] == 100
    assert res["units"] == 1494 - 100 and res["headline"]["representativeness_tv"] == pytest.approx(1.0, abs=1e-4)
