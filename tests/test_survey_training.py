"""Survey supervision (the survey and mixed arms): the disjoint split on the real bundled Pew data, the
forward-KL letter loss against hand-computed and scorer-measured values, and training on ``tiny``."""

from __future__ import annotations

import json
import math
import re
from dataclasses import replace

import pytest
import torch

from ava.evals.prompts.personas import opinionqa_personas
from ava.evals.tasks.opinion_items import make_request
from ava.training.survey_data import (
    SurveySplitError,
    check_disjoint,
    normalise,
    survey_examples,
    variable_stem,
)


@pytest.fixture(autouse=True)
def datasets_cache(tmp_path, monkeypatch):
    import datasets

    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", str(tmp_path / "hf-datasets"))


@pytest.fixture(scope="module")
def pew():
    """The bundled OpinionQA-XL (trained on) and OpinionQA (evaluated)."""
    from ava.surveys import load_benchmark

    return load_benchmark("opinionqa-xl"), load_benchmark("opinionqa")


@pytest.fixture(scope="module")
def small(pew):
    """32 seeded survey examples in OpinionQA's three persona formats."""
    xl, oq = pew
    return survey_examples(xl, oq, opinionqa_personas(), make_request, seed=0, limit=32)


# -- the split --------------------------------------------------------------------------------
def test_no_opinionqa_question_leaks_into_the_training_set(pew):
    """Every question of the real training set, by wave, key, text and options, against OpinionQA."""
    xl, oq = pew
    one_persona = opinionqa_personas()[:1]
    examples, split = survey_examples(xl, oq, one_persona, make_request, seed=0)
    check_disjoint(examples, xl, oq)  # the experiment's own check passes on every example
    trained = {(e.wave, e.question) for e in examples}
    by_key = {(q.wave, q.key): q for q in xl}
    oq_waves = {q.wave for q in oq}
    oq_keys = {q.key for q in oq}
    oq_texts = {normalise(q.text) for q in oq}
    oq_items = {(normalise(q.text), tuple(normalise(o) for o in q.options)) for q in oq}
    for wave, key in trained:
        q = by_key[(wave, key)]
        assert wave not in oq_waves and key not in oq_keys
        assert normalise(q.text) not in oq_texts
        assert (normalise(q.text), tuple(normalise(o) for o in q.options)) not in oq_items
    assert split.excluded_waves == tuple(sorted(oq_waves, key=lambda w: float(w[1:])))
    assert len(split.excluded_waves) == 15 and len(split.training_waves) == 95
    counts = split.counts
    assert counts["in_evaluated_waves"] == sum(q.wave in oq_waves for q in xl) == 1729
    assert counts["questions"] == counts["in_evaluated_waves"] + counts["repeats_of_evaluated"] + \
        counts["unscorable"] + counts["training_questions"]
    # Pew repeats OpinionQA questions in other waves: every rule finds some, and they are left out
    rules = {rule for _, _, rule in split.repeats}
    assert rules == {"same text and options", "same variable and options",
                     "same options, text a prefix of the other", "same text, other options"}
    assert counts["repeats_of_evaluated"] == len(split.repeats) == 369  # the bundled build's numbers (docs)
    assert counts["unscorable"] == 76 and counts["training_questions"] == 10_327
    assert ("GOVT_ROLE_W18", "GOVT_ROLE_W32", "same variable and options") in split.repeats
    assert ("Q1_W5", "HAPPYLIFE_W36", "same options, text a prefix of the other") in split.repeats
    # one persona: every training question but those its group (Protestants) was not asked about
    assert counts["training_questions"] > 10_000
    assert len(trained) == counts["examples"] == counts["training_questions"] - counts["pairs_without_group_answers"]


def test_check_refuses_evaluated_and_repeated_questions_naming_them(pew, small):
    xl, oq = pew
    examples, _ = small
    persona = opinionqa_personas()[0]
    evaluated = next(q for q in oq if q.key == "SAFECRIME_W26")
    repeat = next(q for q in xl if q.key == "GOVT_ROLE_W18")  # GOVT_ROLE_W32 reworded, wave W18
    leaked = [replace(examples[0], id=f"{q.key}|{persona.key}", question=q.key, wave=q.wave)
              for q in (evaluated, repeat)]
    with pytest.raises(SurveySplitError, match=r"2 question\(s\) also evaluated: SAFECRIME_W26 \(wave W26 is "
                       r"evaluated\); GOVT_ROLE_W18 \(same variable and options: GOVT_ROLE_W32\)"):
        check_disjoint([*examples, *leaked], [*xl, *oq], oq)
    assert variable_stem("GOVT_ROLE_W32") == variable_stem("GOVT_ROLE_W10") == "GOVT_ROLE"
    assert normalise("Which statement comes closer — to your views?") == "which statement comes closer to your views"


