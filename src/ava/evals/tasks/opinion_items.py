"""Survey questions as letter prompts, and the model's reading of them (OpinionQA, OpinionQA-XL).

What both opinion tasks (:mod:`~ava.evals.tasks.opinion_task`, :mod:`~ava.evals.tasks.steer_task`)
share: which questions can be scored (every excluded one counted by reason), their ids, the
prompt of a question with or without a persona, the model's distribution over the substantive
options, and the human distributions of the groups.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ava.contracts.scoring import ScoredItem, ScoreRequest
from ava.contracts.surveys import OVERALL, SurveyQuestion
from ava.evals.data import DataError, DataNotFound, LoadReport
from ava.evals.prompts.opinion import render_options, templates
from ava.evals.prompts.personas import Persona
from ava.metrics.opinion import is_degenerate
from ava.models.letters import LETTERS, option_letters


def exclusion_reason(q: SurveyQuestion) -> str | None:
    """Why a question cannot be scored, or None."""
    if len(q.ordinals) != len(q.options):
        return "ordinals do not match options"
    if is_degenerate(q.ordinals):
        return "degenerate ordinals"
    if len(q.options) + len(q.refusal_options) > len(LETTERS):
        return "more options than letters"
    overall = q.group(*OVERALL)
    if overall is None or not sum(overall.distribution) > 0:
        return "no Overall distribution"
    if len(overall.distribution) != len(q.options):
        return "Overall distribution does not match options"
    return None


def prepare(name: str, questions: Sequence[SurveyQuestion]) -> tuple[list[SurveyQuestion], LoadReport]:
    """The scorable questions, and a load report counting every excluded one by reason."""
    report = LoadReport(name, rows=len(questions))
    kept: list[SurveyQuestion] = []
    seen: set[tuple[str, str]] = set()
    for q in questions:
        reason = "duplicate (wave, key)" if (q.wave, q.key) in seen else exclusion_reason(q)
        seen.add((q.wave, q.key))
        if reason:
            report.drop(reason, q.key, f"{reason}; question excluded")
        else:
            kept.append(q)
    report.kept = len(kept)
    if not kept:
        raise DataError(f"{name}: no scorable question ({report.summary()}); check the survey build")
    if not any(g.distribution and sum(g.distribution) > 0 for q in kept for g in q.groups
               if (g.attribute, g.group) != OVERALL):
        raise DataError(f"{name}: every demographic group is empty in this survey data (no group has a "
                        "distribution), so no per-group number can be computed; rebuild the survey data")
    return kept, report


def question_ids(questions: Sequence[SurveyQuestion]) -> list[str]:
    """A unique id per question: its key, or ``key@wave`` for a key asked in several waves."""
    counts: dict[str, int] = {}
    for q in questions:
        counts[q.key] = counts.get(q.key, 0) + 1
    return [q.key if counts[q.key] == 1 else f"{q.key}@{q.wave}" for q in questions]


def load_questions(benchmark: str, data: str | Path | None) -> list[SurveyQuestion]:
    """The survey questions; data that is absent is :class:`DataNotFound` (pass --data), data that is
    there but must not be scored (an unfinished or incomplete build) a :class:`DataError` with the
    build's own reason and what to do (rebuild), not "pass --data"."""
    from ava.surveys import SurveyDataError, load_benchmark

    try:
        return list(load_benchmark(benchmark, path=data))
    except FileNotFoundError as exc:
        raise DataNotFound(f"{benchmark}: {exc} (pass --data PATH to the survey data)") from None
    except SurveyDataError as exc:
        raise DataError(f"{benchmark}: {exc}") from None


def topics_of(q: SurveyQuestion) -> list[str]:
    return sorted(t[3:] for t in q.tags if t.startswith("cg:"))


def group_label(attribute: str, group: str) -> str:
    """How a group is named in item scores, results and tables: ``"ATTR:group"``."""
    return f"{attribute}:{group}"


