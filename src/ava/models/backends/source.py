"""What a backend that reads log-probabilities must answer (a server, or vLLM in this process).

Prompts are token ids, never text: the canonical tokens are made here, by the model's own
tokenizer (:mod:`ava.models.encoding`), so the backend reads exactly what the in-process engine
reads; a server's own tokenisation and chat template are never used for scoring (its
tokenizer is only compared with ours, by :meth:`LogprobSource.check`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

Seeds = int | Sequence[int]
"""A generation's seed: one for every prompt of the call, or one per prompt."""


def prompt_seeds(seed: Seeds, count: int) -> list[int]:
    """One seed per prompt: a prompt's samples then depend on its tokens and its seed only, not
    on the other prompts it was sent (or batched) with, as with a server's per-request seed."""
    if isinstance(seed, int):
        return [seed] * count
    seeds = [int(s) for s in seed]
    if len(seeds) != count:
        raise ValueError(f"{len(seeds)} seeds for {count} prompts: give one seed, or one per prompt")
    return seeds


@dataclass(frozen=True)
class TokenPrompt:
    """A prompt as token ids; ``rid`` names it in errors (the request id)."""

    rid: str
    ids: tuple[int, ...]


class LogprobSource(Protocol):
    """Batch operations; each raises :class:`~ava.models.backends.http.ServerError` (with the
    results that finished) when it cannot complete. ``chosen_ids``: :meth:`chosen_logprobs`
    works (known after :meth:`check`)."""

    chosen_ids: bool

    def where(self) -> str:
        """What errors name: ``server http://host:8000/v1`` or ``vLLM engine (in process)``."""
        ...

    def check(self, text: str, ids: Sequence[int], add_special_tokens: bool, mode: str, top_k: int) -> None:
        """Refuse, before anything is scored, a backend that cannot serve ``mode``: one that is
        unreachable, serves another model or tokenises ``text`` other than into ``ids``, gives
        no top-k (``top_k`` > 0) or, in exact mode, does not echo prompt log-probabilities."""
        ...

    def top_logprobs(self, prompts: Sequence[TokenPrompt], k: int) -> list[dict[int | str, float]]:
        """The next token's ``k`` most likely tokens after each prompt: ``{token: logprob}`` under
        the full-vocabulary softmax (a token is its id, or its text where a server gives no id)."""
        ...

    def chosen_logprobs(self, prompts: Sequence[TokenPrompt], chosen: Sequence[Sequence[int]]) -> list[dict]:
        """The log-probabilities of exactly the ``chosen`` token ids at each prompt's next position."""
        ...

    def echo_logprobs(self, prompts: Sequence[TokenPrompt]) -> list[float]:
        """The log-probability of each prompt's last token given the tokens before it."""
        ...

    def generate(self, prompts: Sequence[TokenPrompt], max_new_tokens: int, temperature: float, n: int,
                 seeds: Sequence[int]) -> list[list[str]]:
        """``n`` sampled continuations per prompt (greedy at temperature 0), prompt i's drawn
        with ``seeds[i]``."""
        ...
