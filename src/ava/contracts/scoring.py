"""What the scoring engine takes and gives back.

The engine's one operation: these prompts, these option letters -> a distribution each.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ScoreRequest:
    """A prompt given as ordered segments, and its option letters.

    The model reads :attr:`prompt`, the segments joined, as one string tokenised whole
    (``tokenizer(text)``; with a chat template: rendered, then tokenised), as lm-eval and the
    published scripts do, in every code path. Segments (persona / question / cue) change
    nothing the model reads: they are where a prompt's parts meet, a hint for sharing
    computation; the engine finds shared token prefixes on the canonical tokens itself. The
    letters are read as the token the tokenizer appends to the prompt (``"A"`` or ``" A"``).
    """

    id: str
    segments: tuple[str, ...]
    options: tuple[str, ...]

    def __post_init__(self) -> None:
        if not self.segments or not "".join(self.segments).strip():
            raise ValueError(f"request {self.id!r}: empty prompt; give at least one non-empty segment")
        if not self.options:
            raise ValueError(f"request {self.id!r}: no options; give the option letters, e.g. ['A', 'B']")
        if len(set(self.options)) != len(self.options):
            raise ValueError(f"request {self.id!r}: repeated option letters {list(self.options)}")

    @property
    def prompt(self) -> str:
        """The text the model reads: the segments joined."""
        return "".join(self.segments)


@dataclass(frozen=True, slots=True)
class ScoredItem:
    """A model's opinion on one request.

    ``logprobs`` are log-probabilities of each option letter under the full-vocabulary
    softmax (both spellings combined), *before* renormalising; ``probs`` renormalise them
    over all options; ``letter_mass`` is the total probability on the letters.
    """

    id: str
    logprobs: tuple[float, ...]

    @property
    def letter_mass(self) -> float:
        return float(sum(math.exp(lp) for lp in self.logprobs))

    @property
    def probs(self) -> tuple[float, ...]:
        return self.renormalised(range(len(self.logprobs)))

    def renormalised(self, keep: Sequence[int] | range) -> tuple[float, ...]:
        """Distribution over the options at ``keep`` (e.g. the substantive ones only)."""
        kept = [self.logprobs[i] for i in keep]
        top = max(kept)
        weights = [math.exp(lp - top) for lp in kept]
        total = sum(weights)
        return tuple(w / total for w in weights)


# What a model reads for a request (its tokens and letter tokens) changes only with this number,
# so result caches keyed on a request's text can tell old scores from new ones.
# 1: segments tokenised one by one; 2: the prompt tokenised whole, letters appended (issue 11).
SCORING_VERSION = 2
