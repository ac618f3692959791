"""CultureNLI (CALI; Huang & Yang 2023): does the model read entailment like US or Indian annotators?

Loader for ``data.tsv`` (tab-separated, read without quote processing: premises contain
quotes), majority labels per culture, the per-culture prompt, and the metrics per culture:
macro-F1 of ``P(entail) > t`` maximised over the published thresholds (chosen on the test set,
as published) and, beside it, the threshold-free AUROC of ``P(entail)``. All x100.
"""

from __future__ import annotations

import ast
import csv
import io
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.metrics import f1_score, roc_auc_score

from ava.contracts.scoring import ScoredItem, ScoreRequest
from ava.evals.data import DataError, LoadReport, locate, read_utf8, sample_units
from ava.evals.prompts.culture import culture_templates, join_segments
from ava.evals.task import EvalItem, TaskOptions, TaskResult

COLUMNS = ("premise", "hypothesis", "us_ratings", "in_ratings")
LABELS = ("E", "N", "C")
HOW_TO_GET = (
    "CultureNLI is not bundled with ava: its repository (github.com/SALT-NLP/CulturallyAwareNLI) has no licence, so "
    "it may not be redistributed; download data.tsv from there and pass --data PATH (a suite: --set "
    "culturenli_tsv=PATH, or put it at <data root>/culturenli/data.tsv)"
)
SETTINGS = {
    "culturenli_tsv": "data.tsv (same as --data with --benchmark culturenli)",
    "data_root": "folder holding one data folder per benchmark (default $AVA_DATA or ../shared/data)",
}


@dataclass(frozen=True)
class NliPair:
    """One premise-hypothesis pair with each culture's annotator labels and majority label."""

    row: int
    line: int
    premise: str
    hypothesis: str
    ratings: Mapping[str, tuple[str, ...]]
    gold: Mapping[str, str]
    tied: Mapping[str, bool]


def majority_label(labels: Sequence[str]) -> tuple[str, bool]:
    """The most frequent label and whether it was tied.

    Ties go to the tied label listed first (``Counter.most_common``), as in the published
    evaluation script; the number of ties is reported with the metrics.
    """
    counts = Counter(labels).most_common()
    return counts[0][0], len(counts) > 1 and counts[0][1] == counts[1][1]


def parse_ratings(text: str) -> tuple[str, ...]:
    """A ratings field: a Python list literal of E/N/C labels."""
    try:
        value = ast.literal_eval(text.strip())
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        raise ValueError(f"not a Python list literal: {text[:60]!r}") from None
    if not isinstance(value, list | tuple) or not value:
        raise ValueError(f"expected a non-empty list of E/N/C labels, got {text[:60]!r}")
    bad = sorted({str(v) for v in value if v not in LABELS})
    if bad:
        raise ValueError(f"labels {bad} are not E, N or C")
    return tuple(value)


def load_culturenli(path: str | Path) -> tuple[list[NliPair], LoadReport]:
    """Every usable pair of ``data.tsv``; each unusable one is counted with its line and reason."""
    path = Path(path)
    report = LoadReport(str(path))
    pairs: list[NliPair] = []
    cultures = culture_templates()["culturenli"]["cultures"]
    with io.StringIO(read_utf8(path), newline="") as fh:
        reader = csv.reader(fh, delimiter="\t", quoting=csv.QUOTE_NONE)
        header = next(reader, None)
        if header is None or tuple(h.strip() for h in header) != COLUMNS:
            raise DataError(f"{path}:1: header must be {'/'.join(COLUMNS)} (tab-separated), got {header}")
        for row_no, fields in enumerate(reader):
            line = reader.line_num
            report.rows += 1
            pair = _parse(row_no, line, fields, cultures, report)
            if pair is not None:
                pairs.append(pair)
    dupes = Counter((p.premise, p.hypothesis) for p in pairs)
    n_dupes = sum(n - 1 for n in dupes.values() if n > 1)
    if n_dupes:
        report.notes.append(f"{n_dupes} row(s) repeat an earlier premise-hypothesis pair; every row is kept "
                            "and scored (the published script keeps only the last of each)")
    report.kept = len(pairs)
    return pairs, report


def _parse(row: int, line: int, fields: list[str], cultures: Mapping[str, str], report: LoadReport
           ) -> NliPair | None:
    where = str(line)
    if len(fields) != len(COLUMNS):
        report.drop("wrong number of fields", where, f"{len(fields)} tab-separated fields, expected {len(COLUMNS)}")
        return None
    premise, hypothesis, *rating_fields = fields
    if not premise.strip():
        report.drop("empty premise", where, "empty premise; pair dropped")
        return None
    if not hypothesis.strip():
        report.drop("empty hypothesis", where, "empty hypothesis; pair dropped")
        return None
    ratings: dict[str, tuple[str, ...]] = {}
    for culture, text in zip(cultures, rating_fields, strict=True):
        try:
            ratings[culture] = parse_ratings(text)
        except ValueError as exc:
            report.drop("malformed ratings", where, f"{culture.lower()}_ratings: {exc}; pair dropped")
            return None
    majorities = {c: majority_label(r) for c, r in ratings.items()}
    return NliPair(row, line, premise, hypothesis, ratings,
                   {c: m[0] for c, m in majorities.items()}, {c: m[1] for c, m in majorities.items()})


# -- metrics ---------------------------------------------------------------------------------


