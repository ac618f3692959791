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

from ava.contracts.results import ItemScore
from ava.contracts.scoring import ScoredItem, ScoreRequest
from ava.evals.data import DataError, LoadReport, locate, read_utf8
from ava.evals.prompts.culture import culture_templates, join_segments
from ava.evals.task import EvalItem, TaskOptions, TaskResult
from ava.metrics.classification import auroc, macro_f1_sweep, reduce_entailment
from ava.metrics.resampling import resample_weights
from ava.subsets import seeded_subset

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


# -- the task --------------------------------------------------------------------------------


class CultureNLITask:
    """Two prompts per pair, one per culture ("US", "IN"), each scored against that culture's gold."""

    name = "culturenli"
    reducer = "entailment"

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

    def score(self, items: Sequence[EvalItem], outputs: Mapping[str, ScoredItem]) -> list[ItemScore]:
        """Per prompt: P(entail) (E renormalised over E/N/C; E is the first letter) against the
        culture's entail-vs-not gold, with the thresholds the F1 sweep tries."""
        return [ItemScore(i.id, str(i.meta["unit"]), {
            "culture": i.meta["culture"], "entail": int(i.meta["entail"]), "tied": bool(i.meta["tied"]),
            "p_entail": outputs[i.id].probs[0], "letter_mass": outputs[i.id].letter_mass,
            "thresholds": self.thresholds}) for i in items]

    def metrics(self, scores: Sequence[ItemScore]) -> TaskResult:
        reduced = reduce_entailment(scores, resample_weights(len({s.unit for s in scores}), 0)).metrics
        headline: dict[str, float | None] = {k: float(v[0]) if np.isfinite(v[0]) else None for k, v in reduced.items()}
        summary, sweep_rows = [], []
        for code in self.cultures:
            mine = [s for s in scores if s.values["culture"] == code]
            if mine:
                row, sweep = self._culture(code, mine)
                summary.append(row)
                sweep_rows += sweep
        n_pairs = len({s.unit for s in scores})
        return TaskResult(
            headline=headline,
            units=n_pairs,
            unit="pairs",
            description="macro-F1 (x100) of P(entail) > t, best t in the published sweep "
                        f"{self.thresholds} (chosen on the test set, as published); *_auroc: threshold-free "
                        "AUROC of P(entail) (x100). Gold: majority label per culture, entail vs not.",
            counts={"pairs": n_pairs, "prompts": len(scores)},
            details={"summary": summary, "data": self.report.to_dict()},
            tables={"summary": summary, "thresholds": sweep_rows},
        )

    def _culture(self, code: str, mine: Sequence[ItemScore]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """One culture's summary row and threshold-sweep rows."""
        gold = [int(s.values["entail"]) for s in mine]
        p_entail = [float(s.values["p_entail"]) for s in mine]
        sweep = macro_f1_sweep(gold, p_entail, self.thresholds)
        best_t, best_f1 = max(sweep, key=lambda tf: (tf[1], -tf[0]))
        area = auroc(gold, p_entail)
        row = {
            "culture": code, "n": len(mine), "n_entail": sum(gold), "macro_f1": round(100 * best_f1, 4),
            "threshold": best_t, "auroc": None if area is None else round(100 * area, 4),
            "majority_ties": sum(bool(s.values["tied"]) for s in mine),
            "mean_p_entail": round(float(np.mean(p_entail)), 6),
            "letter_mass_mean": round(float(np.mean([s.values["letter_mass"] for s in mine])), 6),
        }
        sweep_rows = [{"culture": code, "threshold": t, "macro_f1": round(100 * f, 4),
                       "predicted_entail": int(sum(p > t for p in p_entail))} for t, f in sweep]
        return row, sweep_rows


def make_tasks(options: TaskOptions) -> list[CultureNLITask]:
    """The CultureNLI task: ``options.data`` is ``data.tsv`` (or its folder); default
    ``<data root>/culturenli/data.tsv``. ``limit``: a seeded sample of pairs (both cultures each)."""
    data = options.data if options.data is not None else options.settings.get("culturenli_tsv")
    path = locate(data, "culturenli", "data.tsv", HOW_TO_GET, options.settings)
    pairs, report = load_culturenli(path)
    report.warn()
    if not pairs:
        raise DataError(f"no usable CultureNLI pairs: {report.summary()}")
    pairs = [pairs[i] for i in seeded_subset(len(pairs), options.limit_for("culturenli"), options.seed)]
    return [CultureNLITask(pairs, report)]
