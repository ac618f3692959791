"""Which columns of a wave are multiple-choice questions: decided by rule from SPSS metadata."""

from __future__ import annotations

import re
from dataclasses import dataclass

from ava.surveys.rules import QuestionRules

_WAVE_SUFFIX = re.compile(r"_W\d+(?:\.\d+)?$", re.IGNORECASE)
_CODE_PREFIX = re.compile(r"^\s*([A-Za-z][A-Za-z0-9_]*)[.:]\s+")


@dataclass(frozen=True)
class QuestionColumn:
    """A question column with its options (all labelled codes, in code = survey order)."""

    column: str
    text: str  # cleaned SPSS variable label
    codes: tuple[float, ...]
    labels: tuple[str, ...]
    substantive: tuple[bool, ...]  # by the non-substantive label rules


def base_code(column: str) -> str:
    """SAFECRIME_W26 -> SAFECRIME (the code the question files use)."""
    return _WAVE_SUFFIX.sub("", column)


def clean_label(label: str | None, column: str) -> str:
    """Drop the leading 'CODE. ' / 'CODE_W63.5 ' Pew puts before the question text in variable labels."""
    text = re.sub(r"\s+", " ", label or "").strip()
    for name in (column, base_code(column)):
        m = re.match(rf"{re.escape(name)}\s*[.:]?\s+", text, re.IGNORECASE)
        if m:
            return text[m.end():].strip()
    m = _CODE_PREFIX.match(text)
    if m and m.group(1).isupper():
        text = text[m.end():]
    return text.strip()


def wave_of_column(column: str) -> str | None:
    """SAFECRIME_W26 -> W26; None for a column without a wave suffix."""
    m = _WAVE_SUFFIX.search(column)
    return m.group(0)[1:].upper() if m else None


def select_questions(meta, rules: QuestionRules) -> tuple[list[QuestionColumn], dict[str, str]]:
    """Question columns of a wave plus every other column with the rule that excluded it."""
    questions: list[QuestionColumn] = []
    skipped: dict[str, str] = {}
    types = meta.readstat_variable_types
    for col in meta.column_names:
        reason = next((f"{k} column (name)" for k, pats in rules.skip_name.items()
                       if any(p.search(col) for p in pats)), None)
        label = meta.column_names_to_labels.get(col)
        text = clean_label(label, col)
        if reason is None:
            reason = next((f"{k} column (label)" for k, pats in rules.skip_label.items()
                           if any(p.search(text) for p in pats)), None)
        if reason is None and types.get(col) == "string":
            reason = "text column (open-ended)"
        labels = meta.variable_value_labels.get(col) or {}
        if reason is None and not labels:
            reason = "no value labels (numeric or open-ended)"
        if reason is None:
            codes = tuple(sorted(float(c) for c in labels))
            names = tuple(str(labels[c]).strip() for c in sorted(labels))
            subst = tuple(not rules.is_non_substantive(n) for n in names)
            if sum(subst) < rules.min_options:
                reason = f"fewer than {rules.min_options} substantive labelled options (numeric with labelled codes)"
            elif not text:
                reason = "no variable label"
            else:
                questions.append(QuestionColumn(col, text, codes, names, subst))
                continue
        skipped[col] = reason
    return questions, skipped
