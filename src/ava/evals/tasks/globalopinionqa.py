"""GlobalOpinionQA (Durmus et al. 2023): how similar a model's answers are to each country's.

Loader for the official CSV (``question, selections, options, source``; ``selections`` and
``options`` are Python reprs, read with ``ast.literal_eval`` -- never ``eval``), the default and
cross-national prompts, and the metrics: per-pair similarity 1 - Jensen-Shannon distance
(natural log), Avg Sim (mean over pairs) and Skew (sample standard deviation over countries of
each country's mean similarity), all x100, with a per-country table and plot.

The published CultureBank script divides the divergence by the number of options before the
square root, which inflates similarity; ``goqa_similarity="culturebank-compat"`` adds those
numbers, labelled ``*_cbcompat``, beside the standard ones (never instead of them). The
similarity and its summaries are :mod:`ava.metrics.similarity`'s.
"""

from __future__ import annotations

import ast
import csv
import hashlib
import io
import math
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from ava.contracts.results import ItemScore, PlotSpec
from ava.contracts.scoring import ScoredItem, ScoreRequest
from ava.evals.data import DataError, DataNotFound, LoadReport, locate, read_utf8
from ava.evals.prompts.culture import culture_templates, join_segments
from ava.evals.task import EvalItem, TaskOptions, TaskResult
from ava.metrics.resampling import resample_weights
from ava.metrics.similarity import VARIANTS, similarity, summarise
from ava.metrics.similarity import reduce_similarity as _reduce
from ava.models.letters import LETTERS, option_letters
from ava.paths import bundled
from ava.subsets import seeded_subset

SUM_TOLERANCE = 1e-6
"""A country's fractions may miss 1 by this much (float rounding) without comment."""
RENORMALISE_TOLERANCE = 0.05
"""Fractions summing within this of 1 are renormalised (counted); further off, the pair is dropped."""

PROMPTS = ("cross", "default", "both")
HOW_TO_GET = (
    "pass --data PATH to the official CSV (Hugging Face dataset Anthropic/llm_global_opinions, "
    "exported with columns question, selections, options, source)"
)

BUNDLED = ("evals", "globalopinionqa", "global_opinions_subset.csv")
"""The real 1,270-question subset shipped with ava (CC BY-NC-SA 4.0; card: README.md beside it)."""

SETTINGS = {
    "goqa_prompt": "cross (default: 'How would someone from {country} answer'), default, or both",
    "goqa_similarity": "standard (default), or culturebank-compat to add the published script's labelled variant",
    "goqa_countries": "comma-separated country keys to keep, as in the file (default: all)",
    "globalopinionqa_csv": "the official CSV (same as --data with --benchmark globalopinionqa)",
    "data_root": "folder holding one data folder per benchmark (default $AVA_DATA or ../shared/data)",
}

_WRAPPER = re.compile(r"^\s*defaultdict\(\s*<class 'list'>\s*,\s*(.*)\)\s*$", re.S)
_QUALIFIER = re.compile(r"^(.*?)\s*\(([^()]*)\)\s*$")


@dataclass(frozen=True)
class GoqaQuestion:
    """One question with each country's answer distribution (aligned with ``options``)."""

    qid: int
    line: int
    question: str
    options: tuple[str, ...]
    source: str
    selections: Mapping[str, tuple[float, ...]]


def split_country(key: str) -> tuple[str, str]:
    """``"India (Non-national sample)"`` -> ``("India", "Non-national sample")``; no qualifier -> ``""``."""
    m = _QUALIFIER.match(key)
    return (m.group(1), m.group(2)) if m else (key.strip(), "")


def parse_selections(text: str) -> dict[str, list[Any]]:
    """The ``selections`` field: ``defaultdict(<class 'list'>, {country: [fractions]})`` or a plain dict."""
    m = _WRAPPER.match(text)
    body = m.group(1) if m else text.strip()
    try:
        value = ast.literal_eval(body)
    except (ValueError, SyntaxError, MemoryError, RecursionError) as exc:
        raise ValueError(f"selections is not a Python dict literal ({type(exc).__name__}): {text[:80]!r}") from None
    if not isinstance(value, dict):
        raise ValueError(f"selections is a {type(value).__name__}, not a dict of country -> fractions")
    return value


def parse_options(text: str) -> list[str]:
    """The ``options`` field: a Python list literal of option texts."""
    try:
        value = ast.literal_eval(text.strip())
    except (ValueError, SyntaxError, MemoryError, RecursionError) as exc:
        raise ValueError(f"options is not a Python list literal ({type(exc).__name__}): {text[:80]!r}") from None
    if not isinstance(value, list | tuple) or not value or not all(isinstance(o, str) for o in value):
        raise ValueError(f"options must be a non-empty list of strings, got {text[:80]!r}")
    return [str(o) for o in value]


