"""Curated question metadata that beats SPSS labels where it exists.

* OpinionQA's ``info.csv`` per wave (question text, ordered references, option ordinals) and its
  500-question steering set;
* the method's ``opinionqa-xl.json`` (question text corrected from the questionnaires);
* ``survey-details.json`` (wave topics and fieldwork dates);
* OpinionQA's ``topic_mapping.json`` (coarse and fine topics).
"""

from __future__ import annotations

import ast
import csv
import json
import re
from dataclasses import dataclass
from pathlib import Path

_WAVE_IN_NAME = re.compile(r"W(\d+(?:\.\d+)?)$")
_MONTHS = {m: i for i, m in enumerate(
    ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"], start=1)}


@dataclass(frozen=True)
class OQAQuestion:
    """One row of OpinionQA's info.csv."""

    key: str  # column name, e.g. SAFECRIME_W26
    wave: str
    question: str
    references: tuple[str, ...]  # all options in order, non-substantive last
    ordinals: tuple[float, ...]  # positions of the first len(ordinals) references
    option_mapping: dict[float, str]  # code -> label, as OpinionQA read it from the .sav

    @property
    def substantive(self) -> tuple[str, ...]:
        return self.references[: len(self.ordinals)]

    @property
    def non_substantive(self) -> tuple[str, ...]:
        return self.references[len(self.ordinals):]


@dataclass(frozen=True)
class OpinionQA:
    questions: dict[str, list[OQAQuestion]]  # wave -> rows in info.csv order
    steer500: frozenset[tuple[str, str]]  # (key, question text): keys alone are not unique
    steer500_rows: int
    groups: dict[str, tuple[str, ...]]  # attribute -> groups (metadata.csv)
    topics: dict[str, dict[str, list[str]]]  # "question [opt/...]" -> {"cg": [...], "fg": [...]}
    files: tuple[Path, ...]


def _parse_info(path: Path) -> list[dict[str, str]]:
    with open(path, encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def _row_to_question(row: dict[str, str], wave: str, path: Path, line: int) -> OQAQuestion:
    try:
        return OQAQuestion(
            key=row["key"],
            wave=wave,
            question=row["question"].strip(),
            references=tuple(ast.literal_eval(row["references"])),
            ordinals=tuple(float(x) for x in ast.literal_eval(row["option_ordinal"])),
            option_mapping={float(k): v for k, v in ast.literal_eval(row["option_mapping"]).items()},
        )
    except (KeyError, ValueError, SyntaxError) as exc:
        raise ValueError(f"{path}:{line}: cannot parse OpinionQA info row ({exc}); is this OpinionQA's info.csv?")\
            from exc


def load_opinionqa(root: str | Path) -> OpinionQA:
    """Read OpinionQA's ``human_resp`` tree (``root`` is it or its parent)."""
    root = Path(root)
    if (root / "human_resp").is_dir():
        root = root / "human_resp"
    questions: dict[str, list[OQAQuestion]] = {}
    steer: set[tuple[str, str]] = set()
    steer_rows = 0
    groups: dict[str, tuple[str, ...]] = {}
    files: list[Path] = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        info = folder / "info.csv"
        if not info.is_file():
            continue
        files.append(info)
        rows = _parse_info(info)
        if "disagreement_500" in folder.name:
            steer.update((r["key"], r["question"].strip()) for r in rows)
            steer_rows += len(rows)
            continue
        m = _WAVE_IN_NAME.search(folder.name)
        if not m:
            continue
        wave = f"W{m.group(1)}"
        questions[wave] = [_row_to_question(r, wave, info, i + 2) for i, r in enumerate(rows)]
        meta = folder / "metadata.csv"
        if meta.is_file() and not groups:
            files.append(meta)
            for r in _parse_info(meta):
                groups[r["key"]] = tuple(ast.literal_eval(r["options"]))
    topics: dict[str, dict[str, list[str]]] = {}
    topic_file = root.parent / "topic_mapping.json"
    if topic_file.is_file():
        files.append(topic_file)
        topics = json.loads(topic_file.read_text(encoding="utf-8"))
    return OpinionQA(questions, frozenset(steer), steer_rows, groups, topics, tuple(files))


def topic_key(question: str, references: tuple[str, ...]) -> str:
    """OpinionQA's topic-mapping key: ``question [opt1/opt2/...]``."""
    return f"{question} [{'/'.join(references)}]"


def load_xl_questions(path: str | Path) -> dict[str, dict[str, dict]]:
    """``opinionqa-xl.json``: wave -> question code (no ``_W`` suffix) -> {question, options}."""
    return json.loads(Path(path).read_text(encoding="utf-8"))


@dataclass(frozen=True)
class WaveDetails:
    wave: str
    topic: str | None
    date: str | None  # ISO date the fieldwork ended
    fieldwork: str | None
    link: str | None


def _iso_end_date(start: str, end: str) -> str | None:
    """'Aug. 4, 2014' (month borrowed from the start when missing, as in '17, 2022') -> 2014-08-04."""
    year = re.search(r"(19|20)\d\d", end)
    if not year:
        return None
    month = None
    for text in (end, start):
        for word in re.findall(r"[A-Za-z]+", text):
            if word[:3].lower() in _MONTHS:
                month = _MONTHS[word[:3].lower()]
                break
        if month:
            break
    day = re.search(r"\b(\d{1,2})\b", end.replace(year.group(0), ""))
    if not month:
        return None
    return f"{year.group(0)}-{month:02d}-{int(day.group(1)) if day else 1:02d}"


def load_survey_details(path: str | Path) -> dict[str, WaveDetails]:
    out: dict[str, WaveDetails] = {}
    for entry in json.loads(Path(path).read_text(encoding="utf-8")):
        m = re.search(r"(\d+(?:\.\d+)?)", entry.get("name", ""))
        if not m:
            continue
        wave = f"W{m.group(1)}"
        start, end = entry.get("start_date", ""), entry.get("end_date", "")
        out[wave] = WaveDetails(
            wave=wave,
            topic=(entry.get("Topics") or "").strip() or None,
            date=_iso_end_date(start, end),
            fieldwork=f"{start} - {end}".strip(" -") or None,
            link=entry.get("link"),
        )
    return out


def date_from_folder(folder: str) -> str | None:
    """'W54_Sep19' -> '2019-09': the download's folder name when survey-details lacks the wave."""
    m = re.search(r"_([A-Za-z]+)-?(\d\d)$", folder)
    if not m or m.group(1)[:3].lower() not in _MONTHS:
        return None
    return f"20{m.group(2)}-{_MONTHS[m.group(1)[:3].lower()]:02d}"
