"""Which survey weight each wave gets: Pew's naming patterns on synthetic .sav files, refusals where a
person could not decide either, and the decision for every real wave in ../shared/data."""

from __future__ import annotations

import json
from pathlib import Path

import pyreadstat
import pytest

from ava.surveys import bundled_dir, load_benchmark
from ava.surveys.build import build_surveys
from ava.surveys.discovery import discover
from ava.surveys.errors import SurveyInputError
from ava.surveys.weights import choose_weight, parse_named, split_name
from conftest import shared_path
from test_surveys_units import QUIET, write_wave

W = "W120"  # a wave after the shared ones: Pew's later files use these names
FULL = [1, 3, 2, 1, 1, 5]  # the weight that must be used (answers 1,1,2,99,2,nan: 4 / 3 / refused 1)
OTHER = [[2, 1, 1, 1, 1, 1], [0, 2, 1, 0, 4, 1], [1, 1, 5, 1, 1, 0], [3, 1, 1, 2, 1, 1]]  # decoys

# pattern -> (weight columns {name: label}, the column chosen, its rule). The first column is the one
# chosen, with weights FULL; the others get the decoys. "before": what the rules of weights.yaml 2026.11.1
# (WEIGHT_<wave>, else the only weight naming this wave alone, else WEIGHT) did.
CHOSEN = {
    "final beside a dated weight": (  # before: refused (two weights of this wave alone)
        {f"WEIGHT_{W}_FINAL": "Wave 120 final weight",
         f"WEIGHT_JUN24_{W}": "Wave 120 weight among respondents on or before June 24 only"}, "final"),
    "final beside a per-sample weight": (  # before: refused
        {f"WEIGHT_{W}_FINAL": "Final weight", f"WEIGHT_{W}_KP": "Weight for the KnowledgePanel oversample"}, "final"),
    "final first, then the wave": (  # before: refused
        {f"WEIGHT_FINAL_{W}": "Final weight", f"WEIGHT_{W}_ATPONLY": "ATP sample only",
         f"WEIGHT_W119_{W}": "Wave 119-120 longitudinal weight"}, "final"),
    "general population beside subgroup weights": (  # before: refused
        {"WEIGHT_GP": "General population weight", f"WEIGHT_{W}_LAT": "Weight for Hispanic adults",
         f"WEIGHT_{W}_ASIAN": "Weight for Asian adults", f"WEIGHT_{W}_BLACK": "Weight for Black adults"},
        "general-population"),
    "general population beside one subgroup weight": (  # before: WEIGHT_W120_LAT, the wrong one
        {"WEIGHT_GP": "General population weight", f"WEIGHT_{W}_LAT": "Weight for Hispanic adults"},
        "general-population"),
    "general population of the wave beside a teen weight": (  # before: refused
        {f"WEIGHT_{W}_GP": "Wave 120 weight, general population", f"WEIGHT_{W}_TEEN": "Teen weight"},
        "general-population"),
    "plain WEIGHT beside a subgroup weight": (  # before: WEIGHT_W120_LAT, the wrong one
        {"WEIGHT": "Weight", f"WEIGHT_{W}_LAT": "Weight for Hispanic adults"}, "plain"),
    "label names the full-sample weight": (  # W8.5's naming; before: unweighted
        {"DIARYWEIGHT": "DIARYWEIGHT is the full sample weight for all Diary study respondents",
         "DIARYWEIGHT_APP": "DIARYWEIGHT_APP is the weight for the respondents who used the app",
         "DIARYWEIGHT_WEB": "DIARYWEIGHT_WEB is the weight for the respondents who used the Web"}, "label"),
    "the only weight, special purpose": (  # W14's naming; before: the same
        {f"WEIGHT_{W}_SOCIALMEDIA": "Revised weight including Social Media usage"}, "only"),
    "the only weight, by form": (  # W16's naming; before: the same
        {f"WEIGHT_FORM_{W}": "Wave 120 weight (by form)"}, "only"),
    "the wave's weight beside everything else": (  # before: the same
        {f"WEIGHT_{W}": "Wave 120 weight", f"WEIGHT_{W}_FINAL": "Final weight", "WEIGHT_GP": "General population",
         f"WEIGHT_{W}_LAT": "Weight for Hispanic adults", f"WEIGHT_W119W{W[1:]}": "Longitudinal weight"}, "wave"),
    "experimental weights the label forbids": (  # W5's naming; before: the same
        {f"WEIGHT_{W}": "Wave 120 weight", f"WEIGHT_EXP_WEB_{W}": "Experimental weight DO NOT USE",
         f"PHONEWEIGHT_{W}": "Experimental weight DO NOT USE"}, "wave"),
}

