"""Free-text generation with an in-process transformers model (the seam's ``generate``).

Prompts are read as the scorer reads them (:meth:`~ava.models.encoding.PromptEncoder.generation_text`,
tokenised whole by the canonical rule), batched longest first with left padding, decoded
without special tokens. Sampling (``temperature`` > 0) draws from torch's generator seeded with
``seed`` before each batch, so the same call gives the same texts.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ava.models.encoding import PromptEncoder

BATCH = 8


def generate(model: Any, encoder: PromptEncoder, prompts: Sequence[str], *, max_new_tokens: int,
             temperature: float = 0.0, n: int = 1, seed: int = 0, batch_size: int = BATCH) -> list[list[str]]:
    """``n`` continuations of each prompt (greedy at temperature 0: ``n`` identical texts)."""
    encoded = encoder.tokenize([encoder.generation_text(p) for p in prompts])
    return generate_ids(model, encoder.tokenizer, encoded, max_new_tokens=max_new_tokens, temperature=temperature,
                        n=n, seed=seed, batch_size=batch_size)


def generate_ids(model: Any, tokenizer: Any, encoded: Sequence[Sequence[int]], *, max_new_tokens: int,
                 temperature: float = 0.0, n: int = 1, seed: int = 0, batch_size: int = BATCH) -> list[list[str]]:
    """The loop under every in-process generation (the seam's, and ``ava-tasks``' own prompt
    format): already tokenised prompts, longest first in batches, left-padded so every row's
    new tokens start at the same column. Sampling seeds torch's generator with ``seed`` + the
    batch's offset before each batch; greedy decoding leaves torch's random state alone."""
    import torch

    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    device = next(model.parameters()).device
    out: list[list[str]] = [[] for _ in encoded]
    order = sorted(range(len(encoded)), key=lambda i: -len(encoded[i]))
    sample = temperature > 0
    for b in range(0, len(order), batch_size):
        idx = order[b : b + batch_size]
        width = max(len(encoded[i]) for i in idx)
        ids = torch.full((len(idx), width), pad, dtype=torch.long)
        mask = torch.zeros((len(idx), width), dtype=torch.long)
        for row, i in enumerate(idx):
            ids[row, width - len(encoded[i]) :] = torch.tensor(list(encoded[i]))
            mask[row, width - len(encoded[i]) :] = 1
        if sample:
            torch.manual_seed(seed + b)
        with torch.inference_mode():
            generated = model.generate(
                input_ids=ids.to(device), attention_mask=mask.to(device), max_new_tokens=max_new_tokens,
                do_sample=sample, num_return_sequences=n if sample else 1, pad_token_id=pad,
                **({"temperature": temperature, "top_k": 0, "top_p": 1.0} if sample else {}),
            )
        per = n if sample else 1
        for row, i in enumerate(idx):
            texts = [tokenizer.decode(generated[row * per + j, width:], skip_special_tokens=True) for j in range(per)]
            out[i] = texts if sample else texts * n
    return out
