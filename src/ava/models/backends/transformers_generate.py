"""Free-text generation with an in-process transformers model (the seam's ``generate``).

Prompts are read as the scorer reads them (:meth:`~ava.models.encoding.PromptEncoder.generation_text`,
tokenised whole by the canonical rule), batched longest first with left padding, decoded
without special tokens. Sampling (``temperature`` > 0): a batch's prompts are run once and
their key/value cache repeated for the ``n`` samples (:func:`_shared_prefill`), and each
prompt's draws come from its own generator, seeded with its seed (:class:`_OwnDraws`), so a
prompt's samples do not depend on the prompts batched with it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ava.models.backends.source import Seeds, prompt_seeds
from ava.models.encoding import PromptEncoder
from ava.models.engine import CACHE_ARG, cache_of

BATCH = 8


def generate(model: Any, encoder: PromptEncoder, prompts: Sequence[str], *, max_new_tokens: int,
             temperature: float = 0.0, n: int = 1, seed: Seeds = 0, batch_size: int = BATCH) -> list[list[str]]:
    """``n`` continuations of each prompt (greedy at temperature 0: ``n`` identical texts)."""
    encoded = encoder.tokenize([encoder.generation_text(p) for p in prompts])
    return generate_ids(model, encoder.tokenizer, encoded, max_new_tokens=max_new_tokens, temperature=temperature,
                        n=n, seed=seed, batch_size=batch_size)


def generate_ids(model: Any, tokenizer: Any, encoded: Sequence[Sequence[int]], *, max_new_tokens: int,
                 temperature: float = 0.0, n: int = 1, seed: Seeds = 0, batch_size: int = BATCH) -> list[list[str]]:
    """The loop under every in-process generation (the seam's, and ``ava-tasks``' own prompt
    format): already tokenised prompts, longest first in batches, left-padded so every row's
    new tokens start at the same column. Greedy decoding and sampling both run transformers'
    ``generate`` greedily; sampling puts its own draws in front of the argmax
    (:class:`_OwnDraws`) and leaves torch's global random state alone, as greedy does."""
    import torch

    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    device = next(model.parameters()).device
    seeds = prompt_seeds(seed, len(encoded))
    out: list[list[str]] = [[] for _ in encoded]
    order = sorted(range(len(encoded)), key=lambda i: -len(encoded[i]))
    per = n if temperature > 0 else 1
    for b in range(0, len(order), batch_size):
        idx = order[b : b + batch_size]
        width = max(len(encoded[i]) for i in idx)
        ids = torch.full((len(idx), width), pad, dtype=torch.long)
        mask = torch.zeros((len(idx), width), dtype=torch.long)
        for row, i in enumerate(idx):
            ids[row, width - len(encoded[i]) :] = torch.tensor(list(encoded[i]))
            mask[row, width - len(encoded[i]) :] = 1
        ids, mask = ids.to(device), mask.to(device)
        with torch.inference_mode():
            extra: dict[str, Any] = {}
            if per > 1:
                extra = _shared_prefill(model, ids, mask, per)
            if temperature > 0:
                extra["logits_processor"] = [_OwnDraws([seeds[i] for i in idx], per, temperature)]
            generated = model.generate(
                input_ids=ids.repeat_interleave(per, 0), attention_mask=mask.repeat_interleave(per, 0),
                max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=pad, **extra)
        for row, i in enumerate(idx):
            texts = [tokenizer.decode(generated[row * per + j, width:], skip_special_tokens=True) for j in range(per)]
            out[i] = texts if per > 1 else texts * n
    return out


def _shared_prefill(model: Any, ids: Any, mask: Any, n: int) -> dict[str, Any]:
    """The batch's prompts but their last token, run once, their key/value cache repeated ``n``
    times: the kwargs that make ``generate`` start from it (it then runs only the last token).

    transformers' ``num_return_sequences`` repeats the prompts *before* the forward pass, so
    ``sampled``'s K answers to one question would cost K prefills of the same prompt; here
    they cost one. A row's ``n`` copies sit next to each other, and position ids count real
    tokens only, as ``generate`` counts them. Empty (no sharing) for one-token prompts or a
    cache kind that cannot be repeated."""
    if ids.shape[1] < 2:
        return {}
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    out = model(input_ids=ids[:, :-1], attention_mask=mask[:, :-1], position_ids=positions[:, :-1],
                use_cache=True, logits_to_keep=1)
    cache = cache_of(out)
    if not hasattr(cache, "batch_repeat_interleave"):
        return {}
    cache.batch_repeat_interleave(n)
    return {CACHE_ARG: cache}


class _OwnDraws:
    """A logits processor that samples: each prompt's ``n`` rows draw their next token at
    ``temperature`` from the full distribution, with that prompt's own generator, and every
    other token is set to -inf, so ``generate``'s greedy argmax takes the draw.

    Written here, not left to ``generate(do_sample=True)``, because transformers draws every row
    of a batch from torch's one global generator: a question's K answers would then depend on
    which questions share its batch, and batching questions (on smollm2, 1 thread: 1.39 s a
    question with the shared prefill alone, 0.85 s with 8 questions a batch) would change them.
    The draw itself is torch's ``multinomial`` over the softmax, as there."""

    def __init__(self, seeds: Sequence[int], n: int, temperature: float) -> None:
        self.n, self.temperature, self.seeds = n, temperature, list(seeds)
        self.generators: list[Any] = []

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        import torch

        if not self.generators:  # where the logits are: the last GPU when the layers are spread out
            self.generators = [torch.Generator(device=scores.device).manual_seed(s) for s in self.seeds]
        probs = torch.softmax(scores.float() / self.temperature, dim=-1)
        drawn = torch.cat([torch.multinomial(probs[k * self.n : (k + 1) * self.n], 1, generator=g)
                           for k, g in enumerate(self.generators)])
        out = torch.full_like(scores, float("-inf"))
        return out.scatter_(1, drawn, 0.0)