# pattern -> (weight columns {name: label}, words of the reason). Nothing is chosen: a person reading the
# names and labels could not say which weight the wave's distributions should use either.
REFUSED = {
    "subgroup weights only": (
        {f"WEIGHT_{W}_LAT": "Weight for Hispanic adults", f"WEIGHT_{W}_ASIAN": "Weight for Asian adults"},
        "no full-sample weight among"),
    "one subgroup weight only": ({f"WEIGHT_{W}_LAT": "Weight for Hispanic adults"}, "its only weight is a"),
    "one dated weight only": ({f"WEIGHT_JUN24_{W}": "Weight among respondents before June 24"}, "dated weight"),
    "one weight per form": (
        {f"WEIGHT_{W}_FORMA": "Weight for form A", f"WEIGHT_{W}_FORMB": "Weight for form B"}, "one-form weight"),
    "two full-sample names": (
        {f"WEIGHT_{W}_FINAL": "Final weight", "WEIGHT_GP": "General population weight"},
        "several weights named as the full sample's"),
    "two special-purpose weights": (
        {f"WEIGHT_{W}_SOCIALMEDIA": "Social media weight", f"WEIGHT_{W}_CENSUS": "Census participation weight"},
        "no full-sample weight among"),
    "two weights labelled full sample": (
        {"MAINWEIGHT": "Full sample weight, trimmed at the 95th percentile",
         "ALTWEIGHT": "Full sample weight, trimmed at the 99.8th percentile"},
        "several weights labelled as the full sample's"),
    "an arm of an experiment only": ({f"WEIGHT_{W}_TREATED": "Treated weight"}, "mode or experimental arm"),
    "a subgroup name its label calls the full sample's": (  # name and label disagree: not guessed
        {f"WEIGHT_{W}_LAT": "Full sample weight for the Latino survey"}, "its only weight is a subgroup"),
}

NONE = {  # no weight column for this wave's sample: the wave is unweighted (fails unless declared or allowed)
    "no weight column": {},
    "a longitudinal weight only": {f"WEIGHT_W119_{W}": "Wave 119-120 longitudinal weight"},
    "a weight of another wave only": {"WEIGHT_W119": "Wave 119 weight"},
    "a weight its label forbids": {f"WEIGHT_{W}_EXP": "Experimental weight DO NOT USE"},
}


def _weights(labels: dict[str, str]) -> dict[str, tuple[list[float], str]]:
    values = [FULL, *OTHER, *OTHER]
    return {name: (values[i], label) for i, (name, label) in enumerate(labels.items())}


def _expected(weights: list[float]) -> tuple[tuple[float, float], float]:
    """SAFE by hand: answers 1, 1, 2, 99 (refused), 2, no answer."""
    safe, unsafe, refused = weights[0] + weights[1], weights[2] + weights[4], weights[3]
    return (safe / (safe + unsafe), unsafe / (safe + unsafe)), refused / (safe + unsafe + refused)


def _build(tmp_path: Path, labels: dict[str, str], **kw):
    pew = tmp_path / "pew"
    write_wave(pew / f"{W}_Jan23" / f"ATP {W}.sav", W, weights=_weights(labels) if labels else False)
    return build_surveys(pew, tmp_path / "out", sav_only=True, **{**QUIET, **kw})


@pytest.mark.parametrize("pattern", list(CHOSEN))
def test_naming_pattern_chooses_the_weight_a_person_would(pattern: str):
    labels, rule = CHOSEN[pattern]
    choice = choose_weight(["QKEY", f"SAFE_{W}", *labels], W, labels)
    assert (choice.column, choice.rule) == (next(iter(labels)), rule), choice.reason
    assert set(choice.others) == set(labels) - {choice.column} and all(choice.others.values())
    assert choice.column in choice.reason


