"""Runs: how every command writes an output (one record, one lock, one way to resume).

* :mod:`ava.contracts.runs` -- the record (``run.json``): kind, status, binding, reason.
* :func:`start_run` -- preflight, lock, refuse a mismatched binding, ``running`` ... ``complete``.
* :func:`read_run` / :func:`is_complete` -- the one reader of "is it finished"; :func:`read_run_state`
  reads a ``running`` record whose writer is gone (SIGKILL, a full disk) as ``interrupted``.
* :class:`JsonlLog` / :func:`run_in_chunks` -- chunk -> append -> flush -> resume.
"""

from ava.contracts.runs import Binding, RecordError, RunRecord, RunStatus
from ava.runs.errors import BindingMismatch, NotWritable, OutputBusy, OutputOverlapsInput, RunRefused
from ava.runs.lifecycle import Run, interrupt_on_sigterm, owned_paths, start_run
from ava.runs.liveness import lock_file, writer_gone
from ava.runs.lock import OutputLock
from ava.runs.log import ChunkPolicy, JsonlLog, run_in_chunks, unfinished_chunks
from ava.runs.preflight import Output, check_apart, check_apart_each, check_writable
from ava.runs.record import incomplete_reason, is_complete, now, read_run, read_run_state, record_file

__all__ = [
    "Binding", "BindingMismatch", "ChunkPolicy", "JsonlLog", "NotWritable", "Output", "OutputBusy", "OutputLock",
    "OutputOverlapsInput", "RecordError", "Run", "RunRecord", "RunRefused", "RunStatus", "check_apart",
    "check_apart_each", "check_writable", "incomplete_reason", "interrupt_on_sigterm", "is_complete", "lock_file",
    "now", "owned_paths", "read_run", "read_run_state", "record_file", "run_in_chunks", "start_run",
    "unfinished_chunks", "writer_gone",
]
