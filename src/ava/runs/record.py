"""Reading and writing run records: the one place that says whether an output is finished."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from ava.contracts.runs import RecordError, RunRecord, RunStatus
from ava.io import UnreadableJson, read_json, write_json
from ava.runs.liveness import holder, writer_gone


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def record_file(path: str | Path) -> Path:
    """The record of an output: ``run.json`` in a folder, ``<file>.run.json`` beside a file."""
    path = Path(path)
    if path.is_dir():
        return path / "run.json"
    if path.name.endswith(".run.json") or path.name == "run.json":
        return path
    return path.with_name(path.name + ".run.json")


def read_run(path: str | Path) -> RunRecord | None:
    """The record of an output folder or file (or the record file itself); None when there is none.

    An unreadable record raises :class:`RecordError` with the file (and line) in the message.
    """
    record = record_file(path)
    if not record.is_file():
        return None
    try:
        obj = read_json(record)
    except UnreadableJson as exc:
        raise RecordError(f"{exc}, not a readable run record") from None
    try:
        return RunRecord.from_dict(obj)
    except RecordError as exc:
        raise RecordError(f"{record}: {exc}") from None


def read_run_state(path: str | Path) -> RunRecord | None:
    """The record as a reader should take it: one that says ``running`` but whose writer is gone
    (killed by SIGKILL, or its disk filled before it could finish the record; see
    :mod:`ava.runs.liveness`) reads as ``interrupted`` with that reason; a live one says who
    writes it. :func:`read_run` gives the file as written (what a rerun resumes from)."""
    record = read_run(path)
    if record is None or record.status is not RunStatus.RUNNING:
        return record
    gone = writer_gone(path)
    if gone is not None:
        again = read_run(path)  # finished between the two reads: its lock is gone because it is done
        if again is None or again.status is not RunStatus.RUNNING:
            return again
        status, reason = gone
        return replace(record, status=status, reason=reason)
    who = holder(path)
    return replace(record, reason=f"being written by {who}") if who else record


def is_complete(path: str | Path, kind: str | None = None) -> bool:
    """True when the output's record says ``complete`` (and is of ``kind``, when given); an
    unreadable record is not complete."""
    return incomplete_reason(path, kind) is None


def incomplete_reason(path: str | Path, kind: str | None = None) -> str | None:
    """Why the output at ``path`` is not a finished ``kind`` output, as a phrase for a reader's error
    message ("no run record (run.json)", "its run record says interrupted: ..."); None when it is.
    A ``running`` record whose writer is gone says interrupted (:func:`read_run_state`)."""
    try:
        record = read_run_state(path)
    except RecordError as exc:
        return str(exc)
    if record is None:
        return f"no run record ({record_file(path).name})"
    if kind is not None and record.kind != kind:
        return f"its run record is of a {record.kind} output, not {kind}"
    if not record.complete:
        return f"its run record says {record.status}" + (f": {record.reason}" if record.reason else "")
    return None


def write_record(path: Path, record: RunRecord) -> None:
    write_json(path, record.to_dict())
