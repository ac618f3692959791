"""Suites: the paper's headline row for a model and the uniform baseline, skipping what is missing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ava.contracts.scoring import ScoreRequest
from ava.evals import suites
from conftest import shared_path

FIXTURES = Path(__file__).parent / "fixtures" / "culturebank"


def test_headline_row_maps_and_scales_the_columns():
    results = {
        "opinionqa-xl": {"headline": {"representativeness": 0.8361}},
        "opinionqa-xl-steer": {"headline": {"steerability": 0.7909, "steering_gain": 0.01}},
        "globalopinionqa": {"headline": {"avg_sim": 83.6, "skew": 2.2}},
        "culturenli": {"headline": {"US": 39.2, "US_auroc": 55.0, "IN": 39.5, "IN_auroc": 51.0}},
    }
    by_bench = {"opinionqa-xl": ["opinionqa-xl", "opinionqa-xl-steer"], "globalopinionqa": ["globalopinionqa"],
                "culturenli": ["culturenli"]}
    row = suites.headline_row(results, by_bench, {})
    assert row["OQA-XL Rep"] == pytest.approx(83.61) and row["OQA-XL Steer"] == pytest.approx(79.09)
    assert row["GOQA Sim"] == 83.6 and row["GOQA Skew"] == 2.2
    assert row["CNLI US"] == 39.2 and row["CNLI IN"] == 39.5
    assert row["OQA Rep"] is None and row["CB Reddit"] is None
    assert "GOQA Sim (CB-compat)" not in suites.table_columns({"m": row})
    text = suites.format_table({"m": row})
    assert text.splitlines()[0].split()[:3] == ["model", "OQA-XL", "Rep"]
    assert "83.61" in text and "–" in text


def test_compat_columns_appear_only_when_asked_for_and_labelled():
    results = {"globalopinionqa": {"headline": {"avg_sim": 70.0, "skew": 9.0, "avg_sim_cbcompat": 85.0,
                                                "skew_cbcompat": 4.0}}}
    row = suites.headline_row(results, {"globalopinionqa": ["globalopinionqa"]}, {})
    assert row["GOQA Sim"] == 70.0 and row["GOQA Sim (CB-compat)"] == 85.0
    assert suites.table_columns({"m": row})[-2:] == ["GOQA Sim (CB-compat)", "GOQA Skew (CB-compat)"]


def test_join_segments_breaks_only_after_newlines():
    from ava.evals.prompts.culture import join_segments

    assert join_segments(["Human: ", "Q?\n", "A ("]) == ("Human: Q?\n", "A (")
    assert join_segments(["a\n", "b\n", "c"]) == ("a\n", "b\n", "c")


@pytest.fixture
def culture_only(monkeypatch):
    """The quick suite without the survey benchmarks (slow to load), plus one that is not registered."""
    quick = {k: v for k, v in suites.SUITES["quick"].items() if not k.startswith("opinionqa")}
    monkeypatch.setitem(suites.SUITES, "quick", {"not-a-benchmark": suites.Entry(), **quick})


def test_missing_culturebank_is_skipped_with_instructions(tmp_path, culture_only):
    root = shared_path()
    tasks, skipped = suites.build_suite_tasks("quick", settings={"data_root": str(root),
                                                                  "culturebank_dir": str(tmp_path)})
    assert skipped["culturebank"].startswith(f"data not found at {tmp_path}; download")
    assert "SALT-NLP/CultureBank" in skipped["culturebank"] and "culturebank_dir" in skipped["culturebank"]
    assert len({i.meta["unit"] for i in tasks["globalopinionqa"][0].items()}) == 20
    assert len(tasks["culturenli"][0].items()) == 2 * 25
    assert skipped["not-a-benchmark"].startswith("not available in this installation (unknown benchmark")


def test_unusable_survey_data_is_skipped_with_its_own_reason(monkeypatch):
    """Was: "could not be built: SurveyDataError: ..."; the build's reason is the skip reason, as it is."""
    from ava.surveys import SurveyDataError

    def incomplete(name, path=None):
        raise SurveyDataError("/data/surveys: incomplete survey build, not usable (its run record says failed)")

    monkeypatch.setattr("ava.surveys.load_benchmark", incomplete)
    monkeypatch.setitem(suites.SUITES, "quick", {"opinionqa": suites.SUITES["quick"]["opinionqa"]})
    _, skipped = suites.build_suite_tasks("quick")
    assert skipped == {"opinionqa": "opinionqa: /data/surveys: incomplete survey build, not usable (its run record "
                                    "says failed)"}

    def raw(name, data):  # a SurveyDataError reaching the suite directly is reported the same way
        raise SurveyDataError("/data/surveys/opinionqa: the benchmark has no questions")

    monkeypatch.setattr("ava.evals.tasks.opinionqa.load_questions", raw)
    assert suites.build_suite_tasks("quick")[1] == {"opinionqa": "/data/surveys/opinionqa: the benchmark has no "
                                                                 "questions"}