def test_no_disjoint_wave_is_one_clear_error(pew):
    _, oq = pew
    with pytest.raises(SurveySplitError, match=r"no question left in a wave disjoint from the evaluated ones "
                                               r"\(1506 questions, waves W26, .*; train on a survey build with other"):
        survey_examples(oq, oq, opinionqa_personas(), make_request, seed=0)


def test_examples_are_the_steering_prompts_with_the_groups_answers(pew, small):
    from ava.evals.tasks.steer_task import SteerTask

    xl, _ = pew
    examples, split = small
    assert len(examples) == 32 == split.counts["examples"] and split.limit == 32
    by_key = {(q.wave, q.key): q for q in xl}
    questions = list(dict.fromkeys(by_key[(e.wave, e.question)] for e in examples))
    steer = {item.id: item.request for item in SteerTask("s", questions, opinionqa_personas()).items()}
    for ex in examples:
        assert steer[ex.id] == ex.request  # the evaluated prompt, character for character, same letters
        g = by_key[(ex.wave, ex.question)].group(ex.attribute, ex.group)
        assert ex.target == pytest.approx([p / sum(g.distribution) for p in g.distribution], abs=1e-12)
        assert len(ex.request.options) >= len(ex.target)  # refusal letters shown, not trained on
    again, _ = survey_examples(xl, pew[1], opinionqa_personas(), make_request, seed=0, limit=32)
    other, _ = survey_examples(xl, pew[1], opinionqa_personas(), make_request, seed=1, limit=32)
    assert [e.id for e in again] == [e.id for e in examples] and [e.id for e in other] != [e.id for e in examples]


# -- the loss ---------------------------------------------------------------------------------
def test_forward_kl_on_letters_by_hand():
    from ava.training.survey_loss import forward_kl, letter_log_probs

    logits = torch.tensor([[0.0, 1.0, 2.0, -1.0, 0.5, 3.0], [1.0, 0.0, 0.0, 0.0, 0.0, 2.0]])
    letters = torch.tensor([[[1, 4], [2, -1], [5, -1]], [[5, -1], [0, -1], [-1, -1]]])  # row 2: 2 options
    mask = torch.tensor([[True, True, True], [True, True, False]])
    target = torch.tensor([[0.5, 0.25, 0.25], [0.0, 1.0, 0.0]])
    got = forward_kl(target, letter_log_probs(logits, letters, mask))
    a = math.log(math.exp(1.0) + math.exp(0.5))  # option A spelled two ways: logsumexp
    z1 = math.exp(a) + math.exp(2.0) + math.exp(3.0)
    q1 = [math.exp(a) / z1, math.exp(2.0) / z1, math.exp(3.0) / z1]
    kl1 = sum(p * math.log(p / q) for p, q in zip([0.5, 0.25, 0.25], q1, strict=True))
    kl2 = -math.log(math.exp(1.0) / (math.exp(2.0) + math.exp(1.0)))  # p = (0, 1): -log q_B
    torch.testing.assert_close(got, torch.tensor([kl1, kl2]), rtol=1e-6, atol=1e-6)
    logits.requires_grad_(True)
    forward_kl(target, letter_log_probs(logits, letters, mask)).sum().backward()
    assert torch.isfinite(logits.grad).all()  # padded options and spellings give no NaN gradient


