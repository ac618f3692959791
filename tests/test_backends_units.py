"""Backends without a server: the OpinionQA fill rule on hand-computed values, the reply schemas
(OpenAI's, vLLM's token ids, llama.cpp's), settings and identities, and generation in process."""

from __future__ import annotations

import math

import pytest

from ava.models.backends import replies
from ava.models.backends.settings import BackendSettings
from ava.models.backends.topk import read_topk
from ava.models.loading import ModelError
from ava.models.options import ModelOptions


def test_topk_rule_by_hand():
    # top-3 shown: token 10 (p=.5), 11 (.3), 12 (.1); covered .9, remaining .1
    top = {10: math.log(0.5), 11: math.log(0.3), 12: math.log(0.1)}
    # letters: A spelled by 10 or 20, B by 11, C by 30 (missing), D by 31 (missing)
    item = read_topk("q", top, [(10, 20), (11,), (30,), (31,)])
    assert item.letters_missing == 2
    assert item.covered_mass == pytest.approx(0.9)
    # found letters: their shown spellings; missing: log(min(.1, .1 / 2)) = log(.05)
    assert item.logprobs == pytest.approx((math.log(0.5), math.log(0.3), math.log(0.05), math.log(0.05)))
    # the smallest shown probability caps the fill: remaining .1 over one missing letter -> min(.1, .1)
    assert read_topk("q", top, [(10,), (30,)]).logprobs[1] == pytest.approx(math.log(0.1))
    # two shown spellings of one letter combine (logsumexp)
    assert read_topk("q", top, [(10, 12)]).logprobs[0] == pytest.approx(math.log(0.6))


def test_topk_rule_with_no_mass_left_stays_finite():
    top = {1: math.log(0.75), 2: math.log(0.25)}
    item = read_topk("q", top, [(1,), (3,)])
    assert math.isfinite(item.logprobs[1]) and item.probs[0] > 0.999999


def _completion(logprobs):
    return {"choices": [{"index": 0, "text": "x", "logprobs": logprobs}], "usage": {"prompt_tokens": 3}}


def test_reply_schemas():
    # vLLM with return_tokens_as_token_ids: tokens named by id
    vllm = _completion({"tokens": ["token_id:5"], "token_logprobs": [-0.1],
                        "top_logprobs": [{"token_id:5": -0.1, "token_id:7": -2.5}]})
    assert replies.top_logprobs(vllm) == {5: -0.1, 7: -2.5}
    # OpenAI's legacy completions: tokens as text
    assert replies.top_logprobs(_completion({"top_logprobs": [{" A": -0.2}]})) == {" A": -0.2}
    # llama.cpp's server: the chat schema under /v1/completions, ids given
    llama = _completion({"content": [{"id": 5, "token": " A", "logprob": -0.3,
                                      "top_logprobs": [{"id": 5, "token": " A", "logprob": -0.3},
                                                       {"id": 9, "token": " B", "logprob": -1.7}]}]})
    assert replies.top_logprobs(llama) == {5: -0.3, 9: -1.7}
    # llama.cpp ignores echo: its reply has no token_logprobs for the prompt
    with pytest.raises(replies.NotGiven, match="does not echo"):
        replies.echoed(llama, 3)


@pytest.mark.parametrize("reply, needle", [
    ({"choices": []}, "no 'choices'"),
    (_completion(None), "no 'logprobs'"),
    (_completion({"top_logprobs": [{"token_id:1": math.nan}]}), "nan"),
    (_completion({"top_logprobs": [{"token_id:1": 0.7}]}), "not a log-probability"),
    (_completion({"top_logprobs": [{"token_id:1": "x"}]}), "not a number"),
])
def test_broken_replies_are_named(reply, needle):
    with pytest.raises(replies.ReplyError, match=needle):
        replies.top_logprobs(reply)


def test_echo_reads_the_prompt_tokens():
    reply = _completion({"tokens": ["token_id:1", "token_id:2", "token_id:3"], "token_logprobs": [None, -1.0, -2.0]})
    assert replies.echoed(reply, 3) == ([1, 2, 3], [None, -1.0, -2.0])
    assert replies.prompt_tokens(reply) == 3


def test_default_backend_keeps_its_identity():
    """transformers: the identity (every cache key) is what it was before backends existed."""
    from ava.models.backends.factory import backend_identity

    opts = ModelOptions("smollm2")
    assert backend_identity(opts, BackendSettings(), chat=True) == opts.identity(chat=True)