@pytest.mark.parametrize("pattern", list(REFUSED))
def test_naming_pattern_a_person_could_not_decide_is_refused(pattern: str):
    labels, words = REFUSED[pattern]
    choice = choose_weight(["QKEY", f"SAFE_{W}", *labels], W, labels)
    assert (choice.column, choice.rule) == (None, "refused") and words in choice.reason, choice.reason
    assert all(name in choice.reason for name in labels) and set(choice.others) == set(labels)


@pytest.mark.parametrize("pattern", list(NONE))
def test_no_weight_for_this_wave_is_unweighted(pattern: str):
    choice = choose_weight(["QKEY", *NONE[pattern]], W, NONE[pattern])
    assert (choice.column, choice.rule) == (None, "none"), choice.reason


def test_names_are_read_as_waves_and_qualifiers():
    assert split_name("WEIGHT_W26") == (("W26",), "")
    assert split_name("WEIGHT_W25W26") == (("W25", "W26"), "")
    assert split_name("WEIGHT_W63.5_W66") == (("W63.5", "W66"), "")
    assert split_name("WEIGHT_JUN24_W91") == (("W91",), "JUN24")
    assert split_name("DIARYWEIGHT_APP") == ((), "DIARY_APP")
    assert split_name("WEIGHT_GP") == ((), "GP")
    # A question about body weight is not a weight column; FORMAT is not a form.
    assert choose_weight(["WEIGHTLOSS_W120", f"WEIGHT_{W}"], W).candidates == (f"WEIGHT_{W}",)
    assert choose_weight([f"WEIGHT_{W}_FORMAT"], W).rule == "only"


def test_a_named_weight_overrides_the_rules():
    columns = [f"WEIGHT_{W}", f"WEIGHT_{W}_LAT"]
    named = choose_weight(columns, W, named=f"WEIGHT_{W}_LAT")
    assert (named.column, named.rule) == (f"WEIGHT_{W}_LAT", "named") and f"--weight {W}=WEIGHT_{W}_LAT" in named.reason
    assert choose_weight(columns, W, named="NOPE").rule == "refused"
    assert parse_named(["w120=WEIGHT_W120_LAT", "26=WEIGHT_W26", "W26=WEIGHT_W26"]) == {
        "W26": "WEIGHT_W26", "W120": "WEIGHT_W120_LAT"}
    for bad in (["W26"], ["W26="], ["X=Y"], ["W26=A", "W26=B"]):
        with pytest.raises(SurveyInputError, match="--weight"):
            parse_named(bad)


@pytest.mark.parametrize("pattern", ["final beside a dated weight", "general population beside one subgroup weight",
                                     "plain WEIGHT beside a subgroup weight", "label names the full-sample weight",
                                     "the only weight, by form"])
def test_built_distributions_use_the_chosen_weight(pattern: str, tmp_path: Path):
    """The .sav of each pattern built end to end: the distribution is the chosen column's, by hand."""
    labels, rule = CHOSEN[pattern]
    res = _build(tmp_path, labels)
    assert res.complete, res.errors
    report = res.manifest["waves"][W]["weight"]
    assert (report["column"], report["rule"], report["respondents_weighted"]) == (next(iter(labels)), rule, 6)
    assert report["labels"] == labels and set(report["others"]) == set(labels) - {report["column"]}
    (q,) = load_benchmark("opinionqa-xl", tmp_path / "out")
    dist, refusal = _expected(FULL)
    assert q.weighted and q.overall.distribution == pytest.approx(dist) and q.overall.refusal_rate == pytest.approx(
        refusal)
    card = (tmp_path / "out" / "README.md").read_text()
    assert f"| {W} | 1 | {report['column']} | {rule} |" in card


def test_a_refused_wave_fails_the_build_and_a_named_weight_builds_it(tmp_path: Path):
    labels, _ = REFUSED["subgroup weights only"]
    res = _build(tmp_path, labels)
    assert not res.complete and not (tmp_path / "out" / "README.md").exists()
    (error,) = res.errors
    sav = tmp_path / "pew" / f"{W}_Jan23" / f"ATP {W}.sav"
    assert error.startswith(f"{sav}: {W}: the weight rules cannot choose its survey weight: no full-sample weight")
    assert f"--weight {W}=COLUMN (one of WEIGHT_{W}_LAT, WEIGHT_{W}_ASIAN)" in error and "--allow-unweighted" in error
    res = _build(tmp_path, labels, weights=[f"{W}=WEIGHT_{W}_ASIAN"], restart=True)
    assert res.complete, res.errors
    assert res.manifest["waves"][W]["weight"]["rule"] == "named"
    (q,) = load_benchmark("opinionqa-xl", tmp_path / "out")
    assert q.overall.distribution == pytest.approx(_expected(OTHER[0])[0])  # the second column's values


