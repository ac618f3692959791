"""Representativeness as total variation per group, for the model and the uniform guess, and in
Meister et al.'s own form (mean TV over their six groups): hand-computed values."""

from __future__ import annotations

import numpy as np
import pytest

from ava.evals.runner import run_tasks
from ava.evals.tasks.opinion_task import MEISTER_GROUPS, OpinionTask
from ava.metrics import opinion as om
from test_opinionqa import fixtures


def test_tv_many_is_tv_per_row_renormalised_and_nan_for_a_missing_group():
    out = om.tv_many([0.5, 0.5], np.array([[1.0, 0.0], [0.25, 0.75], [np.nan, np.nan], [2.0, 2.0]]))
    assert out[:2] == pytest.approx([0.5, 0.25]) and np.isnan(out[2]) and out[3] == 0.0
    assert om.tv_many([1, 2, 1], np.array([[0.6, 0.3, 0.1]]))[0] == pytest.approx(om.tv([1, 2, 1], [0.6, 0.3, 0.1]))


def test_uniform_tv_per_group_and_meister_form_by_hand(tmp_path):
    """Fixtures: 3 options, the uniform guess vs Male [.6 .3 .1] (and reversed on the second
    question): TV = ½(.2667 + .0333 + .2333) = .26667; Female .06667, Democrat .16667,
    Republican .36667. Meister form over the four of their groups present: mean .216667."""
    from ava.models import load_scorer

    qs = fixtures()
    res = run_tasks([OpinionTask("opinionqa", qs, n_resamples=5)], load_scorer("uniform"), tmp_path,
                    progress=False)["tasks"]["opinionqa"]
    tv = res["details"]["tv"]
    assert tv["by_group"]["SEX:Male"]["uniform"] == pytest.approx(1 - 0.266667, abs=1e-6)
    assert tv["by_group"]["POLPARTY:Democrat"]["uniform"] == pytest.approx(1 - 0.166667, abs=1e-6)
    assert tv["by_group"]["SEX:Male"]["model"] == tv["by_group"]["SEX:Male"]["uniform"]  # the uniform model
    six = tv["meister_groups"]
    assert six["groups"] == [g for g in MEISTER_GROUPS if not g.startswith("RACE")] and six["pairs"] == 8
    assert six["uniform_mean_tv"] == pytest.approx(0.216667, abs=1e-6) == six["model_mean_tv"]
    # with "Refused" as one more answer (the groups refused 0%): uniform over 4 letters vs Male
    # [.6 .3 .1 0]: ½(.35 + .05 + .15 + .25) = .4; Female .25, Democrat .3, Republican .45: mean .35
    assert six["uniform_mean_tv_with_refusal"] == pytest.approx(0.35, abs=1e-6)


def test_model_tv_with_refusal_counts_its_refusal_mass(tmp_path):
    """A model that gives Male's answers exactly and refuses 10%, on a question where Male refused
    0%: TV with refusal = ½(.1 × (.6 + .3 + .1) + .1) = .1; without it 0."""
    from ava.contracts.scoring import ScoredItem

    q = fixtures()[0]
    task = OpinionTask("opinionqa", [q, fixtures()[1]], n_resamples=5)
    item = task.items()[0]
    male = [0.6 * 0.9, 0.3 * 0.9, 0.1 * 0.9, 0.1]
    (score,) = task.score([item], {item.id: ScoredItem(item.id, tuple(np.log(male)))})
    assert score.values["tv"]["SEX:Male"] == pytest.approx(0.0, abs=1e-12)
    assert score.values["tv_with_refusal"]["SEX:Male"] == pytest.approx(0.1)
    assert score.values["tv_with_refusal"]["RACE:Black"] is None  # no such group in the fixtures


def test_item_scores_written_before_per_group_tv_say_so():
    from ava.evals.tasks.opinion_task import _tv_section

    class Old:
        values = {"wd": {}}

    assert _tv_section([Old()])["available"] is False


def test_uniform_guess_on_real_opinionqa_in_meisters_form(shared_data, tmp_path):
    """All 1,494 real questions: the uniform guess's mean TV over Meister et al.'s six groups is
    near their published 0.363 only when "Refused" counts as an answer, as in their code (0.358 on
    the 96 of their 100 questions ava scores; 0.380 on all), and far below it otherwise (0.252)."""
    from ava.evals.task import TaskOptions
    from ava.evals.tasks.opinionqa import make_tasks
    from ava.models import load_scorer

    (task,) = make_tasks(TaskOptions(settings={"n_resamples": "20"}))
    res = run_tasks([task], load_scorer("uniform"), tmp_path, progress=False)["tasks"]["opinionqa"]
    six = res["details"]["tv"]["meister_groups"]
    assert six["groups"] == list(MEISTER_GROUPS) and six["pairs"] > 8000
    assert six["model_mean_tv_with_refusal"] == six["uniform_mean_tv_with_refusal"] == pytest.approx(0.363, abs=0.03)
    assert six["uniform_mean_tv"] == pytest.approx(0.252, abs=0.005)
    assert res["headline"]["uniform_representativeness_tv"] == res["headline"]["representativeness_tv"]
