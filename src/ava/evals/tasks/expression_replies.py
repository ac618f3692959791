"""Reading the text a model wrote for ``--expression verbalized`` and ``sampled``, strictly.

A verbalized reply is read as a JSON object ``{"A": 40, "B": 60}`` (the first object in the
reply) or, failing that, as lines ``A: 40%``. It counts only if every shown option's letter is
there exactly once, nothing else is, every value is a number in [0, 100], and they sum to 100
within the template's tolerance; then it is normalised. Anything else is *unparsable*, with a
reason, and gives no distribution: a missing answer is never imputed (a uniform guess would
be rewarded on the very questions the model could not answer). A sampled reply's answer is its
first letter, alone or followed by ``.``, ``)`` or ``:`` (or, early in its first line, the letter
after ``answer is`` / ``option`` / ``choice``), and one of the shown letters; anything else is a
non-answer.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

LINE = re.compile(r"^\s*\(?([A-Za-z])\)?\s*[.:=)-]?\s*(-?\d+(?:\.\d+)?)\s*%?\s*[,;]?\s*$")
LETTER = re.compile(r"^\s*\(?([A-Z])(?:[.):]|\s|$)")
STATED = re.compile(r"^[^\n]{0,40}?\b(?:answer|option|choice)\s*(?:is|:)?\s*\(?([A-Z])(?:[.):]|\s|$)", re.IGNORECASE)
"""A chat model's ``The answer is B.`` / ``My answer: (B)``: a stated letter early in the first line."""


@dataclass(frozen=True)
class Verbalized:
    """A reply's distribution over the shown letters (normalised), or why there is none."""

    probs: tuple[float, ...] | None
    reason: str | None = None


def _pairs_from_json(text: str) -> list[tuple[str, object]] | None:
    start = text.find("{")
    if start < 0:
        return None
    pairs: list[tuple[str, object]] = []

    def keep(items: list[tuple[str, object]]) -> dict:
        pairs.extend(items)
        return dict(items)

    try:
        json.JSONDecoder(object_pairs_hook=keep).raw_decode(text[start:])
    except json.JSONDecodeError:
        return None
    return pairs


def _pairs_from_lines(text: str) -> list[tuple[str, object]]:
    return [(m.group(1), m.group(2)) for m in (LINE.match(line) for line in text.splitlines()) if m]


def _number(value: object) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip().rstrip("%").strip())
        except ValueError:
            return None
    return None


def parse_verbalized(text: str, letters: Sequence[str], tolerance: float) -> Verbalized:
    """The distribution a verbalized reply states over ``letters``, or the reason it has none."""
    pairs = _pairs_from_json(text)
    if pairs is None:
        pairs = _pairs_from_lines(text)
    if not pairs:
        return Verbalized(None, "no JSON object or 'A: 40%' lines")
    keys = [k.strip().upper() for k, _ in pairs]
    unknown = sorted({k for k in keys if k not in letters})
    if unknown:
        return Verbalized(None, "a letter that is no option")
    if len(set(keys)) != len(keys):
        return Verbalized(None, "an option given twice")
    if set(keys) != set(letters):
        return Verbalized(None, "an option missing")
    values = {k: _number(v) for k, (_, v) in zip(keys, pairs, strict=True)}
    if any(v is None or not math.isfinite(v) for v in values.values()):
        return Verbalized(None, "a value that is not a number")
    if any(not 0.0 <= v <= 100.0 for v in values.values()):  # type: ignore[operator]
        return Verbalized(None, "a value outside [0, 100]")
    total = sum(values.values())  # type: ignore[arg-type]
    if abs(total - 100.0) > tolerance:
        return Verbalized(None, f"percentages not summing to 100 +- {tolerance:g}")
    return Verbalized(tuple(float(values[k]) / total for k in letters))  # type: ignore[arg-type]


def answer_letter(text: str, letters: Sequence[str]) -> str | None:
    """The option letter a reply answers with, or None (a non-answer)."""
    m = LETTER.match(text) or STATED.match(text.lstrip())
    return m.group(1) if m and m.group(1) in letters else None
