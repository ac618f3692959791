"""Is the process that wrote a ``running`` record still there?

A run killed by SIGKILL (or the OOM killer, or a power cut) has no chance to write
``interrupted``; one whose disk filled up cannot write ``failed`` (the record's own write fails).
Either leaves a record that says ``running`` for ever. The lock tells them apart from a live run:
a writer holds ``.lock`` (``<file>.lock``) from before it writes ``running`` until after it writes
the last status, and the lock names its pid and host. So a record that says ``running`` while

* there is no lock file (the writer released it: it ended without finishing its record), or
* the lock names a pid on this host that no longer runs (killed while holding it)

was left by a process that is gone; and one whose writer noted in the lock that it could not
write its last status (:meth:`ava.runs.OutputLock.note_end`) ended as the note says. A lock
naming another host cannot be checked from here (the
run may be live there), and neither can a lock being rewritten at this moment by a new writer
(empty): such a run is taken as running.

Why the pid and not a probe of the ``flock`` itself: taking even a shared lock to look would make
a writer starting at that moment refuse the output as busy; reading the file disturbs nothing.
A pid reused by an unrelated process reads as alive: the safe side (never call a live run dead).
"""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

from ava.contracts.runs import RunStatus


def lock_file(path: str | Path) -> Path:
    """The lock of an output: ``.lock`` in a folder, ``<file>.lock`` beside a file (given the
    output, or its record file)."""
    path = Path(path)
    if path.is_dir():
        return path / ".lock"
    if path.name == "run.json":
        return path.parent / ".lock"
    name = path.name.removesuffix(".run.json")
    return path.with_name(name + ".lock")


def writer_gone(path: str | Path) -> tuple[RunStatus, str] | None:
    """How the run at ``path`` (whose record says ``running``) ended, when its writer is known to be
    gone: the status to read it as and why; None when the writer is (or may be) alive.

    A writer that could not write its last status (a full disk) notes it in the lock
    (:meth:`ava.runs.OutputLock.note_end`): that status and reason are given back.
    """
    lock = lock_file(path)
    try:
        content = lock.read_bytes()
    except FileNotFoundError:
        return RunStatus.INTERRUPTED, ("the process that wrote it is gone: it ended without finishing its record "
                                       "and left no lock")
    except OSError:
        return None  # unreadable here: cannot tell
    try:
        holder = json.loads(content)
        pid, host = int(holder["pid"]), str(holder["host"])
    except (ValueError, KeyError, TypeError):
        return None  # being rewritten by a new writer right now, or not ours: cannot tell
    if holder.get("ended") in (RunStatus.FAILED, RunStatus.INTERRUPTED):
        return RunStatus(holder["ended"]), str(holder.get("reason") or "its run record could not be written")
    if host != socket.gethostname() or _alive(pid):
        return None
    return RunStatus.INTERRUPTED, (f"the process that wrote it is gone: pid {pid} on {host} no longer runs, "
                                   "killed or crashed")


def holder(path: str | Path) -> str | None:
    """Who holds the output's lock ("pid 12 on host since 2026-...") when the lock says; else None."""
    try:
        found = json.loads(lock_file(path).read_bytes())
        return f"pid {found['pid']} on {found['host']} since {found['since']}"
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by another user
    return True
