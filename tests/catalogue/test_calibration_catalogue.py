"""expression=calibrated: settings refused before a model loads, and fits that cannot be made."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from catalogue import assert_error, forbid_model_loading, invoke


def many(n: int):
    from test_opinionqa import fixtures

    q = fixtures()[0]
    return [replace(q, key=f"Q{i:03d}_W26") for i in range(n)]


@pytest.mark.parametrize(("n", "settings", "needles"), [
    (2, ["expression=calibrated"], ("--set calibration_questions=100: only 2 questions, and 10 must be left to score",
                                    "use at most 0")),
    (30, ["expression=calibrated", "calibration_questions=5"], ("calibration_questions=5: too few to fit a temperature",
                                                                "use at least 10")),
    (30, ["expression=calibrated", "calibration_questions=ten"],
     ("calibration_questions='ten': expected a whole number",)),
    (30, ["calibration_questions=10"], ("--set calibration_questions: only with expression=calibrated",)),
    (30, ["expression=calibrated", "calibration_questions=10", "debias=pride"],
     ("with debias=pride", "use one of them")),
])
def test_bad_calibration_setting_is_refused_before_a_model_loads(tmp_path, monkeypatch, n, settings, needles):
    forbid_model_loading(monkeypatch)
    monkeypatch.setattr("ava.evals.tasks.opinionqa.load_questions", lambda name, data: many(n))
    out = tmp_path / "o"
    args = [a for s in settings for a in ("--set", s)]
    assert_error(invoke("eval", "--model", "smollm2", "--benchmark", "opinionqa", *args, "--out", str(out),
                        "--no-progress"), *needles)
    assert not (out / "results.json").exists()


def test_a_model_whose_letters_do_not_change_with_t_is_refused_and_the_run_is_not_complete(tmp_path, monkeypatch):
    """The uniform model: every temperature gives the same distribution; one line, no results."""
    monkeypatch.setattr("ava.evals.tasks.opinionqa.load_questions", lambda name, data: many(30))
    out = tmp_path / "o"
    assert_error(invoke("eval", "--model", "uniform", "--benchmark", "opinionqa", "--set", "expression=calibrated",
                        "--set", "calibration_questions=10", "--out", str(out), "--no-progress"),
                 "calibration: on 10 fitting questions the letters' distribution does not change with the temperature")
    assert not (out / "results.json").exists()
    assert json.loads((out / "run.json").read_text())["status"] != "complete"
    # refused before the other 20 questions were scored: only the fitting set's prompts are cached
    assert len((out / "cache" / "scores.jsonl").read_text(encoding="utf-8").splitlines()) == 10
