"""``ava eval``: bad input gives one clear line; a full run on fixture questions; resuming."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from ava.cli import app
from test_opinionqa import fixtures


def invoke(*args: str):
    return CliRunner().invoke(app, ["eval", *args])


def test_unknown_benchmark_suggests_the_closest():
    result = invoke("--model", "uniform", "--benchmark", "opinonqa")
    assert result.exit_code == 2
    assert "unknown benchmark 'opinonqa'" in result.output and "did you mean opinionqa" in result.output


def test_needs_exactly_one_of_benchmark_or_suite():
    assert "exactly one of" in invoke("--model", "uniform").output
    assert "exactly one of" in invoke("--model", "uniform", "--benchmark", "opinionqa", "--suite", "quick").output


def test_bad_setting_is_reported():
    result = invoke("--model", "uniform", "--benchmark", "opinionqa", "--set", "n_resamples")
    assert result.exit_code == 2 and "expected key=value" in result.output


@pytest.fixture
def fixture_questions(monkeypatch):
    """The fixture questions, with a distribution for each of OpinionQA's 22 persona groups."""
    from dataclasses import replace

    from ava.contracts.surveys import GroupDistribution
    from ava.evals.prompts.personas import opinionqa_personas

    groups = list(dict.fromkeys((p.attribute, p.group) for p in opinionqa_personas()))
    qs = []
    for q in fixtures():
        have = {(g.attribute, g.group) for g in q.groups}
        k = len(q.options)
        extra = [
            GroupDistribution(a, g, tuple((i + j + 1) / (k * (k + 1) / 2 + k * j) for i in range(k)), 0.0, 10, 10.0)
            for j, (a, g) in enumerate(groups)
            if (a, g) not in have
        ]
        qs.append(replace(q, groups=(*q.groups, *extra)) if q.overall.distribution else q)
    monkeypatch.setattr("ava.evals.tasks.opinionqa.load_questions", lambda name, data: qs)
    return qs


def test_eval_end_to_end_then_another_model_is_refused(fixture_questions, tmp_path):
    out = tmp_path / "run"
    result = invoke("--model", "uniform", "--benchmark", "opinionqa", "--steer", "--out", str(out),
                    "--set", "n_resamples=20", "--no-progress")
    assert result.exit_code == 0, result.output
    assert "representativeness" in result.output and "steerability" in result.output
    res = json.loads((out / "results.json").read_text())
    assert set(res["tasks"]) == {"opinionqa", "opinionqa-steer"}
    assert res["run"]["config"]["settings"] == {"n_resamples": "20"}
    assert res["tasks"]["opinionqa-steer"]["counts"]["groups"] == 22
    # the same command again: everything cached
    again = invoke("--model", "uniform", "--benchmark", "opinionqa", "--steer", "--out", str(out),
                   "--set", "n_resamples=20", "--no-progress")
    assert again.exit_code == 0
    info = json.loads((out / "results.json").read_text())["tasks"]["opinionqa-steer"]["task_info"]
    assert info["n_scored"] == 0 and info["n_cached"] == info["n_items"]
    other = invoke("--model", "tiny", "--benchmark", "opinionqa", "--out", str(out), "--no-progress")
    assert other.exit_code == 2
    assert "model: uniform -> builtin:tiny" in other.output and "--restart" in other.output
    # the loading options are part of the identity the run is bound to, checked before loading
    bf16 = invoke("--model", "tiny", "--dtype", "bf16", "--benchmark", "opinionqa", "--out", str(out), "--no-progress")
    assert bf16.exit_code == 2 and ":bf16" in bf16.output and "model: uniform -> builtin:tiny" in bf16.output


def test_model_options_are_checked_planned_and_in_the_identity(tmp_path):
    from ava.evals.cli import plan_eval
    from ava.models.lazy import LazyScorer
    from ava.models.options import ModelOptions

    bad = invoke("--model", "tiny", "--benchmark", "opinionqa", "--dtype", "fp8", "--out", str(tmp_path / "r"))
    assert bad.exit_code == 2 and "unknown --dtype 'fp8'" in bad.output and not (tmp_path / "r").exists()
    loading = ModelOptions("tiny", dtype="bf16")
    plan = plan_eval("tiny", None, "opinionqa", None, False, 1, tmp_path, 0, "auto", None, None, loading=loading)
    assert {k: plan.config[k] for k in ("dtype", "device_map", "revision")} == {
        "dtype": "bf16", "device_map": None, "revision": None}
    assert LazyScorer(plan.model_options()).identity == loading.identity() and loading.identity().endswith(":bf16")


def test_missing_survey_data_is_a_clear_error(tmp_path, monkeypatch):
    from ava.evals.data import DataNotFound

    def missing(name, data):
        raise DataNotFound(f"{name}: no survey data at {data} (pass --data PATH)")

    monkeypatch.setattr("ava.evals.tasks.opinionqa.load_questions", missing)
    result = invoke("--model", "uniform", "--benchmark", "opinionqa", "--data", str(tmp_path / "nowhere"))
    assert result.exit_code == 2 and "no survey data" in result.output
