"""Reading score requests from JSONL and writing scored items, resumably.

Results go to ``<output>.partial`` while a run is going and are renamed to ``<output>``
only when every request is scored, so a partial result is never mistaken for a full one.
A re-run resumes from the partial file (ids already scored are skipped).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ava.contracts.scoring import ScoredItem, ScoreRequest


@dataclass(frozen=True)
class BadLine:
    line: int
    reason: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.reason}"


def parse_request(obj: object) -> ScoreRequest:
    """One JSON object to a request: ``segments`` (list of str) or ``prompt`` (str), ``options``."""
    if not isinstance(obj, dict):
        raise ValueError("expected a JSON object")
    if "id" not in obj:
        raise ValueError('missing "id"')
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


def read_requests(path: str | Path) -> tuple[list[ScoreRequest], list[BadLine]]:
    """All valid requests and every bad line (with its 1-based line number)."""
    requests: list[ScoreRequest] = []
    bad: list[BadLine] = []
    seen: set[str] = set()
    with open(path, encoding="utf-8") as fh:
        for number, line in enumerate(fh, start=1):
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
                bad.append(BadLine(number, str(exc)))
                continue
            if request.id in seen:
                bad.append(BadLine(number, f"duplicate id {request.id!r}"))
                continue
            seen.add(request.id)
            requests.append(request)
    return requests, bad


def scored_to_json(item: ScoredItem) -> str:
    return json.dumps(
        {"id": item.id, "probs": list(item.probs), "letter_mass": item.letter_mass, "logprobs": list(item.logprobs)}
    )


def read_done_ids(path: Path) -> Iterator[str]:
    """Ids in a results file; a torn last line (from a kill mid-write) is cut off."""
    if not path.exists():
        return
    with open(path, "rb+") as fh:
        data = fh.read()
        keep = data.rfind(b"\n") + 1
        if keep < len(data):
            fh.truncate(keep)
    for line in data[:keep].decode("utf-8").splitlines():
        if line.strip():
            yield str(json.loads(line)["id"])


def partial_path(output: Path) -> Path:
    return output.with_name(output.name + ".partial")


def finish(output: Path) -> None:
    os.replace(partial_path(output), output)
