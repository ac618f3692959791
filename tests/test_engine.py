"""The letter engine is exact (matches one-forward-per-option, batch-1 scoring) on real prompts."""

from __future__ import annotations

import math

import pytest

from ava.contracts.scoring import ScoredItem, ScoreRequest
from ava.models.engine import EngineConfig, LetterEngine
from ava.models.reference import reference_score


def _real_requests(n_questions: int, every: int = 1) -> list[ScoreRequest]:
    """OpinionQA steering prompts (real questions and personas, bundled build): the first
    ``n_questions``, unsteered and under every ``every``-th persona."""
    from ava.evals.tasks.opinionqa import steering_requests

    requests = steering_requests(n_questions)
    personas = list(dict.fromkeys(r.id.split("|", 1)[1] for r in requests))
    keep = set(personas[::every])
    return [r for r in requests if r.id.split("|", 1)[1] in keep]


def _max_prob_diff(a: list[ScoredItem], b: list[ScoredItem]) -> float:
    assert [x.id for x in a] == [y.id for y in b]
    return max(abs(p - q) for x, y in zip(a, b, strict=True) for p, q in zip(x.probs, y.probs, strict=True))


def test_engine_matches_reference_tiny(tiny_scorer):
    engine = tiny_scorer.engine
    requests = _real_requests(2, every=4)
    ours = engine.score(requests)
    ref = reference_score(engine, requests)
    assert _max_prob_diff(ours, ref) <= 1e-5
    # the raw letter log-probs agree too, so letter mass is exact as well
    for x, y in zip(ours, ref, strict=True):
        assert abs(x.letter_mass - y.letter_mass) <= 1e-5 * max(1.0, y.letter_mass)


@pytest.mark.slow
def test_engine_matches_reference_smollm2_on_opinionqa(smollm2_scorer):
    """Persona x question prompts from the real OpinionQA steering inputs, every engine path."""
    engine = smollm2_scorer.engine
    requests = _real_requests(2, every=9)
    ref = reference_score(engine, requests)
    cached = engine.score(requests)
    flat = LetterEngine(engine.model, engine.tokenizer, EngineConfig(use_prefix_cache=False)).score(requests)
    batch1 = LetterEngine(engine.model, engine.tokenizer, EngineConfig(max_batch_size=1)).score(requests)
    for path in (cached, flat, batch1):
        assert _max_prob_diff(path, ref) <= 1e-5
    # a real instruction model answers these: most of its mass is on the letters
    assert sorted(s.letter_mass for s in cached)[len(cached) // 2] > 0.1


def test_results_in_input_order_and_independent_of_batching(tiny_scorer):
    engine = tiny_scorer.engine
    requests = _real_requests(2, every=6)[::-1]
    small = LetterEngine(engine.model, engine.tokenizer, EngineConfig(max_batch_tokens=64)).score(requests)
    big = engine.score(requests)
    assert [s.id for s in big] == [r.id for r in requests]
    assert _max_prob_diff(small, big) <= 1e-5


def test_prefix_tree_computes_each_shared_run_once(tiny_scorer):
    """3 questions x (unsteered + 6 of the 66 personas): each persona is computed once, not per
    question, and every token the plan forwards belongs to some prompt."""
    from ava.models.prefix_tree import computed_tokens

    engine = tiny_scorer.engine
    requests = _real_requests(3, every=11)
    seqs = [engine.encode(r) for r in requests]
    (root,) = engine.plan(requests)
    assert sorted(i for node in root.walk() for i in node.ends) == list(range(len(requests)))
    personas = {engine.token_segments(r)[1] for r in requests if len(r.segments) > 2}
    assert len(personas) == 6
    persona_tokens = sum(map(len, personas))
    question_tokens = sum(len(s) for s, r in zip(seqs, requests, strict=True)) - 3 * persona_tokens
    # better than sharing whole personas only: shared question stems and option blocks count too
    assert computed_tokens(root) < persona_tokens + question_tokens < sum(map(len, seqs))
    flat = LetterEngine(engine.model, engine.tokenizer, EngineConfig(use_prefix_cache=False))
    assert computed_tokens(flat.plan(requests)[0]) == sum(map(len, seqs))


def test_small_cache_budget_splits_the_tree_and_stays_exact(tiny_scorer):
    engine = tiny_scorer.engine
    requests = _real_requests(2, every=6)
    small = LetterEngine(engine.model, engine.tokenizer, EngineConfig(max_cache_mb=0.05))
    assert len(small.plan(requests)) > 1
    assert _max_prob_diff(small.score(requests), engine.score(requests)) <= 1e-5


def test_probabilities_are_renormalised_over_options(tiny_scorer):
    request = ScoreRequest("q", ("Question: pick one\nA. x\nB. y\nC. z\n", "Answer:"), ("A", "B", "C"))
    (item,) = tiny_scorer.score([request])
    assert math.isclose(sum(item.probs), 1.0, rel_tol=1e-9)
    assert 0.0 < item.letter_mass < 1.0
    assert item.renormalised([0, 1])[0] == pytest.approx(item.probs[0] / (item.probs[0] + item.probs[1]))


def test_both_letter_spellings_are_found(tiny_scorer, smollm2_scorer):
    # SentencePiece (tiny): "A" glued to the cue and the word-initial piece "▁A"
    tok = tiny_scorer.engine.tokenizer
    assert sorted(tok.convert_ids_to_tokens(list(tiny_scorer.engine.letter_ids("A")))) == ["A", "▁A"]
    # byte-level BPE (smollm2): "A" and " A" ("ĠA")
    tok = smollm2_scorer.engine.tokenizer
    assert sorted(tok.decode([i]) for i in smollm2_scorer.engine.letter_ids("A")) == [" A", "A"]


def test_chat_frame_puts_cue_in_assistant_turn(smollm2_scorer):
    engine = smollm2_scorer.engine
    chat = LetterEngine(engine.model, engine.tokenizer, EngineConfig(chat=True))
    request = ScoreRequest("q", ("Question: yes or no?\nA. yes\nB. no\n", "Answer:"), ("A", "B"))
    segments = chat.segments_of(request)
    text = "".join(segments)
    assert text.index("Question") < text.index("<|im_start|>assistant") < text.index("Answer:")
    assert text.endswith("Answer:")
    (item,) = chat.score([request])
    (ref,) = reference_score(chat, [request])
    assert max(abs(a - b) for a, b in zip(item.probs, ref.probs, strict=True)) <= 1e-5


def test_chat_needs_a_template(tiny_scorer):
    from ava.models.loading import ModelError

    with pytest.raises(ModelError, match="no chat template"):
        LetterEngine(tiny_scorer.engine.model, tiny_scorer.engine.tokenizer, EngineConfig(chat=True))


def test_models_without_a_plain_cache_are_scored_flat(tiny_scorer):
    """Sliding-window or recurrent caches cannot be padded and sliced: such models get the flat
    plan (nothing reused), with the same scores."""
    from ava.models.prefix_tree import computed_tokens

    engine = tiny_scorer.engine
    requests = _real_requests(2, every=8)
    other = LetterEngine(engine.model, engine.tokenizer)
    other._cache_layout = (False, 1)  # what the probe finds for such a model
    (plan,) = other.plan(requests)
    assert computed_tokens(plan) == sum(len(engine.encode(r)) for r in requests)
    assert _max_prob_diff(other.score(requests), engine.score(requests)) <= 1e-5
