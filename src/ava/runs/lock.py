"""One writer per output: a lock file that names its holder (pid and host).

Why ``flock`` on a file rather than "create the file if absent": the kernel drops an
``flock`` when its holder dies, so a lock left by a killed run is never mistaken for a live
one and is taken over without guessing from pids; the pid and host written into the file
are for the refusal message. The file is removed on release; a process that locked a file
which was removed meanwhile notices (the path names another inode) and tries again.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import sys
import time
from pathlib import Path
from types import TracebackType

from ava.runs.errors import OutputBusy


class OutputLock:
    """Hold ``path`` exclusively while writing ``what``; :class:`OutputBusy` if another process does."""

    def __init__(self, path: Path, what: Path) -> None:
        self.path = Path(path)
        self.what = what
        self.stale_holder: str | None = None
        self._fd: int | None = None
        self._keep = False

    def __enter__(self) -> OutputLock:
        while self._fd is None:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = _describe(os.read(fd, 4096))
                os.close(fd)
                raise OutputBusy(f"{self.what} is being written by another process ({holder}); wait for it to "
                                 "finish or stop it, or choose another output") from None
            if not _same_file(fd, self.path):
                os.close(fd)  # released and removed by its holder between our open and flock
                continue
            previous = os.read(fd, 4096)
            if previous.strip():
                self.stale_holder = _describe(previous)
            holder = {"pid": os.getpid(), "host": socket.gethostname(), "since": time.strftime("%Y-%m-%dT%H:%M:%S"),
                      "command": " ".join(sys.argv[:6])}
            os.ftruncate(fd, 0)
            os.pwrite(fd, json.dumps(holder).encode(), 0)
            self._fd = fd
        return self

    def note_end(self, status: str, reason: str) -> None:
        """Say in the lock file how the run ended, when its record could not say it (the record's
        write failed, e.g. the disk is full), and keep the file on release: readers then report
        ``status`` with ``reason`` instead of ``running`` (:mod:`ava.runs.liveness`). Best effort:
        rewriting a few hundred bytes in the file's existing block needs no new space."""
        if self._fd is None:
            return
        try:
            holder = json.loads(os.pread(self._fd, 4096, 0))
            note = json.dumps({**holder, "ended": status, "reason": reason[:2000]}).encode()
            os.ftruncate(self._fd, 0)
            os.pwrite(self._fd, note, 0)
            self._keep = True
        except (OSError, ValueError, TypeError):
            pass  # the reader still sees a running record whose writer is gone

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            if not self._keep:
                self.path.unlink(missing_ok=True)
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)


def _same_file(fd: int, path: Path) -> bool:
    try:
        return os.fstat(fd).st_ino == os.stat(path).st_ino
    except FileNotFoundError:
        return False


def _describe(content: bytes) -> str:
    try:
        holder = json.loads(content)
        return f"pid {holder['pid']} on {holder['host']} since {holder['since']}"
    except (ValueError, KeyError, TypeError):
        return "holder unknown"
