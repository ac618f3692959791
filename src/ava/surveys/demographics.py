"""Map a wave's demographic columns onto OpinionQA's 12 attributes / 60 groups (rules in YAML)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ava.surveys.rules import AttributeRule, DemographicRules, normalise_label


@dataclass
class AttributeMapping:
    """How one attribute is read from one wave; ``column`` None when the wave lacks it."""

    attribute: str
    groups: tuple[str, ...]
    column: str | None = None
    code_to_group: dict[float, int] = field(default_factory=dict)
    # Columns read per respondent where ``column`` is empty, each with its own code -> group table.
    fallbacks: tuple[tuple[str, dict[float, int]], ...] = ()
    hispanic_column: str | None = None
    hispanic_yes: frozenset[float] = frozenset()
    overridden: frozenset[float] = frozenset()  # base codes Hispanic identity overrides
    hispanic_group: int = -1
    unmapped_labels: tuple[str, ...] = ()  # labels neither mapped nor deliberately excluded
    unmapped_codes: frozenset[float] = frozenset()  # their codes in ``column``

    def columns(self) -> list[str]:
        return [c for c in (self.column, *(c for c, _ in self.fallbacks), self.hispanic_column) if c]

    @property
    def unmappable(self) -> bool:
        """The wave has the column but not one of its labels names a group: every respondent is lost."""
        return self.column is not None and not self.code_to_group

    def report(self) -> dict:
        mapped = {self.groups[i] for i in self.code_to_group.values()}
        mapped |= {self.groups[i] for _, table in self.fallbacks for i in table.values()}
        if self.hispanic_column:
            mapped.add(self.groups[self.hispanic_group])
        return {
            "column": self.column,
            "empty_fallback_columns": [c for c, _ in self.fallbacks],
            "hispanic_column": self.hispanic_column,
            "mapped_groups": sorted(mapped),
            "unmapped_labels": list(self.unmapped_labels),
        }


def _find_column(names: list[str], bases: tuple[str, ...], suffixes: tuple[str, ...], wave: str) -> str | None:
    upper = {n.upper(): n for n in names}
    for base in bases:
        base = base.replace("{wave}", wave)
        for suffix in suffixes:
            hit = upper.get((base + suffix).upper())
            if hit:
                return hit
    return None


def _label_table(rule: AttributeRule, labels: dict, groups: tuple[str, ...], non_substantive
                 ) -> tuple[dict[float, int], list[tuple[float, str]]]:
    """code -> group index for the labels a group pattern matches, plus the (code, label) pairs that are
    neither matched nor excluded (reported, and counted per respondent)."""
    table: dict[float, int] = {}
    unmapped: list[tuple[float, str]] = []
    for code, label in labels.items():
        group = rule.group_of(label)
        if group is not None:
            table[float(code)] = groups.index(group)
        elif not (rule.is_excluded(label) or non_substantive(label)):
            unmapped.append((float(code), str(label)))
    return table, unmapped


def _map_attribute(rule: AttributeRule, meta, suffixes: tuple[str, ...], non_substantive,
                   wave: str) -> AttributeMapping:
    groups = tuple(g for g, _ in rule.groups)
    out = AttributeMapping(rule.name, groups)
    col = _find_column(meta.column_names, rule.columns, suffixes, wave)
    if col is None:
        return out
    out.column = col
    labels = meta.variable_value_labels.get(col) or {}
    out.code_to_group, unmapped = _label_table(rule, labels, groups, non_substantive)
    out.unmapped_codes = frozenset(code for code, _ in unmapped)
    unmapped_text = [f"{code:g}={label}" for code, label in unmapped]
    fallbacks = []
    for base in rule.empty_fallback:
        fcol = _find_column(meta.column_names, (base,), suffixes, wave)
        if fcol is None or fcol == col or any(fcol == c for c, _ in fallbacks):
            continue
        table, f_unmapped = _label_table(rule, meta.variable_value_labels.get(fcol) or {}, groups, non_substantive)
        fallbacks.append((fcol, table))
        unmapped_text += [f"{fcol}: {code:g}={label}" for code, label in f_unmapped]
    out.fallbacks = tuple(fallbacks)
    if rule.hispanic:
        hcol = _find_column(meta.column_names, rule.hispanic["columns"], suffixes, wave)
        if hcol:
            hlabels = meta.variable_value_labels.get(hcol) or {}
            out.hispanic_column = hcol
            out.hispanic_yes = frozenset(float(c) for c, lab in hlabels.items()
                                         if any(p.search(normalise_label(lab)) for p in rule.hispanic["yes"]))
            out.overridden = frozenset(float(c) for c, lab in labels.items()
                                       if any(p.search(normalise_label(lab)) for p in rule.hispanic["overrides"]))
            out.hispanic_group = groups.index(rule.hispanic["group"])
    out.unmapped_labels = tuple(unmapped_text)
    return out


def map_demographics(meta, rules: DemographicRules, non_substantive, wave: str = "") -> list[AttributeMapping]:
    """One mapping per attribute, in table order (unmappable ones have ``column`` None)."""
    return [_map_attribute(rule, meta, rules.suffixes, non_substantive, wave) for rule in rules.attributes]


def _values(frame: pd.DataFrame, column: str) -> np.ndarray:
    return frame[column].to_numpy(dtype=np.float64, na_value=np.nan)


def _groups_of(raw: np.ndarray, table: dict[float, int]) -> np.ndarray:
    idx = np.full(len(raw), -1, dtype=np.int64)
    for code, g in table.items():
        idx[raw == code] = g
    return idx


def group_index(mapping: AttributeMapping, frame: pd.DataFrame) -> tuple[np.ndarray, dict[str, object]]:
    """Per respondent, the index of its group within the attribute (-1: outside every group), and
    how many respondents came from each fallback column or carried an unmapped label (reported)."""
    n = len(frame)
    if mapping.column is None:
        return np.full(n, -1, dtype=np.int64), {}
    raw = _values(frame, mapping.column)
    idx = _groups_of(raw, mapping.code_to_group)
    stats: dict[str, object] = {}
    empty = np.isnan(raw)
    for column, table in mapping.fallbacks:
        fallback = _values(frame, column)
        use = empty & ~np.isnan(fallback)
        idx[use] = _groups_of(fallback[use], table)
        empty &= ~use
        stats.setdefault("respondents_from_fallback", {})[column] = int(use.sum())
    if mapping.hispanic_column:
        hisp = _values(frame, mapping.hispanic_column)
        is_yes = np.isin(hisp, list(mapping.hispanic_yes))
        base_overridden = np.isin(raw, list(mapping.overridden)) | np.isnan(raw)
        idx[is_yes & base_overridden] = mapping.hispanic_group
    if mapping.unmapped_codes:
        stats["respondents_with_unmapped_label"] = int(np.isin(raw, list(mapping.unmapped_codes)).sum())
    return idx, stats