def threshold_sweep(gold: Sequence[int], p_entail: Sequence[float], thresholds: Sequence[float]
                    ) -> list[tuple[float, float]]:
    """(threshold, macro-F1 of ``p_entail > threshold``) for each threshold."""
    y = np.asarray(gold, int)
    p = np.asarray(p_entail, float)
    return [(float(t), float(f1_score(y, (p > t).astype(int), average="macro", labels=[0, 1], zero_division=0)))
            for t in thresholds]


def auroc(gold: Sequence[int], p_entail: Sequence[float]) -> float | None:
    """Threshold-free: AUROC of ``P(entail)`` against entail-vs-not gold; None if one class only."""
    return float(roc_auc_score(gold, p_entail)) if len(set(gold)) == 2 else None


# -- the task --------------------------------------------------------------------------------


class CultureNLITask:
    """Two prompts per pair, one per culture ("US", "IN"), each scored against that culture's gold."""

    name = "culturenli"

    def __init__(self, pairs: Sequence[NliPair], report: LoadReport) -> None:
        tpl = culture_templates()
        self.template_version = str(tpl["version"])
        self.version = f"1+templates{self.template_version}"
        self._tpl = tpl["culturenli"]
        self.cultures: dict[str, str] = dict(self._tpl["cultures"])
        self.thresholds = [float(t) for t in self._tpl["thresholds"]]
        self.pairs = list(pairs)
        self.report = report
        self._items: list[EvalItem] | None = None

    def items(self) -> list[EvalItem]:
        if self._items is None:
            tpl, letters = self._tpl, tuple(self._tpl["options"])
            items = []
            for p in self.pairs:
                premise = tpl["premise"].format(premise=p.premise)
                for code, culture in self.cultures.items():
                    body = tpl["body"].format(hypothesis=p.hypothesis, culture=culture)
                    iid = f"{p.row}:{code}"
                    items.append(EvalItem(iid, ScoreRequest(iid, join_segments([premise, body, tpl["cue"]]), letters),
                                          {"unit": p.row, "line": p.line, "culture": code, "gold": p.gold[code],
                                           "entail": int(p.gold[code] == "E"), "tied": p.tied[code]}))
            self._items = items
        return self._items

    def metrics(self, items: Sequence[EvalItem], scores: Mapping[str, ScoredItem]) -> TaskResult:
        headline: dict[str, float | None] = {}
        summary, sweep_rows = [], []
        for code in self.cultures:
            mine = [i for i in items if i.meta["culture"] == code]
            if not mine:
                continue
            row, sweep, best_f1, area = self._culture(code, mine, scores)
            headline[code] = 100 * best_f1
            headline[f"{code}_auroc"] = None if area is None else 100 * area
            summary.append(row)
            sweep_rows += sweep
        n_pairs = len({i.meta["unit"] for i in items})
        return TaskResult(
            headline=headline,
            units=n_pairs,
            unit="pairs",
            description="macro-F1 (x100) of P(entail) > t, best t in the published sweep "
                        f"{self.thresholds} (chosen on the test set, as published); *_auroc: threshold-free "
                        "AUROC of P(entail) (x100). Gold: majority label per culture, entail vs not.",
            counts={"pairs": n_pairs, "prompts": len(items)},
            details={"summary": summary, "data": self.report.to_dict()},
            tables={"summary": summary, "thresholds": sweep_rows},
        )

    def _culture(self, code: str, mine: Sequence[EvalItem], scores: Mapping[str, ScoredItem]
                 ) -> tuple[dict[str, Any], list[dict[str, Any]], float, float | None]:
        """One culture's summary row, threshold-sweep rows, best macro-F1 and AUROC (unrounded)."""
        gold = [int(i.meta["entail"]) for i in mine]
        p_entail = [scores[i.id].probs[0] for i in mine]  # renormalised over E/N/C; E is first
        sweep = threshold_sweep(gold, p_entail, self.thresholds)
        best_t, best_f1 = max(sweep, key=lambda tf: (tf[1], -tf[0]))
        area = auroc(gold, p_entail)
        row = {
            "culture": code, "n": len(mine), "n_entail": sum(gold), "macro_f1": round(100 * best_f1, 4),
            "threshold": best_t, "auroc": None if area is None else round(100 * area, 4),
            "majority_ties": sum(bool(i.meta["tied"]) for i in mine),
            "mean_p_entail": round(float(np.mean(p_entail)), 6),
            "letter_mass_mean": round(float(np.mean([scores[i.id].letter_mass for i in mine])), 6),
        }
        sweep_rows = [{"culture": code, "threshold": t, "macro_f1": round(100 * f, 4),
                       "predicted_entail": int(sum(p > t for p in p_entail))} for t, f in sweep]
        return row, sweep_rows, best_f1, area


def make_tasks(options: TaskOptions) -> list[CultureNLITask]:
    """The CultureNLI task: ``options.data`` is ``data.tsv`` (or its folder); default
    ``<data root>/culturenli/data.tsv``. ``limit``: a seeded sample of pairs (both cultures each)."""
    data = options.data if options.data is not None else options.settings.get("culturenli_tsv")
    path = locate(data, "culturenli", "data.tsv", HOW_TO_GET, options.settings)
    pairs, report = load_culturenli(path)
    report.warn()
    if not pairs:
        raise DataError(f"no usable CultureNLI pairs: {report.summary()}")
    pairs = [pairs[i] for i in sample_units(len(pairs), options.limit_for("culturenli"), options.seed)]
    return [CultureNLITask(pairs, report)]
