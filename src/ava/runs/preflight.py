"""Check that an output can be written before anything slow (loading a model) happens.

Why a probe file rather than ``os.access``: ``os.access`` says yes to root on a read-only
folder and cannot see a read-only file system; creating (and removing) a file asks the one
question that matters.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ava.runs.errors import NotWritable


@dataclass(frozen=True)
class Output:
    """Where a command writes: a folder (``run.json`` inside) or a file (``<file>.run.json`` beside)."""

    path: Path
    folder: bool

    @property
    def record(self) -> Path:
        return self.path / "run.json" if self.folder else self.path.with_name(self.path.name + ".run.json")

    @property
    def lock(self) -> Path:
        return self.path / ".lock" if self.folder else self.path.with_name(self.path.name + ".lock")


def check_writable(output: Output, flag: str = "--out") -> None:
    """Raise :class:`NotWritable` unless ``output`` can be created or written."""
    path = output.path
    if path.exists():
        if output.folder and not path.is_dir():
            raise NotWritable(f"{path} is a file; {flag} needs a folder here")
        if not output.folder and path.is_dir():
            raise NotWritable(f"{path} is a folder; {flag} needs a file path here")
        where = path if output.folder else path.parent
    else:
        where = path.parent
        while not where.exists() and where != where.parent:
            where = where.parent
        if not where.is_dir():
            raise NotWritable(f"{path}: {where} is a file, so nothing can be created under it; choose another {flag}")
    try:
        fd, probe = tempfile.mkstemp(dir=where, prefix=".ava-write-check-")
    except OSError as exc:
        raise NotWritable(f"{path}: cannot write in {where} ({exc.strerror or exc}); choose another {flag}") from None
    os.close(fd)
    os.unlink(probe)
