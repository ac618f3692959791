"""The straightforward reference scorer: one forward pass per option, batch 1.

This is how the published scripts read a model's opinion. It exists to check the engine
(exactness tests) and to time the naive method (benchmarks); never use it for real work.
It tokenises prompts with the engine's own segment rule so the comparison is like for like.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from ava.contracts.scoring import ScoredItem, ScoreRequest
from ava.models.engine import LetterEngine


@torch.inference_mode()
def reference_score(engine: LetterEngine, requests: Sequence[ScoreRequest]) -> list[ScoredItem]:
    """Score each option with its own full forward pass over prompt + letter, batch 1.

    As in the published scripts, each option costs one forward pass; the letter's spellings
    are read from that pass's logits at the cue (position -2), which is where the letter's
    probability lives.
    """
    model = engine.model
    out: list[ScoredItem] = []
    for request in requests:
        prompt = engine.encode(request)
        values = []
        for letter in request.options:
            spellings = list(engine.letter_ids(letter))
            ids = torch.tensor([prompt + spellings[:1]], device=engine.device)
            logprobs = torch.log_softmax(model(input_ids=ids).logits[0, -2].float(), dim=-1)
            values.append(float(torch.logsumexp(logprobs[spellings], dim=0)))
        out.append(ScoredItem(request.id, tuple(values)))
    return out
