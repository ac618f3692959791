"""Read raw ad records from every shape the Ad Library comes in, with their file and line.

Shapes: ``ads_archive`` response pages (``{"data": [...], "paging": ...}``), JSONL (one ad per
line, current or legacy 2019 schema), a single JSON object, a JSON list, and the analysis CSV.
Reading is sharded datatrove-style: worker ``rank`` of ``world_size`` takes every record whose
index in its file is ``rank`` modulo ``world_size``, so no pre-split copy of the input is needed.
JSONL lines of other ranks are skipped without being parsed.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ava.contracts.ads import SourceRef

SUFFIXES = (".jsonl", ".json", ".csv")


@dataclass(frozen=True, slots=True)
class InputFile:
    """An input file and the name it is reported under (relative to the folder it was found in)."""

    path: Path
    name: str


@dataclass(frozen=True, slots=True)
class RawItem:
    """One raw record, or why it could not even be parsed (``data`` is None then)."""

    source: SourceRef
    data: Any
    error: str | None = None


def discover(paths: list[str | Path]) -> list[InputFile]:
    """Expand files and folders into the sorted list of ad files (``.jsonl``/``.json``/``.csv``)."""
    found: list[InputFile] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            for sub in sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in SUFFIXES):
                found.append(InputFile(sub, sub.relative_to(path).as_posix()))
        elif path.is_file():
            found.append(InputFile(path, path.name))
        else:
            raise FileNotFoundError(f"ads input not found: {path} (give ad files or folders holding them)")
    names = [f.name for f in found]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ValueError(f"two inputs share the name(s) {dupes}; pass their common parent folder instead")
    if not found:
        raise FileNotFoundError(f"no .jsonl/.json/.csv ad files under {[str(p) for p in paths]}")
    return found


def iter_raw(inp: InputFile, rank: int = 0, world_size: int = 1) -> Iterator[RawItem]:
    """This rank's raw records of one file, in file order."""
    suffix = inp.path.suffix.lower()
    if suffix == ".jsonl":
        yield from _iter_jsonl(inp, rank, world_size)
    elif suffix == ".csv":
        yield from _iter_csv(inp, rank, world_size)
    else:
        yield from _iter_json(inp, rank, world_size)


def _iter_jsonl(inp: InputFile, rank: int, world_size: int) -> Iterator[RawItem]:
    index = -1
    with inp.path.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            index += 1
            if index % world_size != rank:
                continue
            source = SourceRef(inp.name, lineno, "jsonl")
            try:
                yield RawItem(source, json.loads(line))
            except json.JSONDecodeError as exc:
                yield RawItem(source, None, f"invalid JSON ({exc.msg} at column {exc.colno})")


def _iter_json(inp: InputFile, rank: int, world_size: int) -> Iterator[RawItem]:
    try:
        doc = json.loads(inp.path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        if rank == 0:
            yield RawItem(SourceRef(inp.name, exc.lineno, "json"), None, f"invalid JSON ({exc.msg})")
        return
    if isinstance(doc, dict) and isinstance(doc.get("data"), list):
        items, fmt = doc["data"], "api_page"
    elif isinstance(doc, list):
        items, fmt = doc, "json_list"
    else:
        items, fmt = [doc], "json_object"
    # JSON documents have no per-record lines; ``line`` is the 1-based record number in the file.
    for index, item in enumerate(items):
        if index % world_size == rank:
            yield RawItem(SourceRef(inp.name, index + 1, fmt), item)


def _iter_csv(inp: InputFile, rank: int, world_size: int) -> Iterator[RawItem]:
    with inp.path.open(encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh)
        _ = reader.fieldnames  # reads the header line
        start = reader.line_num + 1
        for index, row in enumerate(reader):
            if index % world_size == rank:
                yield RawItem(SourceRef(inp.name, start, "csv"), row)
            start = reader.line_num + 1
