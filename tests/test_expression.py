"""``--expression``: the methods, the strict reply parser, caches bound to the method, real OpinionQA runs."""

from __future__ import annotations

import json

import pytest

from ava.evals.runner import run_tasks
from ava.evals.task import TaskOptions
from ava.evals.tasks.expression import ExpressionSpec, expression_spec
from ava.evals.tasks.expression_replies import answer_letter, parse_verbalized
from ava.evals.tasks.opinion_task import OpinionTask
from ava.evals.tasks.opinion_text import OpinionTextTask, sampled_prompt, verbalized_prompt

LETTERS = ("A", "B", "C")


def tasks(settings: dict[str, str], limit: int | None = 4, seed: int = 0):
    from ava.evals.tasks.opinionqa import make_tasks

    return make_tasks(TaskOptions(limit=limit, seed=seed, settings={"n_resamples": "50", **settings}))


@pytest.fixture(scope="module")
def real_opinionqa():
    """The bundled OpinionQA data (skips with the reason when it is absent)."""
    from ava.evals.data import DataNotFound

    try:
        return tasks({}, limit=1)
    except DataNotFound as exc:
        pytest.skip(f"OpinionQA data not available: {exc}")


# -- the option -----------------------------------------------------------------------------
def test_methods_and_their_versions():
    assert expression_spec({}, 0) == ExpressionSpec("logprobs", 20, 0)
    assert ExpressionSpec().version_suffix() == ""  # the published protocol: today's version and cache keys
    suffixes = {m: expression_spec({"expression": m}, 3).version_suffix() for m in ("verbalized", "sampled")}
    assert suffixes["verbalized"].startswith("+verbalized-expression-v")
    assert suffixes["sampled"].startswith("+sampled20-seed3-")
    assert expression_spec({"expression": "sampled", "samples": "5"}, 3).version_suffix().startswith("+sampled5-seed3")


@pytest.mark.parametrize(("settings", "message"), [
    ({"expression": "verbalised"}, "did you mean verbalized"),
    ({"expression": "logprob"}, "did you mean logprobs"),
    ({"expression": "sampled", "samples": "0"}, "at least 1"),
    ({"expression": "sampled", "samples": "x"}, "whole number"),
    ({"samples": "5"}, "only the sampled method"),
    ({"expression": "verbalized", "orders": "2"}, "letters. probabilities only"),
])
def test_bad_settings_are_refused(settings, message):
    with pytest.raises(ValueError, match=message):
        expression_spec(settings, 0)


# -- the parser (hand-written replies) -------------------------------------------------------
@pytest.mark.parametrize(("reply", "probs"), [
    ('{"A": 20, "B": 30, "C": 50}', (0.2, 0.3, 0.5)),
    (' Sure: {"A": "10%", "B": 40, "C": 48} and more text', (10 / 98, 40 / 98, 48 / 98)),  # within +-5, normalised
    ("A: 25%\nB: 25%\nC: 50%", (0.25, 0.25, 0.5)),
    ("(A) 60\n(B) 40\n(C) 0", (0.6, 0.4, 0.0)),
])
def test_verbalized_replies_that_parse(reply, probs):
    parsed = parse_verbalized(reply, LETTERS, 5.0)
    assert parsed.reason is None and parsed.probs == pytest.approx(probs)


@pytest.mark.parametrize(("reply", "reason"), [
    ("I think most people agree.", "no JSON object"),
    ('{"A": 50, "B": 50}', "an option missing"),
    ('{"A": 20, "B": 30, "C": 40, "D": 10}', "a letter that is no option"),
    ('{"A": 20, "A": 30, "B": 10, "C": 40}', "an option given twice"),
    ('{"A": 20, "B": "many", "C": 40}', "not a number"),
    ('{"A": 120, "B": -20, "C": 0}', "outside [0, 100]"),
    ('{"A": 20, "B": 30, "C": 40}', "not summing to 100"),  # 90: beyond the tolerance, never rescaled
    ('{"A": true, "B": 50, "C": 50}', "not a number"),
])
def test_verbalized_replies_that_do_not_parse(reply, reason):
    parsed = parse_verbalized(reply, LETTERS, 5.0)
    assert parsed.probs is None and reason in str(parsed.reason)


@pytest.mark.parametrize(("reply", "letter"), [
    (" B", "B"), ("B. Somewhat", "B"), ("(C) because", "C"), ("A", "A"), ("The answer is C.", "C"),
    ("My answer: (A)", "A"), (" D", None), ("Because", None), ("b", None), ("", None), ("As a model", None),
])
def test_sampled_reply_letters(reply, letter):
    assert answer_letter(reply, LETTERS) == letter


