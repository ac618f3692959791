"""Read raw ad records from every shape the Ad Library comes in, with their file and line.

Shapes: ``ads_archive`` response pages (``{"data": [...], "paging": ...}``, one per file or a list
of them), JSONL (one ad per line, current or legacy 2019 schema), a single JSON object, a JSON
list, and the analysis CSV; each may be gzipped (``.jsonl.gz``, ``.json.gz``, ``.csv.gz``).
Reading is sharded datatrove-style, with no pre-split copy of the input. A plain JSONL file cut by
:func:`cut_jsonl` (what a build does) is read in contiguous byte ranges, one per rank, each starting
at a line: a rank reads and decodes only its own bytes. Any other file (gzip, JSON, CSV) is read whole by every
rank, which keeps the records whose index in the file is ``rank`` modulo ``world_size``; other
ranks' JSONL lines are skipped without being parsed.

Nothing is dropped without a word. What cannot be read comes out as a :class:`RawItem` with an
``error`` and a ``reason`` (counted and reported by the build like any skipped record): a bad line
or row names its line; a problem with the whole file (not an ad file, empty, UTF-16, corrupt gzip,
an API error page) is one item with ``record=False`` and line 0, or the line where reading stopped,
from rank 0 only. Text is decoded as UTF-8 (a BOM is allowed) with undecodable bytes kept as
``surrogateescape`` characters, so one bad byte costs one record, never the file or the build.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import re
import sys
import zlib
from collections.abc import Generator, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import IO, Any

from ava.ads.fields import kind
from ava.contracts.ads import SourceRef

FORMATS = {".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "json", ".csv": "csv"}
"""Ad file suffixes and how each is read; any of them may end in ``.gz``."""

CSV_REQUIRED = ("ad_id", "page_id", "page_name")
"""Columns the analysis CSV must have: without them no row can become an ad."""

# Python's csv module refuses fields over 128 KiB with an error that stops the file; a long body
# must instead reach the normaliser's body cap and be skipped as one counted record.
csv.field_size_limit(min(sys.maxsize, 2**31 - 1))

_BAD_BYTE = re.compile(r"[\udc80-\udcff]")  # what "surrogateescape" makes of a byte that is not UTF-8
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")

Records = Generator["RawItem", None, int]
"""A reader: yields this rank's items, returns how many records the whole file holds."""


class AdInputError(ValueError):
    """An ads input the user named that cannot be used at all (one line, names the path)."""


@dataclass(frozen=True, slots=True)
class InputFile:
    """An input file and the name it is reported under (relative to the folder it was found in)."""

    path: Path
    name: str
    ranges: tuple[tuple[int, int], ...] | None = None
    """Where each rank's part of a plain JSONL file starts: (byte offset, lines before it), from
    :func:`cut_jsonl`. Without it every rank reads the whole file, so the cost of reading grows with
    shards x size (at 1.5 M ads, ~190 shards each decoding 3 GB)."""

    @property
    def gzipped(self) -> bool:
        return self.path.name.lower().endswith(".gz")

    @property
    def format(self) -> str | None:
        """``jsonl``, ``json`` or ``csv``; None for a file that is not an ad file."""
        name = self.path.name.lower().removesuffix(".gz")
        return FORMATS.get(Path(name).suffix)

    @property
    def problem(self) -> str:
        """Why a file with no ``format`` is not read."""
        suffix = "".join(self.path.suffixes[-2:]).lower() or "no suffix"
        return f"not an ad file ({suffix}): only .jsonl/.ndjson/.json/.csv, each optionally .gz, are read"


@dataclass(frozen=True, slots=True)
class RawItem:
    """One raw record, or why it could not be read (``data`` is None then).

    ``record`` is False for a note about the whole file (not an ad file, no records, unreadable):
    it is reported like a skipped record but is not counted as a record read.
    """

    source: SourceRef
    data: Any
    error: str | None = None
    reason: str | None = None
    record: bool = True


