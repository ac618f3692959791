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
    hispanic_column: str | None = None
    hispanic_yes: frozenset[float] = frozenset()
    overridden: frozenset[float] = frozenset()  # base codes Hispanic identity overrides
    hispanic_group: int = -1
    unmapped_labels: tuple[str, ...] = ()  # labels neither mapped nor deliberately excluded

    def columns(self) -> list[str]:
        return [c for c in (self.column, self.hispanic_column) if c]

    def report(self) -> dict:
        return {
            "column": self.column,
            "hispanic_column": self.hispanic_column,
            "mapped_groups": sorted({self.groups[i] for i in self.code_to_group.values()}
                                    | ({self.groups[self.hispanic_group]} if self.hispanic_column else set())),
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


def _map_attribute(rule: AttributeRule, meta, suffixes: tuple[str, ...], non_substantive,
                   wave: str) -> AttributeMapping:
    groups = tuple(g for g, _ in rule.groups)
    out = AttributeMapping(rule.name, groups)
    col = _find_column(meta.column_names, rule.columns, suffixes, wave)
    if col is None:
        return out
    out.column = col
    labels = meta.variable_value_labels.get(col) or {}
    unmapped = []
    overridden = set()
    for code, label in labels.items():
        group = rule.group_of(label)
        if group is not None:
            out.code_to_group[float(code)] = groups.index(group)
        elif not (rule.is_excluded(label) or non_substantive(label)):
            unmapped.append(f"{float(code):g}={label}")
        if rule.hispanic and any(p.search(normalise_label(label)) for p in rule.hispanic["overrides"]):
            overridden.add(float(code))
    if rule.hispanic:
        hcol = _find_column(meta.column_names, rule.hispanic["columns"], suffixes, wave)
        if hcol:
            hlabels = meta.variable_value_labels.get(hcol) or {}
            out.hispanic_column = hcol
            out.hispanic_yes = frozenset(float(c) for c, lab in hlabels.items()
                                         if any(p.search(normalise_label(lab)) for p in rule.hispanic["yes"]))
            out.overridden = frozenset(overridden)
            out.hispanic_group = groups.index(rule.hispanic["group"])
    out.unmapped_labels = tuple(unmapped)
    return out


def map_demographics(meta, rules: DemographicRules, non_substantive, wave: str = "") -> list[AttributeMapping]:
    """One mapping per attribute, in table order (unmappable ones have ``column`` None)."""
    return [_map_attribute(rule, meta, rules.suffixes, non_substantive, wave) for rule in rules.attributes]


def group_index(mapping: AttributeMapping, frame: pd.DataFrame) -> np.ndarray:
    """Per respondent, the index of its group within the attribute (-1: outside every group)."""
    n = len(frame)
    idx = np.full(n, -1, dtype=np.int64)
    if mapping.column is None:
        return idx
    raw = frame[mapping.column].to_numpy(dtype=np.float64, na_value=np.nan)
    for code, g in mapping.code_to_group.items():
        idx[raw == code] = g
    if mapping.hispanic_column:
        hisp = frame[mapping.hispanic_column].to_numpy(dtype=np.float64, na_value=np.nan)
        is_yes = np.isin(hisp, list(mapping.hispanic_yes))
        base_overridden = np.isin(raw, list(mapping.overridden)) | np.isnan(raw)
        idx[is_yes & base_overridden] = mapping.hispanic_group
    return idx
