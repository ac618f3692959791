"""A run's life: preflight, lock, binding check, ``running`` ... ``complete``.

Every command that writes an output goes through :func:`start_run`, so every output is
refused, resumed, restarted and finished the same way.
"""

from __future__ import annotations

import shutil
import signal
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

from ava.contracts.runs import Binding, RecordError, RunRecord, RunStatus
from ava.runs.errors import BindingMismatch, RunRefused
from ava.runs.lock import OutputLock
from ava.runs.preflight import Output, check_writable
from ava.runs.record import now, read_run, write_record

INTERRUPTED = "interrupted (Ctrl-C or SIGTERM); rerun the same command to resume"


class Run:
    """An output being written; ``previous`` is the record found there (None when new or restarted)."""

    def __init__(self, output: Output, record: RunRecord, previous: RunRecord | None) -> None:
        self.output = output
        self.record = record
        self.previous = previous
        self.failure: str | None = None

    def fail(self, reason: str) -> None:
        """End as ``failed`` with ``reason`` when the run closes, without an exception: for work that
        ran to its end but whose result must not be used (e.g. a survey build with a wave it could not map)."""
        self.failure = reason

    def update_info(self, info: Mapping[str, Any]) -> None:
        """Add to what the record notes (not bound); written with the next status."""
        self.record = replace(self.record, info={**self.record.info, **info})

    def set_status(self, status: RunStatus, reason: str | None = None) -> None:
        self.record = replace(self.record, status=status, reason=reason, updated_at=now())
        write_record(self.output.record, self.record)


@contextmanager
def start_run(
    output: Output,
    kind: str,
    binding: Binding,
    *,
    info: Mapping[str, Any] | None = None,
    restart: bool = False,
    owned: Sequence[str] = (),
    flag: str = "--out",
) -> Iterator[Run]:
    """Check, lock and open ``output`` for ``kind`` with ``binding``; close it as complete,
    interrupted (KeyboardInterrupt) or failed (any other exception, re-raised, or :meth:`Run.fail`).

    ``owned``: the names (relative to a folder output, or beside a file output) this kind of
    run writes; finding them without a record is refused, and ``restart`` removes them.
    """
    check_writable(output, flag)
    if output.folder:
        output.path.mkdir(parents=True, exist_ok=True)
    lock = OutputLock(output.lock, output.path)
    with lock:
        if lock.stale_holder:
            print(f"note: {output.path}: took over a stale lock ({lock.stale_holder}, no longer running)",
                  file=sys.stderr)
        previous = _previous(output, kind, binding, restart, owned, flag)
        stamp = now()
        run = Run(output, RunRecord(kind, RunStatus.RUNNING, binding, stamp, stamp, None, dict(info or {})), previous)
        write_record(output.record, run.record)
        try:
            yield run
        except KeyboardInterrupt:
            _finish(run, lock, RunStatus.INTERRUPTED, INTERRUPTED)
            raise
        except BaseException as exc:
            _finish(run, lock, RunStatus.FAILED, f"{type(exc).__name__}: {exc}")
            raise
        if run.failure is not None:
            _finish(run, lock, RunStatus.FAILED, run.failure)
        else:
            _finish(run, lock, RunStatus.COMPLETE, None)


def _finish(run: Run, lock: OutputLock, status: RunStatus, reason: str | None) -> None:
    """Write the last status; when the record itself cannot be written (a full disk, a folder made
    read-only), say so in the lock file: the record stays ``running``, and readers take it as
    ``failed`` (or ``interrupted``) with why (``ava.runs.read_run_state``), never as live. A
    finished run then raises that OSError; a failed or interrupted one lets its own error go on
    (the first cause is what the user must see; the record's failure is in the note)."""
    try:
        run.set_status(status, reason)
    except OSError as exc:
        unwritten = f"its run record could not be written ({exc.strerror or exc}: {exc.filename or run.output.record})"
        if status is RunStatus.COMPLETE:
            lock.note_end(str(RunStatus.FAILED), f"the work finished but {unwritten}")
            raise
        lock.note_end(str(status), f"{reason}; then {unwritten}")


def _previous(output: Output, kind: str, binding: Binding, restart: bool, owned: Sequence[str],
              flag: str) -> RunRecord | None:
    """The record to resume from, after refusing what must not be mixed (or clearing it on restart)."""
    where = output.path
    paths = owned_paths(output, owned)
    if restart:
        for path in [*paths, output.record]:
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink(missing_ok=True)
        return None
    again = f"pass --restart to start over, or choose another {flag}"
    try:
        previous = read_run(where)
    except RecordError as exc:
        raise RunRefused(f"{exc}; {again}") from None
    if previous is None:
        found = [p for p in paths if p.exists()]
        if found:
            raise RunRefused(f"{where} holds {found[0].name} but no run record, so what produced it is unknown; "
                             f"{again}")
        return None
    if previous.kind != kind:
        raise RunRefused(f"{where} holds a {previous.kind} output, not {kind}; {again}")
    differences = previous.binding.differences(binding)
    if differences:
        raise BindingMismatch(f"{where} was produced with other settings ({'; '.join(differences)}); rerun with "
                              f"the same ones to resume, or {again}")
    return previous


def interrupt_on_sigterm() -> None:
    """Make ``kill`` (SIGTERM) end a run like Ctrl-C: recorded as interrupted, resumable."""

    def _raise(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _raise)


def owned_paths(output: Output, names: Sequence[str]) -> list[Path]:
    """``names`` inside a folder output, or as suffixes of a file output's name beside it."""
    base = output.path if output.folder else output.path.parent
    return [base / (n if output.folder else output.path.name + n) for n in names]