@pytest.mark.parametrize("chat", [False, True], ids=["plain", "chat"])
def test_the_loss_reads_what_the_scorer_measures(small, chat):
    """The KL the loss trains on equals the KL of the group's answers to the scorer's distribution
    over the substantive options (its own engine, prefix cache and all), batched and left-padded."""
    from ava.models import load_model
    from ava.models.engine import EngineConfig, LetterEngine
    from ava.training.survey_batches import collate
    from ava.training.survey_loss import answer_logits, encode_examples, forward_kl, letter_log_probs

    examples, _ = small
    model, tok = load_model("tiny")
    if chat:
        tok.chat_template = ("{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}{% if not loop.last %}"
                             "</s>{% endif %}{% endfor %}{% if add_generation_prompt %}<|assistant|>{% endif %}")
    scored = LetterEngine(model, tok, EngineConfig(chat=chat)).score([e.request for e in examples[:8]])
    expected = []
    for ex, item in zip(examples, scored, strict=False):
        q = item.renormalised(range(len(ex.target)))
        expected.append(sum(p * math.log(p / qq) for p, qq in zip(ex.target, q, strict=True) if p > 0))
    rows, info = encode_examples(examples[:8], tok, chat, None)
    assert info["n_rows"] == 8 and info["n_too_long"] == 0
    batch = collate(rows, tok.pad_token_id or 0)
    assert (batch["attention_mask"][:, -1] == 1).all() and (batch["attention_mask"] == 0).any()  # left-padded
    with torch.no_grad():
        logits = answer_logits(model, batch["input_ids"], batch["attention_mask"])
        got = forward_kl(batch["target"], letter_log_probs(logits, batch["letter_ids"], batch["option_mask"]))
    torch.testing.assert_close(got.double(), torch.tensor(expected, dtype=torch.float64), rtol=1e-4, atol=1e-5)


def test_step_schedule_gives_each_step_one_source_in_the_stated_ratio():
    from ava.training.survey_batches import StepSchedule

    sched = StepSchedule(n_behaviour=10, n_survey=7, rows_per_step=4, n_steps=20, survey_share=0.25, seed=3)
    order = list(sched)
    assert len(order) == len(sched) == 80
    steps = [order[i : i + 4] for i in range(0, 80, 4)]
    kinds = [{int(i >= 10) for i in s} for s in steps]
    assert all(len(k) == 1 for k in kinds) and sum(k == {1} for k in kinds) == 5
    assert sched.counts(20) == {"survey_steps": 5, "behaviour_steps": 15} and list(sched) == order
    sched.set_epoch(1)
    assert list(sched) != order
    survey_only = StepSchedule(0, 7, 2, 7, 1.0, 0)
    assert sorted(list(survey_only)) == sorted(list(range(7)) * 2)  # each row once before any twice


# -- training ---------------------------------------------------------------------------------
def _cfg(out, data="unused", **sft):
    from ava.training.config import load_config

    base = {"max_steps": 6, "per_device_train_batch_size": 4, "logging_steps": 1, "save_steps": 3,
            "max_length": 512, "learning_rate": 2e-2, "warmup_steps": 0}
    return load_config("tiny", data, out, sft_overrides={**base, **sft})


def _mean_kl(model, tok, examples):
    from ava.training.survey_batches import collate
    from ava.training.survey_loss import encode_examples, survey_loss

    rows, _ = encode_examples(examples, tok, False, None)
    with torch.no_grad():
        return float(survey_loss(model.eval(), collate(rows, tok.pad_token_id or 0)))


def test_survey_training_lowers_the_kl_and_writes_ava_trains_folder(tmp_path, small):
    from ava.models import load_model
    from ava.runs import read_run
    from ava.training.survey_train import SurveyRun, train_survey

    examples, split = small
    base, tok = load_model("tiny")
    before = _mean_kl(base, tok, examples)
    out = tmp_path / "survey"
    outcome = train_survey(_cfg(out, max_steps=16, learning_rate=5e-2), SurveyRun(examples, split, chat=False))
    after = _mean_kl(outcome.model, tok, examples)
    # 0.263 -> 0.248: the 1M-parameter model reaches its floor fast (0.245 after 40 full-batch Adam steps)
    assert after < before * 0.96, (before, after)
    card = json.loads((out / "training_card.json").read_text())
    assert card["objective"] == "survey" and card["base_model"] == "tiny"
    result = card["result"]
    assert result["global_step"] == 16 and result["survey_steps"] == 16 and result["behaviour_steps"] == 0
    tokens = sum(len(r) for r in _token_lists(tok, examples))
    # 16 steps x 4 rows x 2 accumulated (default.yaml): each of the 32 rows 4 times, padding not counted
    assert result["num_input_tokens_seen"] == 4 * tokens
    assert card["data"]["survey"]["split"]["excluded_waves"][0] == "W26"
    assert read_run(out).complete and read_run(out).binding.options["objective"] == "survey"
    reloaded, _ = load_model("tiny", adapter=str(out / "adapter"))  # as the tuned evaluation loads it
    assert _mean_kl(reloaded, tok, examples) == pytest.approx(after, rel=1e-5)


