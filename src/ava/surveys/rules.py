"""Versioned rule tables (YAML under ``ava/data/surveys``) and the label normaliser they match on."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from ava.paths import bundled

_QUOTES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u201c": "", "\u201d": "", '"': ""})


def normalise_label(label: str) -> str:
    """Lower-case a value label and strip the decorations that differ between waves."""
    text = str(label).translate(_QUOTES).lower()
    text = re.sub(r"\(vol\.?\)", " ", text)
    text = re.sub(r"\s+", " ", text).strip().rstrip(":").strip()
    return text


def _compile(patterns: list[str]) -> tuple[re.Pattern[str], ...]:
    return tuple(re.compile(p, re.IGNORECASE) for p in patterns)


@dataclass(frozen=True)
class QuestionRules:
    version: str
    skip_name: dict[str, tuple[re.Pattern[str], ...]]
    skip_label: dict[str, tuple[re.Pattern[str], ...]]
    non_substantive: tuple[re.Pattern[str], ...]
    min_options: int
    max_unlabelled_share: float
    select_all_options: tuple[re.Pattern[str], ...] = ()

    def is_select_all(self, labels: tuple[str, ...]) -> bool:
        return any(p.search(normalise_label(lab)) for lab in labels for p in self.select_all_options)

    def is_non_substantive(self, label: str) -> bool:
        norm = normalise_label(label)
        return any(p.search(norm) for p in self.non_substantive)


@dataclass(frozen=True)
class AttributeRule:
    name: str
    columns: tuple[str, ...]
    groups: tuple[tuple[str, tuple[re.Pattern[str], ...]], ...]
    exclude: tuple[re.Pattern[str], ...]
    hispanic: dict[str, Any] | None
    empty_fallback: tuple[str, ...] = ()  # columns read per respondent where the chosen one is empty

    def group_of(self, label: str) -> str | None:
        norm = normalise_label(label)
        for group, pats in self.groups:
            if any(p.search(norm) for p in pats):
                return group
        return None

    def is_excluded(self, label: str) -> bool:
        norm = normalise_label(label)
        return any(p.search(norm) for p in self.exclude)


@dataclass(frozen=True)
class DemographicRules:
    version: str
    suffixes: tuple[str, ...]
    attributes: tuple[AttributeRule, ...]

    def group_keys(self) -> list[tuple[str, str]]:
        """("Overall","Overall") then every (attribute, group) in table order: the 61 groups."""
        keys = [("Overall", "Overall")]
        for att in self.attributes:
            keys.extend((att.name, g) for g, _ in att.groups)
        return keys


def _read(name: str, path: Path | None) -> dict[str, Any]:
    with open(path or bundled("surveys", name), encoding="utf-8") as fh:
        return yaml.safe_load(fh)


@lru_cache(maxsize=4)
def question_rules(path: Path | None = None) -> QuestionRules:
    raw = _read("questions.yaml", path)
    return QuestionRules(
        version=str(raw["version"]),
        skip_name={k: _compile(v) for k, v in raw["skip_name"].items()},
        skip_label={k: _compile(v) for k, v in raw["skip_label"].items()},
        non_substantive=_compile(raw["non_substantive"]),
        min_options=int(raw["min_options"]),
        max_unlabelled_share=float(raw["max_unlabelled_share"]),
        select_all_options=_compile(raw.get("select_all_options", [])),
    )


@lru_cache(maxsize=4)
def demographic_rules(path: Path | None = None) -> DemographicRules:
    raw = _read("demographics.yaml", path)
    atts = []
    for name, spec in raw["attributes"].items():
        hisp = spec.get("hispanic_override")
        if hisp:
            hisp = {
                "columns": tuple(hisp["columns"]),
                "yes": _compile(hisp["yes"]),
                "group": hisp["group"],
                "overrides": _compile(hisp["overrides"]),
            }
        atts.append(
            AttributeRule(
                name=name,
                columns=tuple(spec["columns"]),
                groups=tuple((str(g), _compile(p)) for g, p in spec["groups"].items()),
                exclude=_compile(spec.get("exclude", [])),
                hispanic=hisp,
                empty_fallback=tuple(spec.get("empty_fallback", ())),
            )
        )
    return DemographicRules(version=str(raw["version"]), suffixes=tuple(raw["suffixes"]), attributes=tuple(atts))


@dataclass(frozen=True)
class WeightKind:
    name: str
    partial: bool  # a weight for part of the sample: never the wave's weight
    why: str
    pattern: re.Pattern[str]  # whole tokens of a weight's qualifiers


@dataclass(frozen=True)
class WeightRules:
    """The naming rules of ``weights.yaml`` (see its header for the order they are applied in)."""

    version: str
    full_sample: tuple[tuple[str, re.Pattern[str]], ...]  # (rule, qualifiers fullmatch)
    kinds: tuple[WeightKind, ...]
    do_not_use: tuple[re.Pattern[str], ...]
    full_sample_label: tuple[re.Pattern[str], ...]
    some_questions_label: tuple[re.Pattern[str], ...]
    unweighted: dict[str, str]  # wave -> why it has no usable weight

    def kind_of(self, qualifiers: str) -> WeightKind | None:
        return next((k for k in self.kinds if k.pattern.search(qualifiers)), None)


def _tokens(patterns: list[str]) -> re.Pattern[str]:
    """Any of ``patterns`` as whole ``_``-separated tokens of a qualifier string."""
    return re.compile(r"(?:^|_)(?:" + "|".join(f"(?:{p})" for p in patterns) + r")(?:_|$)", re.IGNORECASE)


@lru_cache(maxsize=4)
def weight_rules(path: Path | None = None) -> WeightRules:
    raw = _read("weights.yaml", path)
    labels = raw["labels"]
    return WeightRules(
        version=str(raw["version"]),
        full_sample=tuple((str(rule), re.compile("|".join(f"(?:{p})" for p in pats), re.IGNORECASE))
                          for rule, pats in raw["full_sample"].items()),
        kinds=tuple(WeightKind(str(name), bool(spec["partial"]), str(spec["why"]), _tokens(spec["tokens"]))
                    for name, spec in raw["kinds"].items()),
        do_not_use=_compile(labels["do_not_use"]),
        full_sample_label=_compile(labels["full_sample"]),
        some_questions_label=_compile(labels["some_questions"]),
        unweighted={str(k): str(v) for k, v in (raw.get("unweighted") or {}).items()},
    )