def discover(paths: list[str | Path]) -> list[InputFile]:
    """Expand files and folders into the sorted list of their files.

    Every file under a folder is listed, ad file or not, so the build reports the others as
    skipped instead of ignoring them; a file named on its own must be an ad file.
    """
    found: list[InputFile] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            for sub in sorted(p for p in path.rglob("*") if p.is_file()):
                found.append(InputFile(sub, sub.relative_to(path).as_posix()))
        elif path.is_file():
            inp = InputFile(path, path.name)
            if inp.format is None:
                raise AdInputError(f"ads input {path}: {inp.problem}")
            found.append(inp)
        else:
            raise FileNotFoundError(f"ads input not found: {path} (give ad files or folders holding them)")
    names = [f.name for f in found]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ValueError(f"two inputs share the name(s) {dupes}; pass their common parent folder instead")
    if not any(f.format for f in found):
        others = f" (found only: {', '.join(names[:5])}{', ...' if len(names) > 5 else ''})" if names else ""
        raise FileNotFoundError(
            f"no .jsonl/.json/.csv (or .gz) ad files under {[str(p) for p in paths]}{others}")
    return found


class _FileProblem(Exception):
    """Nothing of the file can be read: ``reason`` and the line the problem is on (0: the whole file)."""

    def __init__(self, reason: str, message: str, line: int = 0) -> None:
        super().__init__(message)
        self.reason, self.line = reason, line


@dataclass
class _Progress:
    """How far a reader got (for a note when reading fails) and why a file held no records."""

    line: int = 0
    empty: str = "the file is empty"


def _note(inp: InputFile, line: int, reason: str, message: str) -> RawItem:
    return RawItem(SourceRef(inp.name, line, inp.format or "file"), None, message, reason, record=False)


def iter_raw(inp: InputFile, rank: int = 0, world_size: int = 1) -> Iterator[RawItem]:
    """This rank's raw records of one file, in file order, then any note about the whole file."""
    if inp.format is None:
        if rank == 0:
            yield _note(inp, 0, "unsupported_file", inp.problem)
        return
    progress = _Progress()
    if inp.ranges is not None and len(inp.ranges) == world_size:
        yield from _jsonl_range(inp, rank, progress)
        return
    reader = {"jsonl": _iter_jsonl, "json": _iter_json, "csv": _iter_csv}[inp.format]
    try:
        with _open_text(inp) as fh:
            records = yield from reader(inp, fh, rank, world_size, progress)
    except _FileProblem as exc:
        if rank == 0:
            yield _note(inp, exc.line, exc.reason, str(exc))
        return
    except (OSError, EOFError, zlib.error, UnicodeError, csv.Error) as exc:
        if rank == 0:
            where = f"after line {progress.line}" if progress.line else "at the start"
            what = "gzip data" if inp.gzipped else "the file"
            yield _note(inp, progress.line, "unreadable_file", f"cannot read {what} {where}: {exc}")
        return
    if records == 0 and rank == 0:
        yield _note(inp, 0, "empty_file", f"no ad records: {progress.empty}")


@contextmanager
def _open_text(inp: InputFile) -> Iterator[IO[str]]:
    """The file (gunzipped) as UTF-8 text; a UTF-8 BOM is dropped, a UTF-16 file refused by name."""
    opener: Any = gzip.open if inp.gzipped else open
    with opener(inp.path, "rb") as binary:
        if binary.peek(2)[:2] in _UTF16_BOMS:
            raise _FileProblem("not_utf8", "the file is UTF-16 encoded: save it as UTF-8")
        # JSONL lines end at "\n" only (a stray "\r" is whitespace to JSON); csv wants newline="".
        newline = "" if inp.format == "csv" else "\n"
        yield io.TextIOWrapper(binary, encoding="utf-8-sig", errors="surrogateescape", newline=newline)


def _bad_bytes(text: str) -> str | None:
    """Where ``text`` holds a byte that is not UTF-8, as a message; None when it is all UTF-8."""
    bad = _BAD_BYTE.search(text)
    return None if bad is None else f"byte 0x{ord(bad.group()) - 0xDC00:02X} at column {bad.start() + 1}"


def _loads(text: str) -> tuple[Any, str | None, int]:
    """``json.loads`` that never raises: (value, error message, line of the error)."""
    try:
        return json.loads(text), None, 0
    except json.JSONDecodeError as exc:
        return None, f"{exc.msg} at line {exc.lineno} column {exc.colno}", exc.lineno
    except RecursionError:
        return None, "nested too deeply", 0
    except ValueError as exc:  # e.g. a number beyond Python's 4300-digit limit
        return None, str(exc).split(";")[0], 0


