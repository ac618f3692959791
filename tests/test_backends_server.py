"""The openai backend against a real vLLM server (tests/servers.py): exact scores equal the
in-process engine's on real OpinionQA prompts, top-k scores follow the OpinionQA rule with their
coverage recorded, and generation matches transformers' greedy decoding."""

from __future__ import annotations

import math

import pytest

from ava.models.backends.factory import load_backend_scorer
from ava.models.backends.logprob_scorer import CoverageError
from ava.models.backends.settings import BackendSettings
from ava.models.backends.source import TokenPrompt
from ava.models.engine import EngineConfig, LetterEngine
from ava.models.options import ModelOptions
from steering_prompts import max_prob_diff, steering_requests

pytestmark = pytest.mark.slow


def server_scorer(base_url: str, chat: bool = False, **settings):
    where = BackendSettings("openai", base_url=base_url, served_model="smollm2", **settings)
    return load_backend_scorer(ModelOptions("smollm2"), where, chat=chat)


@pytest.fixture(scope="module")
def prompts():
    return steering_requests(1)  # one question, unsteered and under all 66 personas: 67 prompts


@pytest.fixture(scope="module")
def reference(smollm2_scorer, prompts):
    return smollm2_scorer.score(prompts)


def test_exact_mode_equals_the_engine_on_opinionqa(vllm_server, prompts, reference):
    scorer = server_scorer(vllm_server.base_url)
    ours = scorer.score(prompts)
    assert scorer.source.chosen_ids  # vLLM's logprob_token_ids: one request per prompt
    assert max_prob_diff(ours, reference) <= 1e-4
    for a, b in zip(ours, reference, strict=True):
        assert max(abs(x - y) for x, y in zip(a.logprobs, b.logprobs, strict=True)) <= 1e-4


def test_exact_mode_in_chat_framing(vllm_server, smollm2_scorer, prompts):
    chat = LetterEngine(smollm2_scorer.engine.model, smollm2_scorer.engine.tokenizer, EngineConfig(chat=True))
    some = prompts[::8]
    assert max_prob_diff(server_scorer(vllm_server.base_url, chat=True).score(some), chat.score(some)) <= 1e-4


def test_exact_mode_by_top_k_and_echo(fault_proxy, prompts, reference):
    """A server without chosen-token log-probabilities: letters from the top-k, the rest echoed
    (lm-eval's route); top-k 0 echoes every spelling."""
    some, ref = prompts[::9], reference[::9]
    fault_proxy.reset(no_chosen_ids=True)
    scorer = server_scorer(fault_proxy.base_url)
    assert max_prob_diff(scorer.score(some), ref) <= 1e-4
    assert not scorer.source.chosen_ids
    echoes = fault_proxy.faults.completions
    assert max_prob_diff(server_scorer(fault_proxy.base_url, top_k=0).score(some[:3]), ref[:3]) <= 1e-4
    # every spelling echoed: 2 spellings x 4 options for each of the 3 prompts (+ the probe's)
    assert fault_proxy.faults.completions - echoes >= 3 * 8


def test_topk_mode_follows_the_opinionqa_rule(vllm_server, prompts, reference):
    scorer = server_scorer(vllm_server.base_url, mode="topk", top_k=5, min_coverage=0.0)
    ours = scorer.score(prompts)
    tops = scorer.source.top_logprobs([TokenPrompt(r.id, tuple(scorer.encoder.encode([r])[0].ids)) for r in prompts], 5)
    assert sum(i.letters_missing for i in ours) > 0  # top-5 misses letters here: the rule is exercised
    for item, exact, top in zip(ours, reference, tops, strict=True):
        shown = [math.exp(v) for v in top.values()]
        assert item.covered_mass == pytest.approx(sum(shown), abs=1e-9)
        p_min, missing = min(shown), item.letters_missing
        fill = math.log(min(p_min, max(0.0, 1 - sum(shown)) / missing)) if missing else None
        for got, want in zip(item.logprobs, exact.logprobs, strict=True):
            if fill is not None and got == pytest.approx(fill, abs=1e-12):
                # a letter filled was truly outside the top-k: each of its (up to two) spellings below p_min
                assert math.exp(want) <= 2 * p_min + 1e-6
            else:  # a letter shown: exact up to a spelling outside the top-k (< the smallest shown)
                assert 0 <= math.exp(want) - math.exp(got) <= p_min + 1e-5
    assert scorer.letters_seen == sum(len(r.options) for r in prompts)


def test_topk_run_below_coverage_fails(vllm_server, prompts):
    scorer = server_scorer(vllm_server.base_url, mode="topk", top_k=1, min_coverage=0.99)
    with pytest.raises(CoverageError, match=r"top-1 log-probabilities showed only .* of the option letters"):
        scorer.score(prompts[:10])


def test_generation_matches_transformers_greedy(vllm_server, smollm2_scorer, prompts):
    texts = [r.prompt for r in prompts[:3]]
    server = server_scorer(vllm_server.base_url)
    got = server.generate(texts, max_new_tokens=8)
    assert got == smollm2_scorer.generate(texts, max_new_tokens=8)
    sampled = server.generate(texts[:1], max_new_tokens=8, temperature=1.0, n=3, seed=11)
    assert len(sampled[0]) == 3 and sampled == server.generate(texts[:1], max_new_tokens=8, temperature=1.0, n=3,
                                                                seed=11)