# -- prompts --------------------------------------------------------------------------------
def shown_options(q: SurveyQuestion, order: Sequence[int] | None = None) -> tuple[str, ...]:
    """Substantive options (in the survey's order, or ``order``: the option index shown at each
    letter position), then the refusal option(s) as the last letter(s), whatever the order."""
    substantive = q.options if order is None else tuple(q.options[i] for i in order)
    return (*substantive, *q.refusal_options)


def question_block(q: SurveyQuestion, order: Sequence[int] | None = None) -> str:
    return templates()["question_block"].format(question=q.text.strip(),
                                                options=render_options(shown_options(q, order)))


def make_request(item_id: str, q: SurveyQuestion, persona: Persona | None = None,
                 order: Sequence[int] | None = None) -> ScoreRequest:
    """``(persona, question block, cue)``: separate segments, so a shared persona is computed once.
    ``order`` shows the substantive options permuted (option-order controls); None: the survey's order."""
    tpl = templates()
    body = (question_block(q, order), tpl["cue"])
    segments = (persona.text + tpl["persona_separator"], *body) if persona else body
    return ScoreRequest(item_id, segments, option_letters(len(shown_options(q))))


# -- the model's and the humans' distributions ------------------------------------------------
def model_reading(q: SurveyQuestion, scored: ScoredItem) -> tuple[np.ndarray, float]:
    """The model's distribution over the substantive options, and its refusal rate (NaN when
    the question shows no refusal option)."""
    n = len(q.options)
    dist = np.array(scored.renormalised(range(n)))
    refusal = 1.0 - float(sum(scored.probs[:n])) if q.refusal_options else float("nan")
    return dist, refusal


def group_matrix(q: SurveyQuestion, groups: Sequence[tuple[str, str]]) -> np.ndarray:
    """``[G, k]`` human distributions; NaN rows for groups with no respondents."""
    out = np.full((len(groups), len(q.options)), np.nan)
    by_key = {(g.attribute, g.group): g for g in q.groups}
    for i, key in enumerate(groups):
        g = by_key.get(key)
        if g is not None and len(g.distribution) == len(q.options) and sum(g.distribution) > 0:
            out[i] = g.distribution
    return out


def question_groups(q: SurveyQuestion) -> list[tuple[str, str]]:
    """The question's (attribute, group)s in its own order, Overall excluded."""
    return [(g.attribute, g.group) for g in q.groups if (g.attribute, g.group) != OVERALL]


def all_groups(questions: Sequence[SurveyQuestion]) -> list[tuple[str, str]]:
    """Every (attribute, group) in first-seen order, Overall excluded."""
    seen: dict[tuple[str, str], None] = {}
    for q in questions:
        for key in question_groups(q):
            seen.setdefault(key, None)
    return list(seen)


def numbers(values: np.ndarray) -> list[float | None]:
    """Floats for an item score record: NaN as None (exact: a float64 round-trips through JSON)."""
    return [None if np.isnan(v) else float(v) for v in values]


def by_label(groups: Sequence[tuple[str, str]], values: np.ndarray) -> dict[str, float | None]:
    return dict(zip((group_label(a, g) for a, g in groups), numbers(values), strict=True))


# -- settings -------------------------------------------------------------------------------
def int_setting(settings: Mapping[str, Any], key: str, default: int) -> int:
    value = settings.get(key, default)
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ValueError(f"--set {key}={value!r}: expected an integer") from None


def select_formats(personas: Sequence[Persona], settings: Mapping[str, Any]) -> list[Persona]:
    """``--set formats=qa,bio`` keeps some persona formats (default: all)."""
    wanted = settings.get("formats")
    if not wanted:
        return list(personas)
    names = [f.strip() for f in str(wanted).split(",") if f.strip()]
    known = list(dict.fromkeys(p.format for p in personas))
    bad = [f for f in names if f not in known]
    if bad:
        raise ValueError(f"--set formats: unknown format(s) {bad}; known: {', '.join(known)}")
    return [p for p in personas if p.format in names]
