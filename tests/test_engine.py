"""The letter engine is exact: every path matches one-forward-per-option, batch-1 scoring on the
whole-string tokens of real prompts."""

from __future__ import annotations

import math

import pytest

from ava.contracts.scoring import ScoreRequest
from ava.models.engine import EngineConfig, LetterEngine
from ava.models.prefix_tree import computed_tokens
from ava.models.reference import reference_score
from steering_prompts import max_prob_diff, steering_requests


def _paths(engine: LetterEngine) -> dict[str, LetterEngine]:
    """The engine's code paths: prefix tree, flat batches, batch size 1, a cache budget so small
    that the tree is cut into many chunks, and a token budget that makes many small batches."""

    def other(**kw) -> LetterEngine:
        return LetterEngine(engine.model, engine.tokenizer, EngineConfig(**kw))

    return {
        "tree": engine,
        "flat": other(use_prefix_cache=False),
        "batch 1": other(max_batch_size=1),
        "many chunks": other(max_cache_mb=0.05 if engine.model.config.hidden_size < 100 else 2),
        "small batches": other(max_batch_tokens=64),
    }


def test_every_path_matches_reference_tiny(tiny_scorer):
    engine = tiny_scorer.engine
    requests = steering_requests(2, every=4)
    ref = reference_score(engine, requests)
    paths = _paths(engine)
    assert len(paths["many chunks"].plan(requests)) > 1
    for name, path in paths.items():
        ours = path.score(requests)
        assert max_prob_diff(ours, ref) <= 1e-5, name
        # the raw letter log-probs agree too, so letter mass is exact as well
        for x, y in zip(ours, ref, strict=True):
            assert abs(x.letter_mass - y.letter_mass) <= 1e-5 * max(1.0, y.letter_mass), name


@pytest.mark.slow
def test_every_path_matches_reference_smollm2_on_opinionqa(smollm2_scorer):
    """Persona x question prompts from the real OpinionQA steering inputs, every engine path."""
    engine = smollm2_scorer.engine
    requests = steering_requests(2, every=9)
    ref = reference_score(engine, requests)
    paths = _paths(engine)
    assert len(paths["many chunks"].plan(requests)) > 1
    for name, path in paths.items():
        assert max_prob_diff(path.score(requests), ref) <= 1e-5, name
    # a real instruction model answers these: most of its mass is on the letters
    mass = sorted(s.letter_mass for s in engine.score(requests))
    assert mass[len(mass) // 2] > 0.1


def test_results_in_input_order(tiny_scorer):
    requests = steering_requests(2, every=6)[::-1]
    assert [s.id for s in tiny_scorer.engine.score(requests)] == [r.id for r in requests]


def test_prefix_tree_computes_each_shared_run_once(tiny_scorer):
    """3 questions x (unsteered + 6 of the 66 personas): the tree forwards each distinct token
    prefix once, so a persona's tokens are computed once, not once per question."""
    engine = tiny_scorer.engine
    requests = steering_requests(3, every=11)
    seqs = [tuple(engine.encode(r)) for r in requests]
    exact = LetterEngine(engine.model, engine.tokenizer, EngineConfig(min_prefix_tokens=0))
    (root,) = exact.plan(requests)
    assert sorted(i for node in root.walk() for i in node.ends) == list(range(len(requests)))
    distinct_prefixes = {s[:k] for s in seqs for k in range(1, len(s) + 1)}
    assert computed_tokens(root) == len(distinct_prefixes)
    by_persona: dict[str, list[tuple[int, ...]]] = {}
    for r, s in zip(requests, seqs, strict=True):
        by_persona.setdefault(r.id.split("|", 1)[1], []).append(s)
    assert len(by_persona) == 7 and all(len(v) == 3 for v in by_persona.values())
    shared = sum(2 * len(_common_prefix(v)) for v in by_persona.values())  # computed once instead of 3 times
    assert computed_tokens(root) <= sum(map(len, seqs)) - shared
    # the default plan recomputes tiny shared runs instead of caching them: a little more work
    assert computed_tokens(root) <= computed_tokens(engine.plan(requests)[0]) < sum(map(len, seqs))
    flat = LetterEngine(engine.model, engine.tokenizer, EngineConfig(use_prefix_cache=False))
    assert computed_tokens(flat.plan(requests)[0]) == sum(map(len, seqs))


def _common_prefix(seqs: list[tuple[int, ...]]) -> tuple[int, ...]:
    n = 0
    while all(len(s) > n and s[n] == seqs[0][n] for s in seqs):
        n += 1
    return seqs[0][:n]


def test_probabilities_are_renormalised_over_options(tiny_scorer):
    request = ScoreRequest("q", ("Question: pick one\nA. x\nB. y\nC. z\n", "Answer:"), ("A", "B", "C"))
    (item,) = tiny_scorer.score([request])
    assert math.isclose(sum(item.probs), 1.0, rel_tol=1e-9)
    assert 0.0 < item.letter_mass < 1.0
    assert item.renormalised([0, 1])[0] == pytest.approx(item.probs[0] / (item.probs[0] + item.probs[1]))


def test_chat_matches_reference(smollm2_scorer):
    engine = smollm2_scorer.engine
    chat = LetterEngine(engine.model, engine.tokenizer, EngineConfig(chat=True))
    requests = [
        ScoreRequest("q", ("Question: yes or no?\nA. yes\nB. no\n", "Answer:"), ("A", "B")),
        ScoreRequest("one segment", ("Question: yes or no?\nA. yes\nB. no\nAnswer with a letter.",), ("A", "B")),
    ]
    assert max_prob_diff(chat.score(requests), reference_score(chat, requests)) <= 1e-5


def test_models_without_a_plain_cache_are_scored_flat(tiny_scorer):
    """Sliding-window or recurrent caches cannot be padded and sliced: such models get the flat
    plan (nothing reused), with the same scores."""
    engine = tiny_scorer.engine
    requests = steering_requests(2, every=8)
    other = LetterEngine(engine.model, engine.tokenizer)
    other._cache_layout = (False, 1)  # what the probe finds for such a model
    (plan,) = other.plan(requests)
    assert computed_tokens(plan) == sum(len(engine.encode(r)) for r in requests)
    assert max_prob_diff(other.score(requests), engine.score(requests)) <= 1e-5
