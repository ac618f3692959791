"""Option letters, and the tokens that spell them after an answer cue."""

from __future__ import annotations

import string
from typing import Any

LETTERS = string.ascii_uppercase


def option_letters(n: int) -> tuple[str, ...]:
    """The first ``n`` letters A, B, C, ...; more options than letters is an error."""
    if n < 1:
        raise ValueError("a question needs at least one option")
    if n > len(LETTERS):
        raise ValueError(f"{n} options but only {len(LETTERS)} letters (A-Z): split or trim the question")
    return tuple(LETTERS[:n])


def spelling_token_ids(tokenizer: Any, letter: str) -> tuple[int, ...]:
    """Token ids that spell ``letter`` right after a cue: ``"A"`` and ``" A"``, deduplicated.

    Each spelling is read as the single token the tokenizer appends to a neutral context
    (":"), so SentencePiece's word-initial "▁A" and BPE's "ĠA" are both found. A spelling
    that takes more than one token is skipped; no single-token spelling is an error.
    """
    base = tokenizer.encode(":", add_special_tokens=False)
    ids: list[int] = []
    for spelling in (letter, " " + letter):
        full = tokenizer.encode(":" + spelling, add_special_tokens=False)
        if full[: len(base)] == base and len(full) == len(base) + 1 and full[-1] not in ids:
            ids.append(full[-1])
    if not ids:
        from ava.models.loading import ModelError

        raise ModelError(
            f"the tokenizer cannot spell option {letter!r} as one token; use single-character "
            "option letters (A, B, ...) or a model whose vocabulary has them"
        )
    return tuple(ids)
