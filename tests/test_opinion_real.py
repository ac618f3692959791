"""OpinionQA on the real bundled survey data: the uniform model, the human baselines, smollm2."""

from __future__ import annotations

import json

import pytest


def load(name: str):
    surveys = pytest.importorskip("ava.surveys")
    if not hasattr(surveys, "load_benchmark"):
        pytest.skip("ava.surveys.load_benchmark is not available in this checkout")
    try:
        return surveys.load_benchmark(name)
    except FileNotFoundError as exc:
        pytest.skip(f"{name} survey data not available: {exc}")


@pytest.fixture(scope="module")
def opinionqa_questions():
    return load("opinionqa")


@pytest.mark.slow
def test_uniform_and_human_baselines_on_opinionqa(opinionqa_questions, tmp_path):
    from ava.evals.runner import run_tasks
    from ava.evals.task import TaskOptions
    from ava.evals.tasks.opinionqa import make_tasks
    from ava.models import load_scorer

    (task,) = make_tasks(TaskOptions(settings={"n_resamples": "200"}), questions=opinionqa_questions)
    res = run_tasks([task], load_scorer("uniform"), tmp_path, progress=False)
    m = res["tasks"]["opinionqa"]
    h = m["headline"]
    excluded = m["counts"]["excluded"]
    assert excluded["rows"] == len(opinionqa_questions) and excluded["kept"] == m["counts"]["questions"]
    assert sum(excluded["dropped"].values()) == len(opinionqa_questions) - m["counts"]["questions"]
    assert m["counts"]["questions"] > 1400 and m["counts"]["groups"] == 60 and m["counts"]["topics"] == 23
    assert m["counts"]["waves"] == 15
    assert h["representativeness"] == h["uniform_representativeness"]
    # humans are closer to the population than a uniform guess, the worst group less so
    assert 0.5 < h["uniform_representativeness"] < h["humans_worst"] < h["humans_average"] < 1
    for name in ("representativeness", "humans_average", "humans_worst"):
        ci = m["intervals"][name]
        assert ci["low"] < ci["value"] < ci["high"] and ci["high"] - ci["low"] < 0.05
        assert ci["method"] == "percentile" and ci["reason"] is None
    # diagnostics: the uniform guess as TV, its entropy 1; the humans' below it
    assert h["representativeness_tv"] == h["uniform_representativeness_tv"] and 0.5 < h["representativeness_tv"] < 1
    assert h["entropy_model"] == pytest.approx(1.0) and 0.5 < h["entropy_humans"] < 1
    for name, ci in m["intervals"].items():  # every interval written holds its point or says why
        assert (ci["low"] <= ci["value"] <= ci["high"] and ci["low"] < ci["high"]) or ci["reason"], (name, ci)
    # the uniform model refuses with 1/(options shown) of its mass
    assert 0.1 < h["refusal_model"] < 0.5 and 0 < h["refusal_humans"] < 0.1
    groups = (tmp_path / m["tables"]["groups"]).read_text().splitlines()
    assert len(groups) == 1 + 1 + 60


@pytest.mark.slow
def test_smollm2_limited_steered_run_end_to_end(opinionqa_questions, smollm2_scorer, tmp_path):
    from ava.evals.runner import run_tasks
    from ava.evals.task import TaskOptions
    from ava.evals.tasks.opinionqa import make_tasks

    options = TaskOptions(limit=1, steer=True, settings={"n_resamples": "100", "formats": "portray"})
    tasks = make_tasks(options, questions=opinionqa_questions)
    res = run_tasks(tasks, smollm2_scorer, tmp_path, config={"model": "smollm2", "limit": 1}, progress=False)
    default, steer = res["tasks"]["opinionqa"], res["tasks"]["opinionqa-steer"]
    assert default["counts"]["questions"] == 1 and default["task_info"]["n_items"] == 1
    assert steer["counts"]["groups"] == 22 and steer["task_info"]["n_items"] == 1 + 22
    assert 0 < default["headline"]["letter_mass"] <= 1
    assert 0 < default["headline"]["representativeness"] <= 1
    assert 0 < steer["headline"]["steerability"] <= 1
    on_disk = json.loads((tmp_path / "results.json").read_text())
    assert on_disk["run"]["identity"].startswith("builtin:smollm2")
    assert (tmp_path / steer["plots"]["steered_vs_default"]).exists()
    # one question: nothing was resampled, so no interval is written or shown (never [x, x])
    from ava.evals.tables import headline_rows

    for task in (default, steer):
        for name, ci in task["intervals"].items():
            assert ci["reason"].startswith("not resampled" if ci["value"] == ci["value"] else "no point"), (name, ci)
    assert "not resampled" in {r["ci95"] for r in headline_rows(on_disk)} <= {"not resampled", ""}
