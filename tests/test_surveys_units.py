"""Survey builder on small synthetic waves: rules, weighting, bad input, determinism."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyreadstat
import pytest

from ava.runs import BindingMismatch, read_run
from ava.surveys import load_benchmark
from ava.surveys.baselines import baselines_summary, wd
from ava.surveys.build import build_surveys
from ava.surveys.curated import _iso_end_date, date_from_folder
from ava.surveys.discovery import discover
from ava.surveys.questions import clean_label
from ava.surveys.rules import demographic_rules, normalise_label
from ava.surveys.weights import choose_weight

SAFE = {1.0: "Very safe", 2.0: "Not safe", 99.0: "Refused"}
DIARY_WEIGHTS = {  # W8.5's naming: no WEIGHT_W8.5; the label names the full-sample weight
    "DIARYWEIGHT": ([2, 1, 1, 1, 1, 1], "DIARYWEIGHT is the full sample weight for all 6 Diary study respondents"),
    "DIARYWEIGHT_APP": ([0, 2, 0, 2, 0, 2], "DIARYWEIGHT_APP is the weight for the n=3 respondents using the app"),
}
QUIET = {"workers": 1, "progress": False, "log": lambda s: None}


def write_wave(path: Path, wave: str, *, weights: bool | dict[str, tuple[list[float], str]] = True,
               demographics: bool = True, sex_labels: dict | None = None) -> pd.DataFrame:
    """Six respondents; answers, weights and groups chosen so the expected numbers are easy by hand.

    ``weights``: True for the wave weight ``WEIGHT_<wave>`` beside a longitudinal one, False for none, or
    {column: (six values, variable label)} for the weight columns of a naming pattern."""
    df = pd.DataFrame({
        "QKEY": [1.0, 2, 3, 4, 5, 6],
        "FORM_" + wave: [1.0, 2, 1, 2, 1, 2],
        "SAFE_" + wave: [1.0, 1, 2, 99, 2, np.nan],
        "AGE_NUM_" + wave: [23.0, 45, 67, 31, 52, 70],
        "SAFE_W1": [1.0, 2, 2, 2, 1, 1],  # merged in from an earlier wave: not this wave's question
    })
    labels = {"FORM_" + wave: {1.0: "FORM 1", 2.0: "FORM 2"}, "SAFE_" + wave: SAFE,
              "AGE_NUM_" + wave: {99.0: "Refused"}, "SAFE_W1": SAFE}
    col_labels = ["QKEY", "Form", "SAFE. How safe is your community?", "AGE. Your age", "SAFE. Earlier wave"]
    if demographics:
        df["F_SEX"] = [1.0, 2, 1, 2, 2, 1]
        df["F_CREGION"] = [1.0, 1, 2, 3, 4, 4]
        labels["F_SEX"] = sex_labels or {1.0: "Male", 2.0: "Female", 99.0: "Refused"}
        labels["F_CREGION"] = {1.0: "Northeast", 2.0: "Midwest", 3.0: "South", 4.0: "West"}
        col_labels += ["Sex", "Region"]
    if weights is True:  # the wave weight, and a longitudinal weight that must not be used
        weights = {"WEIGHT_" + wave: ([1.0, 3, 2, 1, 1, 5], "Wave weight"),
                   f"WEIGHT_W1{wave}": ([9.0] * 6, "Longitudinal weight")}
    for column, (values, label) in (weights or {}).items():
        df[column] = [float(v) for v in values]
        col_labels.append(label)
    path.parent.mkdir(parents=True, exist_ok=True)
    pyreadstat.write_sav(df, str(path), column_labels=col_labels, variable_value_labels=labels)
    return df


def _csv(path: Path, header: list[str], rows: list[list]) -> None:
    import csv

    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(rows)


def write_metadata(base: Path) -> None:
    """OpinionQA's files (W7's SAFE question, the steering set, groups, topics, released counts) and the
    method's question files, in shared/data's layout beside ``base/pew``."""
    import json

    hr = base / "opinionqa" / "human_resp"
    info = ["key", "question", "references", "option_ordinal", "option_mapping"]
    row = ["SAFE_W7", "How safe is your community?", "['Very safe', 'Not safe', 'Refused']", "[1.0, 2.0]",
           "{1.0: 'Very safe', 2.0: 'Not safe', 99.0: 'Refused'}"]
    _csv(hr / "American_Trends_Panel_W7" / "info.csv", info, [row])
    groups: dict[str, list[str]] = {}
    for att, grp in demographic_rules().group_keys()[1:]:
        groups.setdefault(att, []).append(grp)
    _csv(hr / "American_Trends_Panel_W7" / "metadata.csv", ["key", "options"], [[a, str(g)] for a, g in groups.items()])
    _csv(hr / "Pew_American_Trends_Panel_disagreement_500" / "info.csv", info, [row])
    (base / "opinionqa" / "topic_mapping.json").write_text(json.dumps(
        {"How safe is your community? [Very safe/Not safe/Refused]": {"cg": ["Crime/security"], "fg": ["crime"]}}))
    ref = base / "opinionqa" / "reference_counts" / "American_Trends_Panel_W7" / "SEX_data.json"
    ref.parent.mkdir(parents=True)
    # SAFE_W7 x F_SEX by hand: men answered 1, 2, (no answer); women 1, 99, 2.
    ref.write_text(json.dumps({"SAFE_W7": {"MC_options": ["Very safe", "Not safe", "Refused"],
                                           "Male": {"Very safe": 1.0, "Not safe": 1.0},
                                           "Female": {"Very safe": 1.0, "Not safe": 1.0, "Refused": 1.0}}}))
    qd = base / "questions"
    qd.mkdir()
    (qd / "opinionqa-xl.json").write_text(json.dumps({"W9": {"SAFE": {"question": "How safe is it where you live?",
                                                                      "options": ["Very safe", "Not safe"]}}}))
    (qd / "survey-details.json").write_text(json.dumps([{"name": "W7", "Topics": "Crime", "start_date": "Sept. 1",
                                                         "end_date": "Sept. 14, 2014"}]))


@pytest.fixture
def pew_tree(tmp_path: Path) -> Path:
    """Three good waves (W8.5 with diary weights only, as the real one), the clutter of a real download,
    a special study and a diary instance file; OpinionQA's and the method's metadata beside."""
    root = tmp_path / "pew"
    write_wave(root / "W7_Sep14" / "W7_Sep14" / "ATP W7.sav", "W7")
    write_wave(root / "W8.5_Oct14" / "ATP W8.5.sav", "W8.5", weights=DIARY_WEIGHTS)
    write_wave(root / "W9_Nov14" / "W9_Nov14" / "ATP W9.sav", "W9")
    (root / "W7_Sep14" / "__MACOSX" / "W7_Sep14").mkdir(parents=True)
    (root / "W7_Sep14" / "__MACOSX" / "W7_Sep14" / "._ATP W7.sav").write_bytes(b"\x00\x05\x16\x07junk")
    (root / "W9_Nov14" / "W9_Nov14" / "._ATP W9.sav").write_bytes(b"\x00\x05\x16\x07junk")
    write_wave(root / "W10_Mar15" / "Special" / "special study.sav", "W10")
    write_wave(root / "W11.5_Diary" / "ATP W11.5_instance level.sav", "W11.5")
    write_metadata(tmp_path)
    return root


def test_normalise_and_clean_labels():
    assert normalise_label("Associate\u2019s degree") == "associate's degree"
    assert normalise_label("(VOL) Don't know/Refused") == "don't know/refused"
    assert normalise_label("\u201cWhite non-Hispanic\u201d") == "white non-hispanic"
    assert clean_label("SAFECRIME. How safe, if at all?", "SAFECRIME_W26") == "How safe, if at all?"
    assert clean_label("Compared to 50 years ago", "X_W26") == "Compared to 50 years ago"


def test_weight_rule():
    assert choose_weight(["WEIGHT_W26", "WEIGHT_W25W26"], "W26").column == "WEIGHT_W26"
    assert choose_weight(["WEIGHT_FORM_W16"], "W16").column == "WEIGHT_FORM_W16"
    assert choose_weight(["WEIGHT_W53_W54"], "W54").column is None  # longitudinal: other sample
    none = choose_weight(["DIARYWEIGHT_APP"], "W8.5")  # one arm of a diary study: part of the sample
    assert none.column is None and none.rule == "refused" and "DIARYWEIGHT_APP" in none.reason
    # (every naming pattern: tests/test_surveys_weights.py)


def test_dates():
    assert _iso_end_date("Aug. 11", "Sept. 3, 2014") == "2014-09-03"
    assert _iso_end_date("Apr. 11", "17, 2022") == "2022-04-17"
    assert date_from_folder("W54_Sep19") == "2019-09"
    assert date_from_folder("W36_Jun-18") == "2018-06"


def test_group_table_is_opinionqas():
    keys = demographic_rules().group_keys()
    assert keys[0] == ("Overall", "Overall") and len(keys) == 61
    atts = [a for a, _ in keys[1:]]
    assert list(dict.fromkeys(atts)) == ["CREGION", "AGE", "SEX", "EDUCATION", "CITIZEN", "MARITAL", "RELIG",
                                         "RELIGATTEND", "POLPARTY", "INCOME", "POLIDEOLOGY", "RACE"]


def test_discovery(pew_tree: Path):
    waves, skipped = discover(pew_tree)
    assert [w.wave for w in waves] == ["W7", "W8.5", "W9"]
    reasons = {s.path.name: s.reason for s in skipped}
    assert "special study" in reasons["special study.sav"]
    assert "instance-level" in reasons["ATP W11.5_instance level.sav"]
    assert not any("._" in name for name in reasons)  # AppleDouble clutter is not data


def test_build_by_hand(pew_tree: Path, tmp_path: Path):
    out = tmp_path / "out"
    res = build_surveys(pew_tree, out, **QUIET)
    m = res.manifest
    assert m["complete"] is True and res.complete and m["errors"] == []
    assert sorted(p.name for p in out.iterdir()) == [".cache", "README.md", "manifest.json", "opinionqa",
                                                    "opinionqa-xl", "run.json"]
    record = read_run(out)
    assert record.kind == "surveys" and record.complete and record.binding.options == {
        "compact": False, "sav_only": False, "waves": "all"}
    w7 = m["waves"]["W7"]
    assert w7["weight"]["column"] == "WEIGHT_W7"
    assert w7["skipped_columns"]["QKEY"].startswith("identifier")
    assert w7["skipped_columns"]["FORM_W7"].startswith("administrative")
    assert w7["skipped_columns"]["AGE_NUM_W7"].startswith("fewer than 2")
    assert w7["skipped_columns"]["SAFE_W1"].startswith("column from another wave (W1)")
    assert "SEX" not in w7["unmapped_attributes"] and "AGE" in w7["unmapped_attributes"]
    assert m["unweighted_waves"] == [] and not any("unweighted" in w for w in m["warnings"])
    assert (m["waves"]["W8.5"]["weight"]["column"], m["waves"]["W8.5"]["weight"]["rule"]) == ("DIARYWEIGHT", "label")
    assert m["weights_by_rule"] == {"label": 1, "wave": 2}

    qs = {q.key: q for q in load_benchmark("opinionqa-xl", out)}
    assert set(qs) == {"SAFE_W7", "SAFE_W8.5", "SAFE_W9"}
    q = qs["SAFE_W7"]
    assert q.options == ("Very safe", "Not safe") and q.refusal_options == ("Refused",)
    assert q.ordinals == (1.0, 2.0) and q.ordinal_source == "curated" and q.text_source == "opinionqa-info"
    assert q.text == "How safe is your community?" and q.weighted
    assert q.topic == "Crime" and q.date == "2014-09-14"
    # answers 1,1,2,99,2,nan with weights 1,3,2,1,1,5: very safe 4, not safe 3, refused 1
    ov = q.overall
    assert ov.distribution == pytest.approx((4 / 7, 3 / 7))
    assert ov.refusal_rate == pytest.approx(1 / 8)
    assert (ov.n, ov.weighted_n, ov.counts) == (5, pytest.approx(8.0), (2, 2, 1))
    # Female = respondents 2,4,5: answers 1 (w3), 99 (w1), 2 (w1)
    fem = q.group("SEX", "Female")
    assert fem.distribution == pytest.approx((3 / 4, 1 / 4)) and fem.refusal_rate == pytest.approx(1 / 5)
    assert q.group("CREGION", "West").distribution == pytest.approx((0.0, 1.0))  # resp 6 did not answer
    assert q.group("AGE", "18-29").distribution == () and q.group("AGE", "18-29").n == 0
    diary = qs["SAFE_W8.5"]  # answers 1,1,2,99,2,nan with DIARYWEIGHT 2,1,1,1,1,1: 3, 2, refused 1
    assert diary.weighted and "unweighted" not in diary.tags and diary.text_source == "spss-label"
    assert diary.overall.distribution == pytest.approx((3 / 5, 2 / 5))
    assert diary.overall.refusal_rate == pytest.approx(1 / 6)
    assert qs["SAFE_W9"].text == "How safe is it where you live?" and qs["SAFE_W9"].text_source == "opinionqa-xl-json"
    assert qs["SAFE_W9"].date == "2014-11"  # not in survey-details.json: from the folder name W9_Nov14

    (oqa,) = load_benchmark("opinionqa", out)
    assert oqa.key == "SAFE_W7" and {"steer500", "cg:Crime/security", "fg:crime"} <= set(oqa.tags)
    assert oqa.overall == q.overall
    ref = m["opinionqa"]["reference_counts"]
    assert (ref["pairs_matched"], ref["question_attribute_pairs"], ref["cells_matched"], ref["group_cells"]) == (
        1, 1, 2, 2)
    assert m["opinionqa"]["human_baselines"]["n_questions"] == 1


def test_a_wave_declared_unweighted_is_built_unweighted_and_tagged(pew_tree: Path, tmp_path: Path, monkeypatch):
    """weights.yaml's `unweighted` table (empty for the shared waves since W8.5's DIARYWEIGHT is chosen by its
    label): a declared wave without a weight is built, flagged and warned about, not failed."""
    from dataclasses import replace

    import ava.surveys.build as build_module
    from ava.surveys.rules import weight_rules

    write_wave(pew_tree / "W8.5_Oct14" / "ATP W8.5.sav", "W8.5", weights=False)
    declared = replace(weight_rules(), unweighted={"W8.5": "diary study without weights"})
    monkeypatch.setattr(build_module, "weight_rules", lambda: declared)
    m = build_surveys(pew_tree, tmp_path / "out", **QUIET).manifest
    assert m["complete"] and m["unweighted_waves"] == ["W8.5"] and m["waves"]["W8.5"]["weight"]["rule"] == "none"
    assert any(w.startswith("W8.5: built unweighted (diary study without weights: no weight column)")
               for w in m["warnings"])
    unw = {q.key: q for q in load_benchmark("opinionqa-xl", tmp_path / "out")}["SAFE_W8.5"]
    assert not unw.weighted and "unweighted" in unw.tags
    assert unw.overall.distribution == pytest.approx((2 / 4, 2 / 4))


def test_race_falls_back_per_respondent_where_the_combined_column_is_empty(tmp_path: Path):
    """W32's case: respondents with no combined race (and no Hispanic answer) take the race-ethnicity
    column; the others keep the combined-race rule, Hispanic override included."""
    from ava.surveys.demographics import group_index, map_demographics
    from ava.surveys.rules import question_rules

    nan = np.nan
    df = pd.DataFrame({
        "F_RACECMB_RECRUITMENT": [1.0, 2, 5, 1, nan, nan, nan, nan, nan, 9],
        "F_HISP_RECRUITMENT": [2.0, 2, 1, 1, nan, nan, nan, nan, 1, 2],
        "F_RACETHN_RECRUITMENT": [1.0, 2, 3, 3, 1, 2, 3, 4, 9, 9],
    })
    labels = {
        "F_RACECMB_RECRUITMENT": {1.0: "White", 2.0: "Black or African-American", 3.0: "Asian or Asian-American",
                                  4.0: "Mixed Race", 5.0: "Or some other race", 9.0: "Don't know/Refused (VOL.)"},
        "F_HISP_RECRUITMENT": {1.0: "Yes", 2.0: "No", 9.0: "(VOL) Don't know/Refused"},
        "F_RACETHN_RECRUITMENT": {1.0: "White non-Hispanic", 2.0: "Black non-Hispanic", 3.0: "Hispanic", 4.0: "Other",
                                  9.0: "Don't know/Refused (VOL.)"},
    }
    path = tmp_path / "race.sav"
    pyreadstat.write_sav(df, str(path), variable_value_labels=labels)
    _, meta = pyreadstat.read_sav(str(path), metadataonly=True)
    frame, _ = pyreadstat.read_sav(str(path))
    race = map_demographics(meta, demographic_rules(), question_rules().is_non_substantive, "W32")[-1]
    assert race.attribute == "RACE" and race.column == "F_RACECMB_RECRUITMENT"
    assert race.report()["empty_fallback_columns"] == ["F_RACETHN_RECRUITMENT"]
    idx, stats = group_index(race, frame)
    names = [race.groups[i] if i >= 0 else None for i in idx]
    assert names == ["White", "Black", "Hispanic", "White", "White", "Black", "Hispanic", "Other", "Hispanic", None]
    assert stats == {"respondents_from_fallback": {"F_RACETHN_RECRUITMENT": 5}}


def test_outputs_are_byte_identical(pew_tree: Path, tmp_path: Path):
    a, b = tmp_path / "a", tmp_path / "b"
    build_surveys(pew_tree, a, **QUIET)
    build_surveys(pew_tree, b, **{**QUIET, "workers": 2}, restart=True)
    for name in ["manifest.json", "README.md", "opinionqa-xl/questions.parquet", "opinionqa-xl/distributions.parquet",
                 "opinionqa/questions.parquet", "opinionqa/distributions.parquet"]:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    frame = pd.read_parquet(a / "opinionqa-xl" / "distributions.parquet")
    assert len(frame) == 3 * 61


def test_resume_uses_cache(pew_tree: Path, tmp_path: Path):
    out = tmp_path / "out"
    build_surveys(pew_tree, out, **QUIET)
    cached = sorted(p.name for p in (out / ".cache").iterdir())
    assert len(cached) == 3
    first = (out / "opinionqa-xl" / "distributions.parquet").read_bytes()
    build_surveys(pew_tree, out, **QUIET)
    assert (out / "opinionqa-xl" / "distributions.parquet").read_bytes() == first
    assert sorted(p.name for p in (out / ".cache").iterdir()) == cached
    with pytest.raises(BindingMismatch, match=r"option compact: False -> True"):
        build_surveys(pew_tree, out, compact=True, **QUIET)
    with pytest.raises(BindingMismatch, match=r"option waves: 'all' -> \['W7'\]"):
        build_surveys(pew_tree, out, waves=["W7"], **QUIET)
    res = build_surveys(pew_tree, out, waves=["W7"], restart=True, **QUIET)  # starts over: the cache too
    assert res.complete and [p.name[:3] for p in (out / ".cache").iterdir()] == ["W7-"]


def test_sav_only_builds_opinionqa_xl_alone(pew_tree: Path, tmp_path: Path):
    out = tmp_path / "out"
    res = build_surveys(pew_tree, out, sav_only=True, **QUIET)
    assert res.complete and res.manifest["counts"] == {"opinionqa-xl": 3} and res.manifest["sav_only"] is True
    assert not (out / "opinionqa").exists() or not list((out / "opinionqa").glob("*.parquet"))
    assert {q.text_source for q in load_benchmark("opinionqa-xl", out)} == {"spss-label"}
    with pytest.raises(FileNotFoundError, match="--sav-only"):
        load_benchmark("opinionqa", out)


def test_wd_and_baselines():
    assert wd([1, 2, 3], [1, 0, 0], [0, 0, 1]) == pytest.approx(1.0)
    assert wd([1, 2, 1.5], [1, 0, 0], [0, 0, 1]) == pytest.approx(0.5)
    with pytest.raises(ValueError):
        wd([1, 1], [1, 0], [0, 1])


def test_load_benchmark_errors(tmp_path: Path):
    with pytest.raises(ValueError):
        load_benchmark("nope")
    with pytest.raises(FileNotFoundError, match="manifest"):
        load_benchmark("opinionqa", tmp_path)


def test_human_baselines_by_hand():
    from ava.contracts.surveys import GroupDistribution, SurveyQuestion

    def q(key, ordinals, overall, g):
        groups = (GroupDistribution("Overall", "Overall", overall, 0.0, 10, 10.0),
                  GroupDistribution("SEX", "Male", g, 0.0, 5, 5.0),
                  GroupDistribution("SEX", "Female", overall, 0.0, 5, 5.0))
        return SurveyQuestion(key, "W1", "t", ("a", "b", "c")[: len(ordinals)], ordinals, (), "x", "x", True, groups)

    qs = [q("a", (1.0, 2.0, 3.0), (0.5, 0.0, 0.5), (1.0, 0.0, 0.0)),  # WD 0.5
          q("b", (1.0, 2.0), (1.0, 0.0), (0.0, 1.0)),  # WD 1
          q("c", (1.0, 1.0), (1.0, 0.0), (0.0, 1.0))]  # degenerate: excluded
    hb = baselines_summary(qs)
    assert hb["n_questions"] == 2
    assert hb["per_group"]["SEX/Male"] == pytest.approx(1 - 0.75)
    assert hb["per_group"]["SEX/Female"] == pytest.approx(1.0)
    assert hb["humans_average"] == pytest.approx((0.25 + 1.0) / 2) and hb["humans_worst"] == pytest.approx(0.25)