def _token_lists(tok, examples):
    from ava.models.encoding import PromptEncoder

    return [e.ids for e in PromptEncoder(tok).encode([x.request for x in examples])]


def test_mixed_run_resumes_to_identical_results_and_refuses_other_settings(tmp_path, monkeypatch, small):
    """Interrupted after checkpoint-3 of a mixed run, then resumed: card and losses equal an
    uninterrupted run's bit for bit (the step schedule and both sources' orders restored)."""
    from ava.runs import BindingMismatch, RunStatus, read_run
    from ava.training import survey_train
    from ava.training.guard import StopOnNonFiniteLoss
    from ava.training.survey_train import SurveyRun, train_survey
    from test_training import write_instruction_fixture

    examples, split = small
    data = write_instruction_fixture(tmp_path / "data", n_train=4)
    run = SurveyRun(examples, split, chat=False, survey_share=0.5)
    whole = train_survey(_cfg(tmp_path / "whole", data, max_length=96), run)
    assert whole.card["objective"] == "mixed" and whole.card["data"]["behaviour"]["n_samples"] == 16
    assert whole.card["result"]["survey_steps"] == 3 and whole.card["result"]["behaviour_steps"] == 3

    class StopAtCheckpoint(StopOnNonFiniteLoss):
        def on_save(self, args, state, control, **kwargs):
            if state.global_step == 3:
                raise KeyboardInterrupt

    out = tmp_path / "resumed"
    monkeypatch.setattr(survey_train, "StopOnNonFiniteLoss", StopAtCheckpoint)
    with pytest.raises(KeyboardInterrupt):
        train_survey(_cfg(out, data, max_length=96), run)
    assert read_run(out).status == RunStatus.INTERRUPTED
    monkeypatch.undo()
    resumed = train_survey(_cfg(out, data, max_length=96), run)
    assert read_run(out).info["resumed_from"] == "checkpoint-3"
    assert (out / "training_card.json").read_bytes() == (tmp_path / "whole" / "training_card.json").read_bytes()
    def losses(o):
        return [(h["step"], h["loss"]) for h in o.log_history if "loss" in h]
    assert losses(resumed) == losses(whole)
    with pytest.raises(BindingMismatch, match=r"survey_share: 0.5 -> 0.25"):
        train_survey(_cfg(out, data, max_length=96), replace(run, survey_share=0.25))


def test_survey_prompts_longer_than_max_length_are_left_out_and_counted(small):
    from ava.models import load_model
    from ava.training.survey_loss import encode_examples

    examples, _ = small
    _, tok = load_model("tiny")
    lengths = [len(ids) for ids in _token_lists(tok, examples)]
    cut = sorted(lengths)[len(lengths) // 2]
    rows, info = encode_examples(examples, tok, False, cut)
    assert info["n_too_long"] == sum(n > cut for n in lengths) > 0 and len(rows) == info["n_rows"]
    assert all(re.fullmatch(r"[^|]+\|\w+:.+", i) for i in info["too_long"])


@pytest.mark.parametrize(("share", "sft", "message"), [
    (0.0, {}, r"survey share must be in \(0, 1\] \(1: survey only\), got 0.0"),
    (1.5, {}, r"survey share must be in \(0, 1\]"),
    (1.0, {"packing": True}, r"packing is not supported by survey training"),
    (0.5, {"train_sampling_strategy": "group_by_length"}, r"train_sampling_strategy is not supported"),
])
def test_bad_settings_are_refused_before_anything_is_written(tmp_path, small, share, sft, message):
    from ava.training.config import ConfigError
    from ava.training.survey_train import SurveyRun, train_survey

    examples, split = small
    out = tmp_path / "run"
    with pytest.raises(ConfigError, match=message):
        train_survey(_cfg(out, **sft), SurveyRun(examples, split, chat=False, survey_share=share))
    assert not out.exists()
