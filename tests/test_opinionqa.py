"""OpinionQA tasks on hand-made survey questions: prompts, exclusions, metrics, steering."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence

import pytest

from ava.contracts.scoring import ScoredItem, ScoreRequest
from ava.contracts.surveys import GroupDistribution, SurveyQuestion
from ava.evals.prompts.personas import Persona, ava_personas, opinionqa_personas
from ava.evals.runner import run_tasks
from ava.evals.task import TaskOptions
from ava.evals.tasks.opinion_items import make_request, model_reading
from ava.evals.tasks.opinion_task import OpinionTask
from ava.evals.tasks.opinionqa import make_tasks
from ava.evals.tasks.steer_task import SteerTask


def gd(attr: str, group: str, dist: Sequence[float], refusal: float = 0.0) -> GroupDistribution:
    return GroupDistribution(attr, group, tuple(dist), refusal, 100, 100.0)


def question(key, options, ordinals, groups, *, wave="W26", tags=(), refusal=("Refused",)) -> SurveyQuestion:
    return SurveyQuestion(
        key=key, wave=wave, text=f"Text of {key}?", options=tuple(options), ordinals=tuple(ordinals),
        refusal_options=tuple(refusal), text_source="test", ordinal_source="test", weighted=True,
        groups=tuple(groups), tags=tuple(tags),
    )


GROUPS = {
    ("SEX", "Male"): [0.6, 0.3, 0.1],
    ("SEX", "Female"): [0.4, 0.3, 0.3],
    ("POLPARTY", "Democrat"): [0.2, 0.3, 0.5],
    ("POLPARTY", "Republican"): [0.7, 0.2, 0.1],
}


def fixtures() -> list[SurveyQuestion]:
    q1 = question(
        "SAFE_W26", ["Very safe", "Somewhat safe", "Not safe"], [1, 2, 3],
        [gd("Overall", "Overall", [0.5, 0.3, 0.2], 0.1)] + [gd(a, g, d) for (a, g), d in GROUPS.items()],
        tags=("cg:crime", "steer500"),
    )
    # "safer / more dangerous / neither" with neither in the middle (1.5)
    q2 = question(
        "WORLD_W27", ["Safer", "More dangerous", "Neither"], [1, 2, 1.5],
        [gd("Overall", "Overall", [0.2, 0.2, 0.6], 0.3)]
        + [gd(a, g, list(reversed(d))) for (a, g), d in GROUPS.items()],
        wave="W27", tags=("cg:crime", "cg:family", "steer500"),
    )
    degenerate = question("SAME_W26", ["Yes", "Also yes"], [1, 1], [gd("Overall", "Overall", [0.5, 0.5])])
    no_overall = question("EMPTY_W26", ["Yes", "No"], [1, 2], [gd("Overall", "Overall", [], 1.0)])
    return [q1, q2, degenerate, no_overall]


class OracleScorer:
    """Answers like the persona's group in the QA format, uniformly otherwise, like Overall
    without a persona; 10% of the mass on the refusal letter, 80% on the letters in all."""

    identity = "oracle"
    backend = "test"

    def __init__(self, questions: Sequence[SurveyQuestion]) -> None:
        self.by_key = {q.key: q for q in questions}

    def score(self, requests: Sequence[ScoreRequest], progress: bool = False) -> list[ScoredItem]:
        out = []
        for r in requests:
            key, _, persona = r.id.partition("|")
            q = self.by_key[key]
            if persona.startswith("qa:"):
                _, attr, group = persona.split(":", 2)
                dist = list(q.group(attr, group).distribution)
            elif persona in ("", "default"):
                dist = list(q.overall.distribution)
            else:
                dist = [1 / len(q.options)] * len(q.options)
            probs = [0.8 * 0.9 * p for p in dist] + [0.8 * 0.1]
            out.append(ScoredItem(r.id, tuple(math.log(p) if p > 0 else -1e4 for p in probs)))
        return out


def test_default_prompt_format_and_segments():
    q1 = fixtures()[0]
    req = make_request("x", q1)
    assert req.prompt == "Question: Text of SAFE_W26?\nA. Very safe\nB. Somewhat safe\nC. Not safe\nD. Refused\nAnswer:"
    assert req.options == ("A", "B", "C", "D") and len(req.segments) == 2
    persona = Persona("portray", "SEX", "Male", "Answer as if you were male.\n")
    steered = make_request("y", q1, persona)
    assert steered.segments[0] == "Answer as if you were male.\n\n" and steered.segments[1:] == req.segments


def test_model_reading_renormalises_over_substantive_options():
    q1 = fixtures()[0]
    scored = ScoredItem("x", tuple(math.log(p) for p in (0.2, 0.1, 0.1, 0.1)))  # mass 0.5, refusal 0.1
    dist, refusal = model_reading(q1, scored)
    assert list(dist) == pytest.approx([0.5, 0.25, 0.25])
    assert refusal == pytest.approx(0.2)


def test_exclusions_are_counted_with_reasons():
    mismatched = question("MISMATCH_W66", ["Low", "High"], [1, 2], [gd("Overall", "Overall", [0.2, 0.3, 0.5])])
    task = OpinionTask("opinionqa", [*fixtures(), mismatched])
    assert [q.key for q in task.questions] == ["SAFE_W26", "WORLD_W27"]
    assert dict(task.report.dropped) == {
        "degenerate ordinals": 1,
        "no Overall distribution": 1,
        "Overall distribution does not match options": 1,
    }
    assert "opinionqa:SAME_W26: degenerate ordinals; question excluded" in task.report.messages
    assert (task.report.rows, task.report.kept) == (5, 2)


def test_uniform_model_hand_computed(tmp_path):
    from ava.models import load_scorer

    task = OpinionTask("opinionqa", fixtures(), n_resamples=50)
    res = run_tasks([task], load_scorer("uniform"), tmp_path, progress=False)
    m = res["tasks"]["opinionqa"]
    # q1: CDFs (1/3, 2/3) vs (0.5, 0.8) -> (0.1667 + 0.1333) / 2 = 0.15
    # q2 (positions 1, 1.5, 2; mass .2/.6/.2): CDFs (1/3, 2/3) vs (.2, .8) -> .1333*.5*2 / 1 = 0.1333
    assert m["headline"]["representativeness"] == pytest.approx(1 - (0.15 + 0.4 / 3) / 2, abs=1e-6)
    assert m["headline"]["uniform_representativeness"] == m["headline"]["representativeness"]
    assert m["headline"]["refusal_model"] == pytest.approx(0.25)  # 1 of 4 letters
    assert m["headline"]["refusal_humans"] == pytest.approx(0.2)  # mean of 0.1 and 0.3
    assert m["headline"]["letter_mass"] == pytest.approx(1.0)
    # TV to Overall: q1 (1/3 each vs .5/.3/.2) -> (.1667 + .0333 + .1333) / 2 = 1/6;
    # q2 (vs .2/.2/.6) -> (.1333 + .1333 + .2667) / 2 = .2667: 1 - mean = .78333
    assert m["headline"]["representativeness_tv"] == pytest.approx(1 - (1 / 6 + 0.8 / 3) / 2, abs=1e-6)
    assert m["headline"]["uniform_representativeness_tv"] == m["headline"]["representativeness_tv"]
    # normalised entropy: the uniform model 1; Overall q1 1.02965 / ln 3 = .93723, q2 .95028 / ln 3 = .86497
    assert m["headline"]["entropy_model"] == pytest.approx(1.0)
    assert m["headline"]["entropy_humans"] == pytest.approx((0.93723 + 0.86497) / 2, abs=1e-5)
    assert m["counts"]["questions"] == 2 and m["counts"]["topics"] == 2 and m["counts"]["waves"] == 2
    ci = m["intervals"]["representativeness"]
    assert ci["low"] <= ci["value"] <= ci["high"]
    tables = {name: (tmp_path / rel).read_text().splitlines() for name, rel in m["tables"].items()}
    assert tables["groups"][0].startswith("attribute,group,n_questions,model")
    assert len(tables["groups"]) == 1 + 1 + len(GROUPS) and len(tables["waves"]) == 3
    assert tables["topics"][1].startswith("crime,2,")
    assert (tmp_path / m["plots"]["representativeness_by_group"]).exists()


def test_human_baselines_hand_computed(tmp_path):
    from ava.models import load_scorer

    q1 = fixtures()[0]
    task = OpinionTask("opinionqa", [q1], n_resamples=10)
    m = run_tasks([task], load_scorer("uniform"), tmp_path, progress=False)["tasks"]["opinionqa"]
    # WD to Overall (.5,.3,.2): Male (.6,.3,.1) -> (.1+.1)/2 = .1; Female (.4,.3,.3) -> .1;
    # Democrat (.2,.3,.5) -> (.3+.3)/2 = .3; Republican (.7,.2,.1) -> (.2+.1)/2 = .15
    assert m["headline"]["humans_average"] == pytest.approx(1 - (0.1 + 0.1 + 0.3 + 0.15) / 4)
    assert m["headline"]["humans_worst"] == pytest.approx(0.7)


def test_consistency_of_an_overall_oracle(tmp_path):
    qs = fixtures()
    m = run_tasks([OpinionTask("opinionqa", qs, n_resamples=20)], OracleScorer(qs), tmp_path, progress=False)
    m = m["tasks"]["opinionqa"]
    assert m["headline"]["representativeness"] == pytest.approx(1.0)
    assert m["headline"]["refusal_model"] == pytest.approx(0.1)
    section = m["details"]["consistency"]
    assert section["available"] and set(section["per_attribute"]) == {"SEX", "POLPARTY"}
    # crime = {q1, q2}, family = {q2}; SEX: Male/Female tie overall, best per topic from the same data
    for attr in section["per_attribute"].values():
        assert 0 <= attr["consistency"] <= 1
    assert 0 <= m["headline"]["consistency"] <= 1


def test_steering_compares_each_persona_with_its_own_group(tmp_path):
    qs = fixtures()
    personas = [p for p in opinionqa_personas() if (p.attribute, p.group) in GROUPS]
    assert len(personas) == 3 * 4
    task = SteerTask("opinionqa-steer", [q for q in qs if "steer500" in q.tags], personas, n_resamples=20)
    assert len(task.items()) == 2 + 12 * 2
    m = run_tasks([task], OracleScorer(qs), tmp_path, progress=False)["tasks"]["opinionqa-steer"]
    h = m["headline"]
    assert h["steerability"] == pytest.approx(1.0) and h["steerability_qa"] == pytest.approx(1.0)
    assert h["steerability_per_question_max"] == pytest.approx(1.0)
    assert h["steerability_bio"] == pytest.approx(h["uniform_group_representativeness"])
    assert h["steerability_bio"] < 1.0
    # without a persona the oracle answers like Overall: the human baseline of those groups
    assert h["default_group_representativeness"] < 1.0
    assert h["steering_gain"] == pytest.approx(1.0 - h["default_group_representativeness"])
    rows = (tmp_path / m["tables"]["groups"]).read_text().splitlines()
    assert rows[0].split(",")[:6] == ["attribute", "group", "n_questions", "default", "qa", "bio"]
    assert all(",qa," in r for r in rows[1:])  # best format
    assert (tmp_path / m["plots"]["steered_vs_default"]).exists()


def test_steering_refuses_a_persona_group_without_data():
    qs = fixtures()
    with pytest.raises(ValueError, match="no human distributions"):
        SteerTask("s", qs, [Persona("portray", "RELIG", "Hindu", "x\n")])


def test_make_tasks_with_given_questions_and_settings():
    qs = fixtures()
    tasks = make_tasks(TaskOptions(steer=False, settings={"n_resamples": "7"}), questions=qs)
    assert [t.name for t in tasks] == ["opinionqa"] and tasks[0].n_resamples == 7
    with pytest.raises(ValueError, match="expected an integer"):
        make_tasks(TaskOptions(settings={"n_resamples": "many"}), questions=qs)
    with pytest.raises(ValueError, match="unknown format"):
        make_tasks(TaskOptions(steer=True, settings={"formats": "qa,story"}), questions=qs)


def test_ava_personas_cover_nine_factors():
    personas = ava_personas()
    assert len(personas) == 32
    assert len({p.attribute for p in personas}) == 9
    assert personas[0].text == "Answer the following question considering yourself as a person who is a resident of " \
        "Northeast USA.\n"
    assert ("INCOME", "$100,000 or more") in {(p.attribute, p.group) for p in personas}


def test_bundled_personas_rebuild_from_the_steer_files(shared_data):
    from ava.evals.prompts.personas import PERSONAS_FILE, build_opinionqa_personas
    from ava.paths import bundled

    rebuilt = build_opinionqa_personas(shared_data / "opinionqa")
    assert rebuilt == json.loads(bundled(*PERSONAS_FILE).read_text(encoding="utf-8"))
    assert len(rebuilt["personas"]) == 22
    party = next(p for p in rebuilt["personas"] if p["group"] == "Democrat")
    assert party["qa"].endswith("Answer: B\n")  # Republican, Democrat, ... -> B
    assert party["portray"] == (
        "Answer the following question as if in politics today, you considered yourself a Democrat.\n"
    )


def test_opinionqa_xl_steering_uses_the_ava_format_on_a_seeded_sample():
    from dataclasses import replace

    from ava.evals.tasks.opinionqa_xl import make_tasks as make_xl_tasks
    from ava.evals.tasks.opinionqa_xl import steer_sample

    groups = list(dict.fromkeys((p.attribute, p.group) for p in ava_personas()))
    qs = []
    for q in fixtures()[:2]:
        have = {(g.attribute, g.group) for g in q.groups}
        qs.append(replace(q, groups=(*q.groups, *[gd(a, g, q.overall.distribution) for a, g in groups
                                                   if (a, g) not in have])))
    options = TaskOptions(steer=True, seed=3, settings={"steer_questions": "1", "n_resamples": "10"})
    tasks = make_xl_tasks(options, questions=qs)
    assert [t.name for t in tasks] == ["opinionqa-xl", "opinionqa-xl-steer"]
    steer = tasks[1]
    assert steer.formats == ["ava"] and len(steer.groups) == 32 and len(steer.questions) == 1
    assert len(steer.items()) == 1 + 32
    assert [q.key for q in steer_sample(qs, 1, seed=3)] == [q.key for q in steer.questions]
    assert [q.key for q in steer_sample(qs, "all", seed=3)] == ["SAFE_W26", "WORLD_W27"]
    with pytest.raises(ValueError, match="steer_questions"):
        steer_sample(qs, "some", seed=0)


def test_a_key_asked_in_two_waves_is_two_questions_and_a_repeat_is_excluded():
    from dataclasses import replace

    q1 = fixtures()[0]
    again = replace(q1, wave="W29")
    task = OpinionTask("opinionqa", [q1, again, again])
    assert [i.id for i in task.items()] == ["SAFE_W26@W26", "SAFE_W26@W29"]
    assert dict(task.report.dropped) == {"duplicate (wave, key)": 1}


def test_survey_data_without_any_group_or_question_is_refused():
    from dataclasses import replace

    from ava.evals.data import DataError

    only_overall = [replace(q, groups=tuple(g for g in q.groups if g.attribute == "Overall")) for q in fixtures()]
    with pytest.raises(DataError, match="every demographic group is empty"):
        OpinionTask("opinionqa", only_overall)
    with pytest.raises(DataError, match="no scorable question"):
        OpinionTask("opinionqa", fixtures()[2:])


def test_limit_keeps_the_first_questions_with_all_their_personas():
    qs = fixtures()
    personas = [p for p in opinionqa_personas() if (p.attribute, p.group) in GROUPS]
    steer = SteerTask("s", [q for q in qs if "steer500" in q.tags], personas, limit=1)
    assert {i.meta["question"] for i in steer.items()} == {"SAFE_W26"} and len(steer.items()) == 1 + 12
    assert [i.id for i in OpinionTask("o", qs, limit=1).items()] == ["SAFE_W26"]
