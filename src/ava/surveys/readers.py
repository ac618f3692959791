"""Read the small curated JSON / CSV inputs of a survey build, turning any defect into one line that
names the file (and the line where there is one) instead of a decoder traceback."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from ava.surveys.errors import SurveyInputError


def _text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise SurveyInputError(f"{path}: not UTF-8 text (byte {exc.start}: {exc.reason}); re-download the file") \
            from None
    except OSError as exc:
        raise SurveyInputError(f"{path}: cannot read ({exc.strerror or exc})") from None


def read_json(path: str | Path, expect: type = dict) -> Any:
    """The parsed file, which must be of type ``expect`` at the top level."""
    path = Path(path)
    try:
        data = json.loads(_text(path))
    except json.JSONDecodeError as exc:
        raise SurveyInputError(f"{path}:{exc.lineno}: not valid JSON ({exc.msg})") from None
    if not isinstance(data, expect):
        raise SurveyInputError(f"{path}: expected a JSON {'object' if expect is dict else 'array'} at the top "
                               f"level, found {type(data).__name__}")
    return data


def read_csv_rows(path: str | Path, required: tuple[str, ...]) -> list[tuple[int, dict[str, str]]]:
    """(line number, row) for every data row; the header must name every ``required`` column."""
    path = Path(path)
    reader = csv.DictReader(_text(path).splitlines(keepends=True))
    try:
        rows = [(reader.line_num, row) for row in reader]
    except csv.Error as exc:
        raise SurveyInputError(f"{path}:{reader.line_num}: not valid CSV ({exc})") from None
    missing = [c for c in required if c not in (reader.fieldnames or ())]
    if missing:
        raise SurveyInputError(f"{path}: no column {', '.join(missing)} in the header "
                               f"({', '.join(reader.fieldnames or ()) or 'empty file'})")
    for line, row in rows:
        if None in row or any(row.get(c) is None for c in required):
            raise SurveyInputError(f"{path}:{line}: row does not have the header's "
                                   f"{len(reader.fieldnames or ())} fields")
    return rows
