"""Curated question metadata that beats SPSS labels where it exists.

* OpinionQA's ``info.csv`` per wave (question text, ordered references, option ordinals) and its
  500-question steering set;
* the method's ``opinionqa-xl.json`` (question text corrected from the questionnaires);
* ``survey-details.json`` (wave topics and fieldwork dates);
* OpinionQA's ``topic_mapping.json`` (coarse and fine topics).
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path

from ava.surveys.errors import SurveyInputError
from ava.surveys.readers import read_csv_rows, read_json

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


_INFO_COLUMNS = ("key", "question", "references", "option_ordinal", "option_mapping")


def _row_to_question(row: dict[str, str], wave: str, path: Path, line: int) -> OQAQuestion:
    try:
        return OQAQuestion(
            key=row["key"],
            wave=wave,
            question=row["question"].strip(),
            references=tuple(str(x) for x in ast.literal_eval(row["references"])),
            ordinals=tuple(float(x) for x in ast.literal_eval(row["option_ordinal"])),
            option_mapping={float(k): str(v) for k, v in ast.literal_eval(row["option_mapping"]).items()},
        )
    except (KeyError, ValueError, SyntaxError, TypeError, AttributeError) as exc:
        reason = " ".join(str(exc).split())
        raise SurveyInputError(f"{path}:{line}: cannot parse OpinionQA info row ({type(exc).__name__}: {reason}); "
                               "is this OpinionQA's info.csv?") from None


def _groups(path: Path) -> dict[str, tuple[str, ...]]:
    groups: dict[str, tuple[str, ...]] = {}
    for line, r in read_csv_rows(path, ("key", "options")):
        try:
            groups[r["key"]] = tuple(str(x) for x in ast.literal_eval(r["options"]))
        except (ValueError, SyntaxError, TypeError) as exc:
            raise SurveyInputError(f"{path}:{line}: cannot parse the group list of {r['key']!r} "
                                   f"({type(exc).__name__})") from None
    return groups


def load_opinionqa(root: str | Path) -> OpinionQA:
    """Read OpinionQA's ``human_resp`` tree (``root`` is it or its parent).

    Required, as in OpinionQA's release: at least one ``*_W<n>/info.csv``, the
    ``*disagreement_500/info.csv`` steering set and a ``metadata.csv`` (the group lists); anything
    missing or unreadable is a ``SurveyInputError`` naming the path. ``topic_mapping.json`` beside
    ``human_resp`` is optional (without it questions get no topic tags; the build warns).
    """
    root = Path(root)
    if (root / "human_resp").is_dir():
        root = root / "human_resp"
    hint = "pass --opinionqa-dir (OpinionQA's data folder holding human_resp/) or --sav-only"
    if not root.is_dir():
        raise SurveyInputError(f"{root}: no such folder; {hint}")
    folders = sorted(p for p in root.iterdir() if p.is_dir() and (p / "info.csv").is_file())
    wave_folders = [f for f in folders if _WAVE_IN_NAME.search(f.name)]
    steer_folders = [f for f in folders if "disagreement_500" in f.name]
    meta = next((f / "metadata.csv" for f in wave_folders if (f / "metadata.csv").is_file()), None)
    for missing, what in ((not wave_folders, "no wave folder with an info.csv (American_Trends_Panel_W26/info.csv)"),
                          (not steer_folders, "no steering set (*disagreement_500/info.csv)"),
                          (meta is None, "no metadata.csv (the group lists) in any wave folder")):
        if missing:
            raise SurveyInputError(f"{root}: not OpinionQA's human_resp folder: {what}; {hint}")
    questions: dict[str, list[OQAQuestion]] = {}
    files: list[Path] = []
    for folder in wave_folders:
        info = folder / "info.csv"
        wave = f"W{_WAVE_IN_NAME.search(folder.name).group(1)}"
        questions[wave] = [_row_to_question(r, wave, info, line) for line, r in read_csv_rows(info, _INFO_COLUMNS)]
        files.append(info)
    steer_rows = [r for f in steer_folders for _, r in read_csv_rows(f / "info.csv", ("key", "question"))]
    files += [f / "info.csv" for f in steer_folders] + [meta]
    topics: dict[str, dict[str, list[str]]] = {}
    topic_file = root.parent / "topic_mapping.json"
    if topic_file.is_file():
        files.append(topic_file)
        topics = read_json(topic_file)
        bad = next((k for k, v in topics.items() if not isinstance(v, dict)
                    or not all(isinstance(v.get(c, []), list) for c in ("cg", "fg"))), None)
        if bad is not None:
            raise SurveyInputError(f"{topic_file}: entry {bad[:60]!r} is not {{'cg': [...], 'fg': [...]}}")
    return OpinionQA(questions, frozenset((r["key"], r["question"].strip()) for r in steer_rows), len(steer_rows),
                     _groups(meta), topics, tuple(sorted(files)))


def topic_key(question: str, references: tuple[str, ...]) -> str:
    """OpinionQA's topic-mapping key: ``question [opt1/opt2/...]``."""
    return f"{question} [{'/'.join(references)}]"


def load_xl_questions(path: str | Path) -> dict[str, dict[str, dict]]:
    """``opinionqa-xl.json``: wave -> question code (no ``_W`` suffix) -> {question, options}."""
    data = read_json(path)
    for wave, entries in data.items():
        bad = not isinstance(entries, dict) or any(not isinstance(e, dict) for e in entries.values())
        if bad:
            raise SurveyInputError(f"{path}: wave {wave!r} is not an object of question objects; is this the "
                                   "method's opinionqa-xl.json?")
    return data


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
    for i, entry in enumerate(read_json(path, expect=list)):
        if not isinstance(entry, dict):
            raise SurveyInputError(f"{path}: entry {i} is not an object; is this the method's survey-details.json?")
        m = re.search(r"(\d+(?:\.\d+)?)", str(entry.get("name") or ""))
        if not m:
            continue
        wave = f"W{m.group(1)}"
        start, end = str(entry.get("start_date") or ""), str(entry.get("end_date") or "")
        out[wave] = WaveDetails(
            wave=wave,
            topic=str(entry.get("Topics") or "").strip() or None,
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