def check_distribution(values: Any, n_options: int) -> tuple[tuple[float, ...] | None, str, str]:
    """(distribution or None, problem reason, message): validates one country's fractions."""
    if not isinstance(values, list | tuple):
        return None, "malformed selections", f"fractions are a {type(values).__name__}, not a list"
    if not values:
        return None, "country with no data", "empty list of fractions"
    if not all(isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) for v in values):
        return None, "malformed selections", f"non-numeric fraction in {list(values)[:6]}"
    if len(values) != n_options:
        return None, "fractions/options length mismatch", f"{len(values)} fractions for {n_options} options"
    if any(v < 0 for v in values):
        return None, "malformed selections", "negative fraction"
    total = float(sum(values))
    if total == 0:
        return None, "country with no data", "all fractions are 0"
    if abs(total - 1) > RENORMALISE_TOLERANCE:
        return None, "distribution does not sum to 1", f"fractions sum to {total:.4f}, not 1"
    dist = tuple(float(v) / total for v in values)
    if abs(total - 1) > SUM_TOLERANCE:
        return dist, "renormalised", f"fractions sum to {total:.4f}; renormalised to 1"
    return dist, "", ""


def load_globalopinionqa(path: str | Path, countries: Sequence[str] | None = None
                         ) -> tuple[list[GoqaQuestion], LoadReport]:
    """Questions with their valid country distributions, and what was dropped and why.

    ``countries`` (keys as in the file, e.g. ``"India (Non-national sample)"``) restricts the
    countries; one that occurs nowhere is reported as a country with no data.
    """
    path = Path(path)
    report = LoadReport(str(path))
    wanted = set(countries) if countries else None
    seen: set[str] = set()
    questions: list[GoqaQuestion] = []
    with io.StringIO(read_utf8(path), newline="") as fh:
        reader = csv.DictReader(fh)
        missing = {"question", "selections", "options"} - set(reader.fieldnames or [])
        if missing:
            raise ValueError(f"{path}: missing column(s) {sorted(missing)}; the official CSV has "
                             "question, selections, options, source")
        next_start = reader.line_num + 1  # a record may span several lines: track where each starts
        for qid, row in enumerate(reader):
            start, next_start = next_start, reader.line_num + 1
            report.rows += 1
            q = _parse_row(qid, start, row, report, wanted, seen)
            if q is not None:
                questions.append(q)
    for country in sorted((wanted or set()) - seen):
        report.drop("country with no data", "-", f"country {country!r} does not occur in the file")
    report.kept = len(questions)
    return questions, report


def _parse_row(qid: int, line: int, row: Mapping[str, str | None], report: LoadReport,
               wanted: set[str] | None, seen: set[str]) -> GoqaQuestion | None:
    where = str(line)
    question = (row.get("question") or "").strip()
    if not question:
        report.drop("empty question", where, "empty question text; row dropped")
        return None
    try:
        options = parse_options(row.get("options") or "")
        selections = parse_selections(row.get("selections") or "")
    except ValueError as exc:
        report.drop("malformed selections" if "selections" in str(exc) else "malformed options", where,
                    f"{exc}; row dropped")
        return None
    if len(options) > len(LETTERS):
        report.drop("too many options", where, f"{len(options)} options (at most {len(LETTERS)}); row dropped")
        return None
    kept: dict[str, tuple[float, ...]] = {}
    for country, values in selections.items():
        country = str(country)
        if wanted is not None and country not in wanted:
            continue
        seen.add(country)
        dist, reason, message = check_distribution(values, len(options))
        if dist is None:
            report.drop(reason, where, f"{country}: {message}; pair dropped")
            continue
        if reason:
            report.repair(reason, where, f"{country}: {message}")
        kept[country] = dist
    if not kept:
        if wanted is None or selections.keys() & wanted:
            report.drop("question without valid countries", where, "no country has a valid distribution")
        return None
    return GoqaQuestion(qid, line, question, tuple(options), (row.get("source") or "").strip(), kept)


# -- the task --------------------------------------------------------------------------------


