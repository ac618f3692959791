"""Canonical tokens: a prompt is tokenised whole, as ``tokenizer(text)`` would; letters are the one
token the tokenizer appends to it; what cannot be read faithfully is refused, naming the request."""

from __future__ import annotations

import pytest
import torch

from ava.contracts.scoring import ScoreRequest
from ava.models.encoding import PromptEncoder, PromptError
from ava.models.engine import EngineConfig, LetterEngine
from steering_prompts import steering_requests


def test_prompts_are_tokenised_whole_not_by_segment(smollm2_scorer):
    """Real persona prompts: the engine's tokens are ``tokenizer(text)``, and on these prompts they
    differ from segment-by-segment tokens (the persona ends in a blank line: ``Ċ``,``Ċ`` before
    ``Question``, not ``ĊĊ``), so the whole-string rule is what the tests below exercise."""
    engine, tok = smollm2_scorer.engine, smollm2_scorer.engine.tokenizer
    requests = [r for r in steering_requests(2, every=11) if len(r.segments) == 3]
    for request in requests:
        whole = engine.encode(request)
        assert whole == tok(request.prompt).input_ids
        by_segment = [t for s in request.segments for t in tok(s, add_special_tokens=False).input_ids]
        assert whole != by_segment
    persona, question, _ = requests[0].segments
    assert persona.endswith("\n\n") and question.startswith("Question:")
    assert "ĊĊ" not in tok.convert_ids_to_tokens(engine.encode(requests[0]))


def test_special_tokens_like_the_tokenizer_once(tiny_scorer):
    """tiny's tokenizer adds BOS: the prompt gets it once, also when the text already starts with it."""
    engine, tok = tiny_scorer.engine, tiny_scorer.engine.tokenizer
    plain = ScoreRequest("p", ("Question: x?\n", "Answer:"), ("A", "B"))
    assert engine.encode(plain) == tok("Question: x?\nAnswer:").input_ids
    assert engine.encode(plain)[0] == tok.bos_token_id
    with_bos = ScoreRequest("b", (tok.bos_token + "Question: x?\n", "Answer:"), ("A", "B"))
    assert engine.encode(with_bos).count(tok.bos_token_id) == 1


def test_chat_template_writing_bos_gets_no_second_one(tiny_scorer):
    """A template that writes BOS itself is tokenised with add_special_tokens=False, as
    ``apply_chat_template(tokenize=True)`` and TRL do: exactly one BOS."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_scorer.engine.tokenizer.name_or_path)
    tok.chat_template = (
        "{{ bos_token }}{% for m in messages %}[{{ m['role'] }}] {{ m['content'] }}"
        "{% if not loop.last or m['role'] == 'user' %}{{ '\\n' }}{% endif %}{% endfor %}"
        "{% if add_generation_prompt %}[assistant] {% endif %}"
    )
    encoder = PromptEncoder(tok, chat=True)
    request = ScoreRequest("c", ("Question: x?\nA. y\nB. n\n", "Answer:"), ("A", "B"))
    text = encoder.text(request)
    assert text == tok.bos_token + "[user] Question: x?\nA. y\nB. n\n\n[assistant] Answer:"
    (encoded,) = encoder.encode([request])
    assert list(encoded.ids) == tok.apply_chat_template(
        [{"role": "user", "content": "Question: x?\nA. y\nB. n\n"}, {"role": "assistant", "content": "Answer:"}],
        continue_final_message=True,
        tokenize=True,
        return_dict=True,
    )["input_ids"]
    assert list(encoded.ids).count(tok.bos_token_id) == 1


@pytest.mark.parametrize(
    ("cue", "spelled"),
    [("Answer:", ["A", "ĠA"]), ("my answer would be (", ["A", "ĠA"]), ("Answer:\n\n", ["ĠA"])],
)
def test_letter_is_the_token_appended_to_the_prompt(smollm2_scorer, cue, spelled):
    """After ':' and '(' both spellings add one token; after a blank line SmolLM2 writes
    ``"\\n\\nA"`` as ``Ċ``,``Ċ``,``A`` (re-tokenising the prompt's ``ĊĊ``), so only ``" A"`` is
    read there: it is the only spelling that follows the prompt's own tokens."""
    engine = smollm2_scorer.engine
    request = ScoreRequest("q", ("Question: x?\nA. y\nB. n\n", cue), ("A", "B"))
    (encoded,) = engine.encoder.encode([request])
    assert engine.tokenizer.convert_ids_to_tokens(list(encoded.letters[0])) == spelled


# -- bad input: one clear error naming the request ---------------------------------------------
def test_empty_prompt_is_refused():
    for segments in [(), ("",), ("", ""), ("  \n", "")]:
        with pytest.raises(ValueError, match="request 'e1': empty prompt"):
            ScoreRequest("e1", segments, ("A", "B"))


def test_prompt_longer_than_the_context_window_is_refused(tiny_scorer):
    engine = tiny_scorer.engine
    limit = engine.model.config.max_position_embeddings
    long = ScoreRequest("too-long", ("Question: " + "why " * limit + "?\n", "Answer:"), ("A", "B"))
    n = len(engine.tokenizer(long.prompt).input_ids)
    with pytest.raises(PromptError, match=rf"request 'too-long': the prompt is {n} tokens, .* window of {limit}"):
        engine.score([long])


def test_left_truncation_when_asked_scores_the_last_tokens(tiny_scorer):
    engine = tiny_scorer.engine
    limit = engine.model.config.max_position_embeddings
    long = ScoreRequest("too-long", ("Question: " + "why " * limit + "?\n", "Answer:"), ("A", "B"))
    cut = LetterEngine(engine.model, engine.tokenizer, EngineConfig(truncate="left"))
    (item,) = cut.score([long])
    ids = engine.tokenizer(long.prompt).input_ids[-limit:]
    with torch.inference_mode():
        logprobs = torch.log_softmax(engine.model(input_ids=torch.tensor([ids])).logits[0, -1], dim=-1)
    (enc,) = cut.encoder.encode([long])
    assert list(enc.ids) == ids
    expected = [float(torch.logsumexp(logprobs[list(t)], dim=0)) for t in enc.letters]
    assert item.logprobs == pytest.approx(expected, abs=1e-5)
    with pytest.raises(ValueError, match="truncate must be one of"):
        LetterEngine(engine.model, engine.tokenizer, EngineConfig(truncate="right"))


def test_letter_that_cannot_follow_the_prompt_is_refused(smollm2_scorer):
    engine = smollm2_scorer.engine
    request = ScoreRequest("bad-letter", ("Question: x?\nA1. y\nA2. n\n", "Answer:"), ("A1", "A2"))
    with pytest.raises(PromptError, match=r"request 'bad-letter': option 'A1' cannot be read as one token"):
        engine.score([request])


def test_prompt_ending_in_a_space_is_refused(smollm2_scorer):
    request = ScoreRequest("space", ("Question: x?\nA. y\nB. n\n", "Answer: "), ("A", "B"))
    with pytest.raises(PromptError, match=r"request 'space': the prompt ends in a space"):
        smollm2_scorer.engine.score([request])
