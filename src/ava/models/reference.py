"""The straightforward reference scorer: one forward pass per option, batch 1.

This is how the published scripts read a model's opinion. It exists to check the engine
(exactness tests) and to time the naive method (benchmarks); never use it for real work.
It tokenises on its own, the plain way (``tokenizer(text + letter)`` per spelling), so that
it checks the engine's canonical tokens and letter tokens rather than sharing them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from ava.contracts.scoring import ScoredItem, ScoreRequest
from ava.models.encoding import spellings
from ava.models.engine import LetterEngine
from ava.models.threads import cpu_threads


@torch.inference_mode()
def reference_score(engine: LetterEngine, requests: Sequence[ScoreRequest]) -> list[ScoredItem]:
    """Score each option with its own full forward pass over prompt + letter, batch 1.

    The prompt is the engine's text (chat template applied when the engine uses one), tokenised
    whole; a spelling ("A", " A") counts when tokenising the text followed by it adds exactly
    one token. As in the published scripts each option costs one forward pass; its spellings
    are read from that pass's logits at the last prompt position (-2). CPU threads follow the
    free cores as in the engine (the comparison is about forward passes, not thread stalls).
    """
    with cpu_threads(engine.device, engine.config.threads) as adjust_threads:
        return [_score_one(engine, request, adjust_threads) for request in requests]


def _score_one(engine: LetterEngine, request: ScoreRequest, adjust_threads: Callable[[], None]) -> ScoredItem:
    tokenizer = engine.tokenizer
    text = engine.prompt_text(request)
    add = engine.encoder.add_special_tokens(text)
    prompt = tokenizer(text, add_special_tokens=add).input_ids
    values = []
    for letter in request.options:
        tokens: list[int] = []
        for spelling in spellings(letter):
            whole = tokenizer(text + spelling, add_special_tokens=add).input_ids
            if whole[:-1] == prompt and len(whole) == len(prompt) + 1 and whole[-1] not in tokens:
                tokens.append(whole[-1])
        ids = torch.tensor([prompt + tokens[:1]], device=engine.device)
        adjust_threads()
        logprobs = torch.log_softmax(engine.model(input_ids=ids).logits[0, -2].float(), dim=-1)
        values.append(float(torch.logsumexp(logprobs[tokens], dim=0)))
    return ScoredItem(request.id, tuple(values))