def _iter_jsonl(inp: InputFile, lines: Iterable[str], rank: int, world_size: int, progress: _Progress,
                sniff: bool = True) -> Records:
    index = -1
    lines = iter(lines)
    for lineno, line in enumerate(lines, start=1):
        progress.line = lineno
        if not line.strip():
            continue
        index += 1
        if index == 0 and sniff and line.strip() in ("{", "["):
            # An indented JSON document saved as .jsonl: read it as the document it is.
            return (yield from _json_document(inp, line + "".join(lines), rank, world_size, progress, False))
        if index % world_size == rank:
            yield _jsonl_item(SourceRef(inp.name, lineno, "jsonl"), line)
    if index < 0 and progress.line:
        progress.empty = "only blank lines"
    return index + 1


def cut_jsonl(inp: InputFile, parts: int) -> InputFile:
    """``inp`` with the byte ranges of ``parts`` ranks when it is a plain JSONL file of ad lines.

    One pass over the file (newlines counted in C, ~2 GB/s). Files that cannot be cut stay whole:
    gzip (no seeking), JSON and CSV, a JSON document saved as ``.jsonl``, UTF-16, or no record at
    all (the whole-file path reports those, from rank 0).
    """
    if parts < 2 or inp.format != "jsonl" or inp.gzipped:
        return inp
    with inp.path.open("rb") as fh:
        if fh.peek(2)[:2] in _UTF16_BOMS:
            return inp
        lines_of = (line.decode("utf-8", errors="surrogateescape").lstrip("\ufeff").strip() for line in fh)
        first = next((line for line in lines_of if line), "")
        if first in ("", "{", "["):
            return inp
        size = inp.path.stat().st_size
        ranges, done, lines = [(0, 0)], 0, 0
        for rank in range(1, parts):
            fh.seek(max(size * rank // parts - 1, done))
            if fh.tell() > 0:
                fh.readline()  # on to the start of the next line: a range starts at a line
            start = max(fh.tell(), done)
            fh.seek(done)
            lines += _count_newlines(fh, start - done)
            ranges.append((start, lines))
            done = start
    return replace(inp, ranges=tuple(ranges))


def _count_newlines(fh: IO[bytes], size: int) -> int:
    n, chunk = 0, 1 << 24
    while size > 0:
        block = fh.read(min(chunk, size))
        if not block:
            break
        n += block.count(b"\n")
        size -= len(block)
    return n


def _jsonl_range(inp: InputFile, rank: int, progress: _Progress) -> Iterator[RawItem]:
    """This rank's lines of a cut JSONL file: same items, lines and notes as the whole-file reader."""
    assert inp.ranges is not None
    start, lineno = inp.ranges[rank]
    end = inp.ranges[rank + 1][0] if rank + 1 < len(inp.ranges) else None
    try:
        with inp.path.open("rb") as fh:
            fh.seek(start)
            pos = start
            for raw in fh:
                if end is not None and pos >= end:
                    break
                pos += len(raw)
                lineno += 1
                progress.line = lineno
                if lineno == 1:
                    raw = raw.removeprefix(b"\xef\xbb\xbf")  # a BOM is allowed at the start of the file
                line = raw.decode("utf-8", errors="surrogateescape")
                if line.strip():
                    yield _jsonl_item(SourceRef(inp.name, lineno, "jsonl"), line)
    except OSError as exc:  # in this rank's bytes: no other rank sees it, so this one reports it
        where = f"after line {progress.line}" if progress.line else "at the start"
        yield _note(inp, progress.line, "unreadable_file", f"cannot read the file {where}: {exc}")


def _jsonl_item(source: SourceRef, line: str) -> RawItem:
    bad = _bad_bytes(line)
    if bad:
        return RawItem(source, None, f"not valid UTF-8 ({bad})", "not_utf8")
    data, error, _ = _loads(line)
    if error:
        return RawItem(source, None, f"invalid JSON ({error.replace(' at line 1 column', ' at column')})",
                       "invalid_json")
    if isinstance(data, dict) and isinstance(data.get("data"), list) and "page_id" not in data:
        return RawItem(source, None, "the line is a whole ads_archive response page ({'data': [...]}), not one "
                       "ad: save each page as its own .json file", "api_page_in_jsonl")
    return RawItem(source, data)


def _iter_json(inp: InputFile, fh: IO[str], rank: int, world_size: int, progress: _Progress) -> Records:
    return (yield from _json_document(inp, fh.read(), rank, world_size, progress, True))


def _json_document(inp: InputFile, text: str, rank: int, world_size: int, progress: _Progress,
                   sniff: bool) -> Records:
    if not text.strip():
        progress.empty = "the file is empty" if not text else "only blank lines"
        return 0
    doc, error, lineno = _loads(text)
    if error and sniff and error.startswith("Extra data"):
        # JSONL saved as .json (one object per line): read it line by line.
        return (yield from _iter_jsonl(inp, io.StringIO(text, newline="\n"), rank, world_size, progress, False))
    if error:
        if rank == 0:
            yield _note(inp, lineno, "invalid_json", f"invalid JSON ({error}): no record of the file is read")
        return 1
    items, fmt = _records_of(doc)  # raises _FileProblem for a document holding no ads (iter_raw reports it)
    if not items:
        progress.empty = "'data' is an empty list" if fmt == "api_page" else "an empty JSON list"
    # JSON documents have no per-record lines; ``line`` is the 1-based record number in the file.
    for index, item in enumerate(items):
        if index % world_size == rank:
            yield RawItem(SourceRef(inp.name, index + 1, fmt), item)
    return len(items)


def _records_of(doc: Any) -> tuple[list[Any], str]:
    """The records of a parsed JSON document and its shape, or :class:`_FileProblem`."""
    if isinstance(doc, dict) and "data" in doc:
        if not isinstance(doc["data"], list):
            raise _FileProblem("bad_type", f"'data' is {kind(doc['data'])}, expected a list of ads")
        return doc["data"], "api_page"
    if isinstance(doc, dict) and "error" in doc and "page_id" not in doc:
        error = doc["error"]
        message = error.get("message") if isinstance(error, dict) else error
        raise _FileProblem("api_error", f"an Ad Library API error response, not ads: {str(message)[:200]}")
    if isinstance(doc, dict) and "paging" in doc and "page_id" not in doc:
        raise _FileProblem("api_page_without_data", "an ads_archive response page without 'data'")
    if isinstance(doc, list) and doc and all(isinstance(p, dict) and isinstance(p.get("data"), list) for p in doc):
        return [ad for page in doc for ad in page["data"]], "api_pages"
    if isinstance(doc, list):
        return doc, "json_list"
    return [doc], "json_object"


def _iter_csv(inp: InputFile, fh: IO[str], rank: int, world_size: int, progress: _Progress) -> Records:
    reader = csv.reader(fh)
    header = next(reader, None)
    if header is None:
        return 0
    progress.line = reader.line_num
    _check_header(header)
    index = -1
    start = reader.line_num + 1
    for row in reader:
        progress.line = reader.line_num
        if row:  # csv gives [] for a blank line: not a record
            index += 1
            if index % world_size == rank:
                yield _csv_item(SourceRef(inp.name, start, "csv"), header, row)
        start = reader.line_num + 1
    if index < 0:
        progress.empty = "only a header line"
    return index + 1


def _check_header(header: list[str]) -> None:
    bad = _bad_bytes(",".join(header))
    if bad:
        raise _FileProblem("not_utf8", f"the CSV header is not valid UTF-8 ({bad})", 1)
    missing = [c for c in CSV_REQUIRED if c not in header]
    if missing:
        shown = ", ".join(h[:30] for h in header[:8]) + (", ..." if len(header) > 8 else "")
        raise _FileProblem("bad_csv_header",
                           f"not the per-ad analysis CSV: no column(s) {', '.join(missing)} (its columns: {shown})", 1)
    repeated = sorted({h for h in header if header.count(h) > 1})
    if repeated:
        raise _FileProblem("bad_csv_header", f"the CSV header repeats column(s) {', '.join(repeated)}", 1)


def _csv_item(source: SourceRef, header: list[str], row: list[str]) -> RawItem:
    if len(row) != len(header):
        return RawItem(source, None, f"the row has {len(row)} fields, the header {len(header)}", "csv_row_width")
    for column, cell in zip(header, row, strict=True):
        bad = _bad_bytes(cell)
        if bad:
            return RawItem(source, None, f"not valid UTF-8 (column {column}: {bad})", "not_utf8")
    return RawItem(source, dict(zip(header, row, strict=True)))