# -- real OpinionQA: prompts, caches, runs ----------------------------------------------------
def test_prompts_are_the_opinion_template_and_the_versioned_instruction(real_opinionqa):
    (default,) = real_opinionqa
    (text,) = tasks({"expression": "verbalized"}, limit=1)
    item, q = default.items()[0], default.questions[0]
    assert sampled_prompt(q) == "".join(item.request.segments)  # exactly what logprobs reads
    assert verbalized_prompt(q).startswith(item.request.segments[0]) and "JSON object" in verbalized_prompt(q)
    assert isinstance(text, OpinionTextTask) and text.items()[0].prompt == verbalized_prompt(q)
    assert text.version == default.version + text.expression.version_suffix() != default.version


def test_logprobs_is_the_published_task_unchanged(real_opinionqa):
    (default,) = tasks({"expression": "logprobs"})
    (plain,) = tasks({})
    assert type(default) is OpinionTask and default.version == plain.version == "1+opinion-v1"
    assert [i.request for i in default.items()] == [i.request for i in plain.items()]


def test_a_rerun_with_another_method_never_reuses_scores(real_opinionqa, tiny_scorer, tmp_path):
    first = run_tasks(tasks({}), tiny_scorer, tmp_path, progress=False)["tasks"]["opinionqa"]["task_info"]
    again = run_tasks(tasks({}), tiny_scorer, tmp_path, progress=False)["tasks"]["opinionqa"]["task_info"]
    assert first["n_scored"] == 4 and again["n_cached"] == 4
    sampled = run_tasks(tasks({"expression": "sampled", "samples": "3"}), tiny_scorer, tmp_path,
                        progress=False)["tasks"]["opinionqa"]["task_info"]
    assert sampled["n_scored"] == 4 and sampled["n_cached"] == 0
    verbal = run_tasks(tasks({"expression": "verbalized"}), tiny_scorer, tmp_path,
                       progress=False)["tasks"]["opinionqa"]["task_info"]
    assert verbal["n_scored"] == 4 and verbal["n_cached"] == 0
    other_seed = run_tasks(tasks({"expression": "sampled", "samples": "3"}, seed=1), tiny_scorer, tmp_path,
                           progress=False)["tasks"]["opinionqa"]["task_info"]
    assert other_seed["n_cached"] == 0  # the seed draws other answers: its own cache entries
    back = run_tasks(tasks({"expression": "sampled", "samples": "3"}), tiny_scorer, tmp_path,
                     progress=False)["tasks"]["opinionqa"]["task_info"]
    assert back["n_cached"] == 4 and back["n_scored"] == 0


def test_sampled_on_tiny_counts_answers_and_non_answers(real_opinionqa, tiny_scorer, tmp_path):
    res = run_tasks(tasks({"expression": "sampled", "samples": "4"}), tiny_scorer, tmp_path, progress=False)
    m = res["tasks"]["opinionqa"]
    section = m["details"]["expression"]
    assert section["method"] == "sampled" and section["samples"] == 4 and section["seed"] == 0
    assert section["questions_asked"] == 4 and section["imputed"] is False
    assert section["questions_scored"] + section["unparsable"] == 4 == m["counts"]["questions"] + section["unparsable"]
    assert 0.0 <= section["non_answer_rate"] <= 1.0
    records = [json.loads(line) for line in (tmp_path / "items" / "opinionqa.jsonl").read_text().splitlines()]
    assert len(records) == 4 and all(len(r["replies"]) == 4 for r in records)
    # the same run again, from scratch, draws the same replies (seeded per question)
    res2 = run_tasks(tasks({"expression": "sampled", "samples": "4"}), tiny_scorer, tmp_path / "b", progress=False)
    items = "items/opinionqa.jsonl"
    assert (tmp_path / "b" / items).read_text() == (tmp_path / items).read_text()
    assert res2["tasks"]["opinionqa"]["headline"] == m["headline"]


def test_verbalized_on_tiny_scores_no_unreadable_reply(real_opinionqa, tiny_scorer, tmp_path):
    """tiny (1M random parameters) writes no JSON: every question is unparsable, none imputed,
    and the run says so."""
    res = run_tasks(tasks({"expression": "verbalized"}), tiny_scorer, tmp_path, progress=False)
    m = res["tasks"]["opinionqa"]
    section = m["details"]["expression"]
    assert section["unparsable"] == 4 and section["questions_scored"] == 0 and m["units"] == 0
    assert m["headline"]["representativeness"] is None
    assert "could not be read" in section["warning"] and sum(section["unparsable_reasons"].values()) == 4


def test_uniform_cannot_write_text(real_opinionqa, tmp_path):
    from ava.models.scorer import UniformScorer

    with pytest.raises(ValueError, match="'uniform' baseline cannot write text"):
        run_tasks(tasks({"expression": "sampled"}), UniformScorer(), tmp_path, progress=False)
    assert not (tmp_path / "run.json").exists()  # refused before anything was opened


@pytest.mark.slow
def test_smollm2_verbalized_and_sampled_on_opinionqa(real_opinionqa, smollm2_scorer, tmp_path):
    res = run_tasks(tasks({"expression": "verbalized"}, limit=8), smollm2_scorer, tmp_path / "v", progress=False)
    v = res["tasks"]["opinionqa"]["details"]["expression"]
    assert v["questions_asked"] == 8 and v["questions_scored"] + v["unparsable"] == 8
    res = run_tasks(tasks({"expression": "sampled", "samples": "10"}, limit=8), smollm2_scorer, tmp_path / "s",
                    progress=False)
    m = res["tasks"]["opinionqa"]
    s = m["details"]["expression"]
    assert s["questions_scored"] >= 1 and 0.0 <= m["headline"]["representativeness"] <= 1.0