def test_unknown_suite():
    with pytest.raises(ValueError, match="unknown suite 'nope' \\(known: paper, quick\\)"):
        suites.build_suite_tasks("nope")


class HalfYesScorer:
    """A deterministic non-uniform scorer: the first option gets 60%, the rest share 40%."""

    identity = "test:first-option-60"
    backend = "test"

    def score(self, requests: list[ScoreRequest], progress: bool = False):
        import math

        from ava.contracts.scoring import ScoredItem

        out = []
        for r in requests:
            rest = [math.log(0.4 / (len(r.options) - 1))] * (len(r.options) - 1)
            out.append(ScoredItem(r.id, (math.log(0.6), *rest)))
        return out


def test_run_suite_prints_and_saves_the_model_and_uniform_rows(tmp_path, capsys, culture_only):
    settings = {"data_root": str(shared_path()), "culturebank_dir": str(FIXTURES)}
    summary = suites.run_suite("quick", HalfYesScorer(), tmp_path / "run", seed=0, limit=3, settings=settings,
                               progress=False)
    rows = summary["rows"]
    assert list(rows) == ["test:first-option-60", "uniform"]
    uniform, model = rows["uniform"], rows["test:first-option-60"]
    assert uniform["CB Reddit"] == uniform["CB TikTok"] == 50.0  # indifferent: half a point each
    assert model["CB TikTok"] is not None and model["CNLI US"] is not None and model["GOQA Sim"] is not None
    assert model["GOQA Sim"] != uniform["GOQA Sim"]
    out = capsys.readouterr().out
    assert "quick suite" in out and "uniform" in out and "GOQA Sim" in out
    assert "not-a-benchmark skipped: not available" in out
    assert model["OQA Rep"] is None and "–" in out
    saved = json.loads((tmp_path / "run" / "paper_table.json").read_text())
    assert saved["rows"] == json.loads(json.dumps(rows))
    assert (tmp_path / "run" / "paper_table.csv").read_text().splitlines()[0].startswith("model,OQA-XL Rep")
    assert (tmp_path / "run" / "results.json").exists()
    assert (tmp_path / "run" / "baseline-uniform" / "results.json").exists()
    assert list((tmp_path / "run" / "plots").glob("globalopinionqa__similarity_by_country.png"))


@pytest.mark.slow
def test_quick_suite_with_every_benchmark_never_crashes(tmp_path, capsys):
    """The survey benchmarks too: built and scored, or skipped with their reason."""
    settings = {"data_root": str(shared_path()), "culturebank_dir": str(FIXTURES)}
    summary = suites.run_suite("quick", HalfYesScorer(), tmp_path / "run", limit=2, settings=settings,
                               progress=False)
    out = capsys.readouterr().out
    for bench in ("opinionqa", "opinionqa-xl"):
        assert bench in summary["benchmarks"] or f"{suites._pretty(bench)} skipped: " in out
    if "opinionqa" in summary["benchmarks"]:
        assert 0 < summary["rows"]["uniform"]["OQA Rep"] <= 100
