"""A survey question with its weighted human distributions, overall and per group.

Produced by ``ava.surveys`` from raw Pew ATP files, consumed by the opinion benchmarks.
"""

from __future__ import annotations

from dataclasses import dataclass, field

OVERALL = ("Overall", "Overall")
"""The (attribute, group) key of the whole population."""


@dataclass(frozen=True, slots=True)
class GroupDistribution:
    """Human answers of one group to one question.

    ``distribution`` is over the question's substantive options (sums to 1; empty when the
    group has no respondents); ``refusal_rate`` is the weighted share of non-substantive
    answers; ``n`` respondents with an answer; ``weighted_n`` the sum of their weights.
    ``counts`` are the unweighted respondent counts per option, substantive options first then
    the refusal options (the question's ``options + refusal_options`` order); kept so a build
    can be checked exactly against published unweighted counts.
    """

    attribute: str
    group: str
    distribution: tuple[float, ...]
    refusal_rate: float
    n: int
    weighted_n: float
    counts: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class SurveyQuestion:
    """One multiple-choice survey question, ready for a benchmark.

    ``options`` are the substantive options in survey order, ``ordinals`` their positions
    (same length; may be fractional), ``refusal_options`` the non-substantive ones that were
    shown but are excluded from the distributions. ``*_source`` fields say where the text
    and ordinals came from (e.g. "opinionqa-info", "opinionqa-xl-json", "spss-label";
    "curated", "codes").
    """

    key: str
    wave: str
    text: str
    options: tuple[str, ...]
    ordinals: tuple[float, ...]
    refusal_options: tuple[str, ...]
    text_source: str
    ordinal_source: str
    weighted: bool
    groups: tuple[GroupDistribution, ...]
    topic: str | None = None
    date: str | None = None
    tags: tuple[str, ...] = field(default_factory=tuple)
    column: str = ""
    """The raw SPSS column the answers came from (equals ``key`` for Pew questions)."""

    def group(self, attribute: str, group: str) -> GroupDistribution | None:
        for g in self.groups:
            if g.attribute == attribute and g.group == group:
                return g
        return None

    @property
    def overall(self) -> GroupDistribution:
        found = self.group(*OVERALL)
        if found is None:
            raise KeyError(f"question {self.key}: no Overall distribution")
        return found