# -- the text probe (every letter-read opinion result) ------------------------------------------
def test_text_probe_on_tiny_adds_fields_and_changes_no_number(real_opinionqa, tiny_scorer, tmp_path):
    from ava.evals.tasks.text_probe import probe_items

    res = run_tasks(tasks({}, limit=60), tiny_scorer, tmp_path, progress=False)["tasks"]["opinionqa"]
    probe = res["details"]["text_agreement"]
    assert probe["measured"] and probe["questions"] == 50 and probe["seed"] == 0 and probe["decoding"] == "greedy"
    assert 0.0 <= probe["agreement"] <= 1.0 and 0.0 <= probe["non_answer_rate"] <= 1.0
    (task,) = tasks({}, limit=60)
    assert len({p.meta["question"] for p in probe_items(task.items(), task.by_key, 0)}) == 50
    assert probe_items(task.items(), task.by_key, 1) != probe_items(task.items(), task.by_key, 0)  # seeded
    # the numbers are those of a run whose scorer writes no text (the probe only adds a field)
    from ava.contracts.scoring import ScoredItem

    class NoText:
        identity, backend = tiny_scorer.identity, "test"

        def score(self, requests, progress=False) -> list[ScoredItem]:
            return tiny_scorer.score(requests)

    bare = run_tasks(tasks({}, limit=60), NoText(), tmp_path / "bare", progress=False)["tasks"]["opinionqa"]
    assert bare["details"]["text_agreement"] == {"measured": False, "reason": "the test backend writes no text"}
    assert bare["headline"] == res["headline"] and bare["intervals"] == res["intervals"]
    again = run_tasks(tasks({}, limit=60), tiny_scorer, tmp_path, progress=False)["tasks"]["opinionqa"]
    assert again["details"]["text_agreement"] == probe  # read back from the cache


def test_text_probe_agreement_by_hand(real_opinionqa):
    """Hand-built replies: the first-token answer is the argmax over all shown letters."""
    from ava.contracts.scoring import ScoredItem
    from ava.evals.tasks.text_probe import probe_items, probe_section

    (task,) = tasks({}, limit=3)
    items = task.items()
    probes = probe_items(items, task.by_key, 0)
    assert len(probes) == 3
    scored = {i.id: ScoredItem(i.id, tuple(0.0 if k == 1 else -5.0 for k in range(len(i.request.options))))
              for i in items}  # B everywhere
    replies = {probes[0].id: {"reply": " B"}, probes[1].id: {"reply": " A. yes"}, probes[2].id: {"reply": "I think"}}
    section = probe_section(probes, replies, scored, task.by_key, 0)
    assert section["agreement"] == pytest.approx(1 / 3, abs=1e-6)
    assert section["agreement_among_answers"] == 0.5 and section["non_answer_rate"] == pytest.approx(1 / 3, abs=1e-6)


def test_a_suite_with_a_text_method_leaves_the_opinion_tasks_out_of_the_uniform_baseline(tiny_scorer, tmp_path,
                                                                                       shared_data):
    from ava.evals.suites import run_suite

    summary = run_suite("quick", tiny_scorer, tmp_path, settings={"expression": "sampled", "samples": "2"},
                        progress=False)
    model = json.loads((tmp_path / "results.json").read_text())["tasks"]
    assert model["opinionqa"]["details"]["expression"]["method"] == "sampled"
    assert model["opinionqa-steer"]["task_info"]["version"] == "1+opinion-v1"  # steering reads letters
    assert model["globalopinionqa"]["task_info"]["n_items"] > 0  # read its own way
    uniform = json.loads((tmp_path / "baseline-uniform" / "results.json").read_text())["tasks"]
    assert "opinionqa" not in uniform and "opinionqa-steer" in uniform and "uniform" in summary["rows"]
    assert sorted(summary["warnings"]) == sorted(t["details"]["expression"]["warning"] for t in model.values()
                                                 if "warning" in t["details"].get("expression", {}))


def test_a_probe_that_cannot_generate_never_fails_the_run(real_opinionqa, tiny_scorer, tmp_path):
    from ava.models.loading import ModelError

    class Broken:
        identity, backend = tiny_scorer.identity, "openai"

        def score(self, requests, progress=False):
            return tiny_scorer.score(requests)

        def generate(self, prompts, **kwargs):
            raise ModelError("server http://x: /v1/completions answered 404")

    res = run_tasks(tasks({}), Broken(), tmp_path, progress=False)["tasks"]["opinionqa"]
    probe = res["details"]["text_agreement"]
    assert probe["measured"] is False and "404" in probe["reason"] and res["units"] == 4
