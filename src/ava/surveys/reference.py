"""Check built per-group counts against OpinionQA's released unweighted counts.

``reference_counts/<American_Trends_Panel_Wxx>/<ATTRIBUTE>_data.json`` holds, per question key,
``{group: {option text: respondents}}``. Its ``MC_options`` lists are split wrongly where an
option contains a comma, so matching is on option *text*. Groups outside OpinionQA's group lists
(``nan``, ``Refused``, ``Mixed Race``) are not part of the benchmark and are not compared.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ava.contracts.surveys import SurveyQuestion
from ava.surveys.errors import SurveyInputError
from ava.surveys.readers import read_json

_NOT_GROUPS = ("MC_options", "question_text")
ReferenceFile = tuple[Path, str, dict]
"""(file, attribute, {question key: {group: {option text: respondents}}})."""


@dataclass
class ReferenceCheck:
    pairs: int = 0  # (question, attribute) entries compared
    pairs_matched: int = 0
    cells: int = 0  # (question, attribute, group) entries compared
    cells_matched: int = 0
    questions: set[str] = field(default_factory=set)
    mismatches: list[str] = field(default_factory=list)
    # (key, attribute, group or None when the question was not built, {label: (ours, released)})
    details: list[tuple[str, str, str | None, dict[str, tuple[int, int]]]] = field(default_factory=list)

    @property
    def match_rate(self) -> float:
        return self.pairs_matched / self.pairs if self.pairs else float("nan")

    def summary(self) -> dict:
        by: dict[str, set[str]] = {}
        for key, attribute, _, _ in self.details:
            wave = key.split("#")[0].rsplit("_", 1)[-1]
            by.setdefault(f"{wave}/{attribute}", set()).add(key)
        return {
            "mismatched_pairs_by_wave_attribute": {k: len(v) for k, v in sorted(by.items())},
            "questions": len(self.questions), "question_attribute_pairs": self.pairs,
            "pairs_matched": self.pairs_matched, "match_rate": self.match_rate,
            "group_cells": self.cells, "cells_matched": self.cells_matched,
            "mismatches": self.mismatches[:50],
        }


def _norm(label: str) -> str:
    """Option text as compared: case and spacing differ between releases ("neither better noR worse")."""
    return " ".join(str(label).split()).lower()


def load_reference(reference_dir: str | Path) -> list[ReferenceFile]:
    """Every ``*/<ATTRIBUTE>_data.json`` file, checked for shape (read before the build's expensive work)."""
    out = []
    for path in sorted(Path(reference_dir).glob("*/*_data.json")):
        data = read_json(path)
        for key, entry in data.items():
            ok = isinstance(entry, dict) and all(
                name in _NOT_GROUPS
                or (isinstance(opts, dict) and all(isinstance(n, int | float) for n in opts.values()))
                for name, opts in entry.items())
            if not ok:
                raise SurveyInputError(f"{path}: entry {key!r} is not {{group: {{option: count}}}}; is this "
                                       "OpinionQA's reference_counts?")
        out.append((path, path.name[: -len("_data.json")], data))
    return out


def compare_reference(questions: list[SurveyQuestion], reference: str | Path | list[ReferenceFile]) -> ReferenceCheck:
    """``reference``: the ``reference_counts`` folder or what ``load_reference`` read from it."""
    files = load_reference(reference) if isinstance(reference, str | Path) else reference
    by_key = {q.key: q for q in questions}
    check = ReferenceCheck()
    for path, attribute, data in files:
        for key, entry in data.items():
            check.pairs += 1
            check.questions.add(key)
            q = by_key.get(key)
            if q is None:
                check.mismatches.append(f"{path.parent.name}/{path.name}: {key} not built")
                check.details.append((key, attribute, None, {}))
                continue
            labels = [_norm(x) for x in list(q.options) + list(q.refusal_options)]
            ok = True
            for g in q.groups:
                if g.attribute != attribute:
                    continue
                ref = {_norm(k): v for k, v in entry.get(g.group, {}).items()}
                ours = dict(zip(labels, g.counts, strict=True))
                check.cells += 1
                same = set(ref) <= set(ours) and all(int(ref.get(lab, 0)) == c for lab, c in ours.items())
                if same:
                    check.cells_matched += 1
                else:
                    ok = False
                    diff = {lab: (ours.get(lab, 0), int(ref.get(lab, 0))) for lab in sorted(set(ours) | set(ref))
                            if ours.get(lab, 0) != int(ref.get(lab, 0))}
                    check.details.append((key, attribute, g.group, diff))
                    check.mismatches.append(f"{key} {attribute}={g.group}: (ours, released) {diff}")
            check.pairs_matched += ok
    return check
