"""Check that an output can be written before anything slow (loading a model) happens.

Why a probe file rather than ``os.access``: ``os.access`` says yes to root on a read-only
folder and cannot see a read-only file system; creating (and removing) a file asks the one
question that matters.
"""

from __future__ import annotations

import errno
import os
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from ava.runs.errors import NotWritable, OutputOverlapsInput


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
    _resolved(path, flag)  # a symlink loop on the path: Path.exists() says False and mkdir fails later
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


def check_apart(output: Path, inputs: Iterable[Path | str], flag: str = "--out", input_flag: str = "an input") -> None:
    """Raise :class:`OutputOverlapsInput` when ``output`` is an input, lies inside an input folder,
    or holds an input; siblings are fine.

    Why before anything is written: a file scored onto itself is lost, a build whose output sits in
    its input folder reads its own output on the next run, and ``--restart`` would delete an input
    kept inside the output. Paths are compared resolved (symlinks followed, ``..`` removed), so a link
    to the input folder is the input folder. Any command can call it (``ava score -i X -o X``
    included): ``input_flag`` names where the input came from (``--ads``, ``data.ads``).
    """
    out = _resolved(Path(output), flag)
    for given in inputs:
        inp = _resolved(Path(given), input_flag)
        if out == inp:
            relation = "is the same path as"
        elif out.is_relative_to(inp):
            relation = "is inside"
        elif inp.is_relative_to(out):
            relation = "holds"
        else:
            continue
        raise OutputOverlapsInput(
            f"{output}: {flag} {relation} {input_flag} {given}; writing there would overwrite or read back an "
            f"input: choose a {flag} outside every input (a sibling folder is fine)")


def check_apart_each(output: Path, inputs: Iterable[tuple[str, Path | str | None]], flag: str = "--out") -> None:
    """:func:`check_apart` for inputs given by several flags (``("--data", path)``, ...); ``None``
    and a model given by name (no such path here) are skipped."""
    for input_flag, given in inputs:
        if given is not None and str(given) and Path(str(given)).expanduser().exists():
            check_apart(output, [given], flag, input_flag)


def _resolved(path: Path, flag: str) -> Path:
    try:
        return path.expanduser().resolve()
    except (OSError, RuntimeError) as exc:  # a symlink loop: RuntimeError before Python 3.13, OSError after
        if isinstance(exc, RuntimeError) or exc.errno == errno.ELOOP:
            raise NotWritable(f"{path}: a symbolic link on this path points (directly or not) back to itself; fix or "
                              f"remove it, or choose another {flag}") from None
        raise NotWritable(f"{path}: cannot resolve this path ({exc.strerror or exc}); fix the link or choose another "
                          f"{flag}") from None