class GlobalOpinionQATask:
    """One prompt per (question, country) (cross-national) or per question (default prompt)."""

    def __init__(self, questions: Sequence[GoqaQuestion], report: LoadReport, prompt: str = "cross",
                 compat: bool = False, source: Mapping[str, Any] | None = None) -> None:
        if prompt not in ("cross", "default"):
            raise ValueError(f"unknown prompt {prompt!r} (cross or default)")
        tpl = culture_templates()
        self.prompt = prompt
        self.compat = compat
        self.name = "globalopinionqa" if prompt == "cross" else "globalopinionqa-default"
        self.reducer = "similarity"
        self.template_version = str(tpl["version"])
        self.version = f"1+templates{self.template_version}"
        self.questions = list(questions)
        self.report = report
        self.source = dict(source or {})
        self._tpl = tpl["globalopinionqa"]
        self._items: list[EvalItem] | None = None

    def _segments(self, q: GoqaQuestion, country: str | None) -> tuple[str, ...]:
        tpl = self._tpl
        letters = option_letters(len(q.options))
        options = "\n".join(tpl["option"].format(letter=a, text=t) for a, t in zip(letters, q.options, strict=True))
        head = tpl["cross_national"]["head"].format(country=country) if country else tpl["default"]["head"]
        return join_segments([head, tpl["body"].format(question=q.question, options=options), tpl["cue"]])

    def items(self) -> list[EvalItem]:
        if self._items is None:
            items: list[EvalItem] = []
            for q in self.questions:
                letters = option_letters(len(q.options))
                if self.prompt == "cross":
                    for country, dist in q.selections.items():
                        iid = f"{q.qid}:{country}"
                        items.append(EvalItem(iid, ScoreRequest(iid, self._segments(q, country), letters),
                                              {"unit": q.qid, "line": q.line, "country": country,
                                               "human": list(dist), "source": q.source}))
                else:
                    iid = str(q.qid)
                    humans = {c: list(d) for c, d in q.selections.items()}
                    items.append(EvalItem(iid, ScoreRequest(iid, self._segments(q, None), letters),
                                          {"unit": q.qid, "line": q.line, "humans": humans, "source": q.source}))
            self._items = items
        return self._items

    def score(self, items: Sequence[EvalItem], outputs: Mapping[str, ScoredItem]) -> list[ItemScore]:
        """Per prompt: for each of its countries (one, cross-national) the model's and the uniform
        distribution's similarity to the country's answers, and the letter mass."""
        out = []
        for item in items:
            s = outputs[item.id]
            humans = {item.meta["country"]: item.meta["human"]} if self.prompt == "cross" else item.meta["humans"]
            pairs = []
            for country, human in humans.items():
                pair = [country, similarity(s.probs, human), similarity([1 / len(human)] * len(human), human)]
                if self.compat:
                    pair.append(similarity(s.probs, human, "culturebank-compat"))
                pairs.append(pair)
            out.append(ItemScore(item.id, str(item.meta["unit"]), {"pairs": pairs, "letter_mass": s.letter_mass}))
        return out

    def metrics(self, scores: Sequence[ItemScore]) -> TaskResult:
        pairs = [(p, s.values["letter_mass"]) for s in scores for p in s.values["pairs"]]
        if not pairs:
            raise DataError(f"{self.name}: no (question, country) pairs to score; see the load report: "
                            f"{self.report.summary()}")
        headline = {k: float(v[0]) if np.isfinite(v[0]) else None
                    for k, v in _reduce(scores, resample_weights(len({s.unit for s in scores}), 0)).metrics.items()}
        per_variant = {"standard": summarise([(p[0], p[1]) for p, _ in pairs])[2]}
        if self.compat:
            per_variant["culturebank-compat"] = summarise([(p[0], p[3]) for p, _ in pairs])[2]
        u_avg, u_skew, u_by_country = summarise([(p[0], p[2]) for p, _ in pairs])
        ranked = self._country_rows(per_variant, u_by_country)
        prompt = "cross-national" if self.prompt == "cross" else "default"
        n_questions = len({s.unit for s in scores})
        return TaskResult(
            headline=headline,
            units=n_questions,
            unit="questions",
            description="x100; similarity = 1 - Jensen-Shannon distance (natural log) between the model's and the "
            "country's distributions over all listed options; avg_sim: mean over (question, country) pairs; skew: "
            "sample standard deviation over countries of each country's mean similarity (lower = more even)"
            + ("; *_cbcompat: 1 - sqrt(JS divergence / number of options), the published CultureBank "
               "script's variant, which inflates similarity (for comparison with published numbers only)"
               if self.compat else ""),
            counts={"questions": n_questions, "pairs": len(pairs), "countries": len(ranked), "prompts": len(scores)},
            details={"prompt": prompt,
                     "reference": {"uniform_avg_sim": 100 * u_avg,
                                   "uniform_skew": None if u_skew is None else 100 * u_skew},
                     "letter_mass_mean": float(np.mean([m for _, m in pairs])),
                     "data": {**self.report.to_dict(), **self.source}},
            tables={"by_country": ranked},
            plots=[PlotSpec(
                name="similarity_by_country",
                title=f"GlobalOpinionQA ({prompt} prompt): similarity by country (1 - JS distance, x100)",
                labels=[r["country"] for r in ranked],
                series={"model": [r["similarity"] for r in ranked],
                        "uniform": [r["uniform_similarity"] for r in ranked]},
                ylabel="mean similarity x100",
                reference={"model Avg Sim": headline["avg_sim"]},
            )],
        )

    def _country_rows(self, per_variant: Mapping[str, Mapping[str, list[float]]],
                      uniform: Mapping[str, list[float]]) -> list[dict[str, Any]]:
        """One row per country, best similarity first."""
        rows = []
        for country in sorted(per_variant["standard"]):
            name, qualifier = split_country(country)
            sims = per_variant["standard"][country]
            row: dict[str, Any] = {"country": country, "country_name": name, "sample": qualifier,
                                   "n_questions": len(sims), "similarity": round(100 * float(np.mean(sims)), 4)}
            if self.compat:
                row["similarity_cbcompat"] = round(100 * float(np.mean(per_variant["culturebank-compat"][country])), 4)
            row["uniform_similarity"] = round(100 * float(np.mean(uniform[country])), 4)
            rows.append(row)
        return sorted(rows, key=lambda r: (-r["similarity"], r["country"]))