# -- the real waves ------------------------------------------------------------------------------------
OQA_WAVES = ["W26", "W27", "W29", "W32", "W34", "W36", "W41", "W42", "W43", "W45", "W49", "W50", "W54", "W82",
             "W92"]
# Every shared wave gets WEIGHT_<wave> by rule `wave` except these. Before (weights.yaml 2026.11.1) the
# same columns, but W8.5 was built unweighted (declared "no wave weight"), though its label names
# DIARYWEIGHT as the full sample's weight.
NOT_BY_WAVE_RULE = {"W8.5": ("DIARYWEIGHT", "label"), "W14": ("WEIGHT_W14_SOCIALMEDIA", "label"),
                    "W14.5": ("WEIGHT_W14.5_SOCIALMEDIA", "only"), "W16": ("WEIGHT_FORM_W16", "only")}


def test_every_real_wave_gets_the_weight_a_person_would_choose():
    pew = shared_path("pew-atp", "PEW_ATP_Cleaned")
    waves, _ = discover(pew)
    assert len(waves) == 110
    chosen = {}
    for wf in waves:
        _, meta = pyreadstat.read_sav(str(wf.path), metadataonly=True)
        choice = choose_weight(list(meta.column_names), wf.wave, meta.column_names_to_labels)
        chosen[wf.wave] = (choice.column, choice.rule)
    expected = {w.wave: NOT_BY_WAVE_RULE.get(w.wave, (f"WEIGHT_{w.wave}", "wave")) for w in waves}
    assert chosen == expected
    # OpinionQA's published numbers use WEIGHT_W<n> for each of its 15 waves.
    assert all(chosen[w] == (f"WEIGHT_{w}", "wave") for w in OQA_WAVES)


def test_the_bundled_build_records_the_same_weights():
    """The bundled manifest (rebuilt from the shared waves) says per wave which weight and why."""
    manifest = json.loads((bundled_dir() / "manifest.json").read_text())
    assert manifest["weights_by_rule"] == {"label": 2, "only": 2, "wave": 106} and manifest["unweighted_waves"] == []
    for wave, report in manifest["waves"].items():
        weight = report["weight"]
        assert (weight["column"], weight["rule"]) == NOT_BY_WAVE_RULE.get(wave, (f"WEIGHT_{wave}", "wave"))
        assert weight["reason"].startswith(weight["column"]) and weight["respondents_weighted"] > 0
        assert set(weight["others"]) == set(weight["labels"]) - {weight["column"]}
    assert manifest["waves"]["W92"]["weight"]["respondents_weighted"] == 10221  # of 10,916 rows: as before
    assert "DIARYWEIGHT_APP" in manifest["waves"]["W8.5"]["weight"]["others"]


def test_w85_distributions_are_weighted_by_diaryweight_by_hand(tmp_path: Path):
    """W8.5 (before: unweighted): every question's overall distribution recomputed with pandas from
    the labelled .sav and DIARYWEIGHT, the weight its label names."""
    import numpy as np

    (wf,) = [w for w in discover(shared_path("pew-atp", "PEW_ATP_Cleaned"))[0] if w.wave == "W8.5"]
    res = build_surveys(wf.path.parent, tmp_path / "out", waves=["W8.5"], sav_only=True, **QUIET)
    assert res.complete, res.errors
    questions = load_benchmark("opinionqa-xl", tmp_path / "out")
    assert len(questions) == 535 and all(q.weighted for q in questions)
    # Codes, not labels: pyreadstat takes 30 s to apply this file's value labels.
    frame, meta = pyreadstat.read_sav(str(wf.path), usecols=[q.column for q in questions] + ["DIARYWEIGHT"],
                                      apply_value_formats=False, user_missing=False)
    for q in questions:
        code_of = {label: code for code, label in meta.variable_value_labels[q.column].items()}
        sums = frame.groupby(q.column)["DIARYWEIGHT"].sum()
        sub = np.array([sums.get(code_of[o], 0.0) for o in q.options])
        assert np.allclose(q.overall.distribution, sub / sub.sum(), atol=1e-12), q.key
