"""ava reads the same distributions as lm-evaluation-harness 0.4.13 given the same strings.

lm-eval's HFLM scores ``(context, continuation)`` string pairs; a user comparing tools hands it
the prompt text and a letter (" A" or "A"). On real OpinionQA steering prompts both spellings'
log-likelihoods, combined, must give ava's probabilities within 1e-5.
"""

from __future__ import annotations

import sys

import pytest

from ava.contracts.scoring import ScoreRequest
from ava.models.engine import EngineConfig, LetterEngine
from conftest import ROOT
from steering_prompts import max_prob_diff, steering_requests

pytest.importorskip("lm_eval", reason="lm-eval is a dev dependency: pip install -e '.[dev]'")
sys.path.insert(0, str(ROOT / "perf"))
from scoring import lm_eval_score  # noqa: E402


@pytest.mark.slow
def test_matches_lm_eval_given_strings_on_opinionqa(smollm2_scorer):
    engine = smollm2_scorer.engine
    requests = steering_requests(3, every=7)
    assert max_prob_diff(engine.score(requests), lm_eval_score(engine, requests, verify=True)) <= 1e-5


def test_matches_lm_eval_given_strings_in_chat(smollm2_scorer):
    """The rendered chat prompt handed to lm-eval as a string (SmolLM2's template writes its own
    specials and its tokenizer adds none, so both tools read the same tokens)."""
    engine = smollm2_scorer.engine
    chat = LetterEngine(engine.model, engine.tokenizer, EngineConfig(chat=True))
    requests = [
        ScoreRequest("q1", ("Question: Is it raining?\nA. Yes\nB. No\n", "Answer:"), ("A", "B")),
        ScoreRequest("q2", ("Question: Pick a colour.\nA. Red\nB. Blue\nC. Green\n", "my answer would be ("),
                     ("A", "B", "C")),
    ]
    assert max_prob_diff(chat.score(requests), lm_eval_score(chat, requests, verify=True)) <= 1e-5