def test_identities_name_backend_mode_and_served_model():
    from ava.models.backends.factory import backend_identity

    opts = ModelOptions("smollm2")
    base = opts.identity(chat=False)
    server = dict(backend="openai", base_url="http://127.0.0.1:1/v1", served_model="sm")
    exact = backend_identity(opts, BackendSettings(**server), chat=False)
    top = backend_identity(opts, BackendSettings(**server, mode="topk", top_k=5), chat=False)
    assert exact == f"openai:exact:sm|{base}" and top == f"openai:top5:sm|{base}"
    moved = BackendSettings(**{**server, "base_url": "http://10.0.0.1:9/v1"})
    assert backend_identity(opts, moved, chat=False) == exact  # where it runs is recorded, not bound


@pytest.mark.parametrize("kwargs, needle", [
    ({"backend": "tgi"}, "unknown --backend"),
    ({"backend": "openai"}, "needs --base-url"),
    ({"base_url": "http://x/v1"}, "use them with --backend openai"),
    ({"mode": "topk"}, "reads every letter exactly"),
    ({"backend": "openai", "base_url": "localhost:8000"}, "http://"),
    ({"backend": "openai", "base_url": "http://x/v1", "mode": "topk", "top_k": 0}, "at least 1"),
    ({"backend": "openai", "base_url": "http://x/v1", "min_coverage": 2}, "between 0 and 1"),
    ({"backend": "openai", "base_url": "http://x/v1", "api_key_env": "AVA_NO_SUCH_VARIABLE"}, "is not set"),
])
def test_bad_settings(kwargs, needle):
    with pytest.raises(ModelError, match=needle):
        BackendSettings(**kwargs)


def test_generate_in_process_is_greedy_and_seeded(tiny_scorer):
    prompts = ["Question: Is the sky blue?\nAnswer:", "Hello"]
    greedy = tiny_scorer.generate(prompts, max_new_tokens=5, n=2)
    assert len(greedy) == 2 and all(len(g) == 2 and g[0] == g[1] for g in greedy)
    sampled = tiny_scorer.generate(prompts, max_new_tokens=5, temperature=1.0, n=3, seed=7)
    assert sampled == tiny_scorer.generate(prompts, max_new_tokens=5, temperature=1.0, n=3, seed=7)
    assert all(len(s) == 3 for s in sampled)
    # a prompt's samples depend on its text and its seed only: alone, or batched with others under
    # their own seeds, the same texts (transformers' do_sample would draw every row of a batch from
    # torch's one generator)
    alone = tiny_scorer.generate(prompts[:1], max_new_tokens=5, temperature=1.0, n=3, seed=7)
    assert sampled[0] == alone[0]
    assert tiny_scorer.generate(prompts, max_new_tokens=5, temperature=1.0, n=3, seed=[7, 99])[0] == alone[0]
    assert tiny_scorer.generate(prompts, max_new_tokens=5, temperature=1.0, n=3, seed=[99, 7])[1] == \
        tiny_scorer.generate(prompts[1:], max_new_tokens=5, temperature=1.0, n=3, seed=7)[0]
    assert sampled[0] != tiny_scorer.generate(prompts[:1], max_new_tokens=5, temperature=1.0, n=3, seed=8)[0]
    with pytest.raises(ValueError, match="one seed, or one per prompt"):
        tiny_scorer.generate(prompts, max_new_tokens=5, temperature=1.0, n=3, seed=[7])
    # greedy text equals transformers' own greedy continuation of the canonical tokens
    engine = tiny_scorer.engine
    ids = engine.tokenizer(prompts[0], return_tensors="pt").input_ids
    ref = engine.model.generate(ids, max_new_tokens=5, do_sample=False, pad_token_id=engine.pad_id)
    assert greedy[0][0] == engine.tokenizer.decode(ref[0, ids.shape[1]:], skip_special_tokens=True)
    # and one prompt's samples are transformers' own sampling after torch.manual_seed(seed): one
    # shared prefill and the prompt's own generator change the cost, not the draws
    import torch

    torch.manual_seed(7)
    ref = engine.model.generate(ids, max_new_tokens=5, do_sample=True, num_return_sequences=3, temperature=1.0,
                                top_k=0, top_p=1.0, pad_token_id=engine.pad_id)
    assert sampled[0] == [engine.tokenizer.decode(r[ids.shape[1]:], skip_special_tokens=True) for r in ref]
