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
    """Score each option of each request with its own full forward pass (prompt + letter)."""
    model = engine.model
    out: list[ScoredItem] = []
    for request in requests:
        prompt = engine.encode(request)
        values = []
        for letter in request.options:
            per_spelling = []
            for token in engine.letter_ids(letter):
                ids = torch.tensor([prompt + [token]], device=engine.device)
                logits = model(input_ids=ids).logits[0, -2].float()
                per_spelling.append(torch.log_softmax(logits, dim=-1)[token])
            values.append(float(torch.logsumexp(torch.stack(per_spelling), dim=0)))
        out.append(ScoredItem(request.id, tuple(values)))
    return out
