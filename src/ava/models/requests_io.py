"""Reading score requests from JSONL, and the rows ``ava score`` writes.

While a run is going its results are appended to ``<out>.partial`` (resumable); ``<out>`` is
written, in input order, only when every request is scored, and the run record beside it
(``<out>.run.json``) says so.
"""

from __future__ import annotations

import difflib
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ava.contracts.scoring import ScoredItem, ScoreRequest

KEYS = ("id", "prompt", "segments", "options")
"""Every key a request line may have: any other is refused (a misspelt key would be ignored)."""


@dataclass(frozen=True)
class BadLine:
    line: int
    reason: str
    id: str | None = None  # the request's id, where the line has a readable one

    def __str__(self) -> str:
        where = f"line {self.line}" + (f" (id {self.id!r})" if self.id is not None else "")
        return f"{where}: {self.reason}"


def parse_request(obj: object) -> ScoreRequest:
    """One JSON object to a request: ``segments`` (list of str) or ``prompt`` (str), ``options``.

    Nothing in a line is ignored: an unknown key, or both ``prompt`` and ``segments``, is an error
    rather than a guess at which the user meant; so is text that is not Unicode (a lone surrogate
    such as ``"\\ud800"``, which JSON can spell but no file or tokenizer can hold).
    """
    if not isinstance(obj, dict):
        raise ValueError("expected a JSON object")
    if "id" not in obj:
        raise ValueError('missing "id"')
    if isinstance(obj["id"], bool) or not isinstance(obj["id"], str | int) or str(obj["id"]) == "":
        raise ValueError(f'"id" must be a non-empty string or an integer, got {obj["id"]!r:.40}')
    for key in obj:
        if key not in KEYS:
            close = difflib.get_close_matches(str(key), KEYS, n=1)
            hint = f"did you mean {close[0]}? " if close else ""
            raise ValueError(f"unknown key {key!r} ({hint}a request has {', '.join(KEYS)})")
    if "segments" in obj and "prompt" in obj:
        raise ValueError('both "prompt" and "segments" given: give one (the segments are the prompt, split)')
    _check_unicode(obj)
    if "segments" in obj:
        segments = obj["segments"]
        if not isinstance(segments, list) or not all(isinstance(s, str) for s in segments):
            raise ValueError('"segments" must be a list of strings')
    elif isinstance(obj.get("prompt"), str):
        segments = [obj["prompt"]]
    else:
        raise ValueError('give "segments" (list of strings) or "prompt" (string)')
    options = obj.get("options")
    if not isinstance(options, list) or not all(isinstance(o, str) and o for o in options):
        raise ValueError('"options" must be a non-empty list of option letters, e.g. ["A", "B"]')
    return ScoreRequest(str(obj["id"]), tuple(segments), tuple(options))


def _check_unicode(obj: dict[str, Any]) -> None:
    """Refuse a string holding a lone surrogate (it cannot be written as UTF-8), naming its field."""
    for key, value in obj.items():
        for text in value if isinstance(value, list) else [value]:
            if isinstance(text, str):
                try:
                    text.encode("utf-8")
                except UnicodeEncodeError as exc:
                    raise ValueError(f'"{key}" holds a lone surrogate ({text[exc.start]!r} at character '
                                     f"{exc.start + 1}), which is not text: fix the line's \\u escapes") from None


def _id_of(obj: object) -> str | None:
    """A bad line's id, to name it by, where it has a usable one."""
    if isinstance(obj, dict) and isinstance(obj.get("id"), str | int) and not isinstance(obj.get("id"), bool):
        return str(obj["id"])  # printed with repr(): a lone surrogate shows as its escape
    return None


def read_requests(path: str | Path) -> tuple[list[ScoreRequest], list[BadLine]]:
    """All valid requests and every bad line (with its 1-based line number)."""
    requests: list[ScoreRequest] = []
    bad: list[BadLine] = []
    seen: set[str] = set()
    with open(path, "rb") as fh:
        for number, raw in enumerate(fh, start=1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                bad.append(BadLine(number, f"not UTF-8 text (byte 0x{raw[exc.start]:02x} at column {exc.start + 1})"))
                continue
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                truncated = not line.endswith("\n")
                why = "truncated JSON (file cut off?)" if truncated else f"invalid JSON: {exc.msg}"
                bad.append(BadLine(number, why))
                continue
            try:
                request = parse_request(obj)
            except ValueError as exc:
                bad.append(BadLine(number, str(exc), _id_of(obj)))
                continue
            if request.id in seen:
                bad.append(BadLine(number, "duplicate id", request.id))
                continue
            seen.add(request.id)
            requests.append(request)
    return requests, bad


def requests_hash(requests: Sequence[ScoreRequest]) -> str:
    """Hash of every request (id, segments, options) in order: what an ``ava score`` output is bound to."""
    digest = hashlib.sha256()
    for r in requests:
        digest.update(json.dumps([r.id, list(r.segments), list(r.options)], ensure_ascii=False).encode() + b"\n")
    return digest.hexdigest()[:16]


def scored_row(item: ScoredItem) -> dict[str, Any]:
    """One line of an ``ava score`` output (a top-k reading adds its covered mass and the number
    of letters the OpinionQA rule filled)."""
    row = {"id": item.id, "probs": list(item.probs), "letter_mass": item.letter_mass, "logprobs": list(item.logprobs)}
    if hasattr(item, "covered_mass"):
        row.update(covered_mass=item.covered_mass, letters_missing=item.letters_missing)
    return row


def partial_path(output: Path) -> Path:
    return output.with_name(output.name + ".partial")