def make_tasks(options: TaskOptions) -> list[GlobalOpinionQATask]:
    """GlobalOpinionQA tasks.

    ``options.data``: the official CSV (or a folder holding ``global_opinions*.csv``); without it,
    ``<data root>/globalopinionqa/global_opinions_subset.csv``, else the bundled subset
    (:func:`find_data`). ``limit``: a seeded sample of
    questions (each keeps all its countries). Settings: see ``SETTINGS``.
    """
    settings = options.settings
    goqa_prompt = settings.get("goqa_prompt", "cross")
    goqa_similarity = settings.get("goqa_similarity", "standard")
    if goqa_prompt not in PROMPTS:
        raise ValueError(f"goqa_prompt must be one of {', '.join(PROMPTS)} (got {goqa_prompt!r})")
    if goqa_similarity not in VARIANTS:
        raise ValueError(f"goqa_similarity must be one of {', '.join(VARIANTS)} (got {goqa_similarity!r})")
    path, source = find_data(options)
    countries = [c.strip() for c in settings.get("goqa_countries", "").split(",") if c.strip()] or None
    questions, report = load_globalopinionqa(path, countries)
    report.warn()
    if not questions:
        raise DataError(f"no usable GlobalOpinionQA questions: {report.summary()}")
    questions = [questions[i] for i in seeded_subset(len(questions), options.limit_for("globalopinionqa"),
                                                    options.seed)]
    prompts = ["cross", "default"] if goqa_prompt == "both" else [goqa_prompt]
    compat = goqa_similarity == "culturebank-compat"
    return [GlobalOpinionQATask(questions, report, p, compat, source) for p in prompts]


def find_data(options: TaskOptions) -> tuple[Path, dict[str, Any]]:
    """The CSV to read, and where it came from (recorded in every result's ``details.data``).

    A path given (``--data``, ``--set globalopinionqa_csv``) must exist; without one the data
    root's ``globalopinionqa/global_opinions_subset.csv`` is used, else the subset bundled with
    ava, saying so: a fresh installation scores the benchmark offline, and the record shows
    which data (and under which licence) every number came from.
    """
    settings = options.settings
    data = options.data if options.data is not None else settings.get("globalopinionqa_csv")
    name = "global_opinions_subset.csv"
    if data is not None:
        if Path(data).expanduser().is_dir():
            folder = Path(data).expanduser()
            found = sorted(folder.glob("global_opinions*.csv"))
            data = found[0] if found else folder / "global_opinions.csv"
        path, origin = locate(data, "globalopinionqa", name, HOW_TO_GET, settings), "given"
    else:
        try:
            path, origin = locate(None, "globalopinionqa", name, HOW_TO_GET, settings), "data root"
        except DataNotFound as exc:
            path, origin = bundled(*BUNDLED), "bundled"
            card = bundled_card()
            print(f"GlobalOpinionQA: {str(exc).split(';')[0]}; using the subset bundled with ava "
                  f"({card['questions']:,} questions, {card['licence']}: non-commercial use, with attribution; "
                  f"card: {path.parent / 'README.md'})", file=sys.stderr)
    source: dict[str, Any] = {"source": origin, "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}
    if origin == "bundled":
        card = bundled_card()
        source.update({"licence": card["licence"], "attribution": card["attribution"],
                       "provenance": card["provenance"], "card": str(path.parent / "README.md")})
    return path, source


def bundled_card() -> dict[str, Any]:
    """The ``ava:`` block of the bundled subset's data card (licence, attribution, sha256, counts)."""
    text = bundled(*BUNDLED[:-1], "README.md").read_text(encoding="utf-8")
    header = text.split("---\n")[1]
    return dict(yaml.safe_load(header)["ava"])
