"""Atomic file writes: a reader never sees a half-written output."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any


@contextmanager
def atomic_write(path: str | Path, mode: str = "w", encoding: str | None = "utf-8") -> Iterator[IO[Any]]:
    """Write to a temporary file beside ``path`` and rename it into place on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, mode, encoding=None if "b" in mode else encoding) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600 files; give the usual permissions
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        if exc.filename is None:  # a failed write()/fsync() names no file: name the output (os_error_line)
            raise OSError(exc.errno, exc.strerror or str(exc), str(path)) from exc
        raise
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# What to do about an OS error, by errno: the second half of the one ``error:`` line.
_OS_ERROR_ADVICE = {
    errno.ENOSPC: "free space on that device (or choose another output), then rerun the same command to resume",
    errno.EDQUOT: "free space within your quota (or choose another output), then rerun the same command to resume",
    errno.EACCES: "make it readable/writable for you (chmod, or ask its owner), or choose another path",
    errno.EPERM: "make it readable/writable for you (chmod, or ask its owner), or choose another path",
    errno.EROFS: "the file system is read-only: choose another output",
    errno.ELOOP: "a symbolic link on this path points (directly or not) back to itself: fix or remove it",
    errno.ENOENT: "check the path (a folder on it may have been moved or removed)",
    errno.ENOTDIR: "a part of this path is a file, not a folder: check the path",
    errno.EISDIR: "it is a folder where a file is needed: check the path",
    errno.ENAMETOOLONG: "choose a shorter path",
    errno.EIO: "the device reported an input/output error (a failing disk or network mount): check it, then rerun",
    errno.EMFILE: "too many open files: raise the limit (ulimit -n) and rerun",
}


def os_error_line(exc: OSError, where: str | Path | None = None) -> str:
    """An OS error (a full disk, a permission, a symlink loop ...) as the one line a command prints
    after ``error:``: ``FILE: reason; what to do``.

    The file is the one the error names (the target of a rename, not its temporary file; the
    output for a failed write inside :func:`atomic_write`), else ``where`` (the command's output).
    An ``OSError`` raised by ava with its own message (no errno) is that message. Every command's
    CLI catches ``OSError`` last and prints this, so no OS error surfaces as a traceback or as bare
    ``[Errno 28]`` text naming no file.
    """
    if exc.errno is None:
        return str(exc)
    target = exc.filename2 if exc.filename2 is not None else exc.filename
    if target is not None and re.fullmatch(r"\..+\.[a-z0-9_]{8}\.tmp", Path(str(target)).name):
        tmp = Path(str(target))  # an atomic write's temporary file ".NAME.XXXXXXXX.tmp": name NAME
        target = tmp.with_name(tmp.name[1:].rsplit(".", 2)[0])
    target = target if target is not None else where
    reason = (exc.strerror or str(exc)).rstrip(".")
    reason = reason[:1].lower() + reason[1:]
    advice = _OS_ERROR_ADVICE.get(exc.errno, "check the path and the device, then rerun")
    return f"{target}: {reason}; {advice}" if target is not None else f"{reason}; {advice}"


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_json(path: str | Path, obj: Any) -> None:
    """Atomically write ``obj`` as indented, key-sorted JSON (stable bytes for stable input)."""
    with atomic_write(path) as fh:
        json.dump(obj, fh, indent=2, sort_keys=True, ensure_ascii=False)
        fh.write("\n")


class UnreadableJson(ValueError):
    """A file that is not UTF-8 JSON; the message names the file (and line) and why."""


def read_json(path: str | Path) -> Any:
    """A JSON file's value; :class:`UnreadableJson` ("FILE:LINE: not JSON (...)") instead of a traceback."""
    try:
        return json.loads(Path(path).read_bytes().decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise UnreadableJson(f"{path}: not UTF-8 text (byte {exc.start})") from None
    except json.JSONDecodeError as exc:
        raise UnreadableJson(f"{path}:{exc.lineno}: not JSON ({exc.msg})") from None


class UnreadableYaml(ValueError):
    """A file that is not UTF-8 YAML; the message names the file (and line) and why."""


def read_yaml(path: str | Path) -> Any:
    """A YAML file's value (None for an empty file); :class:`UnreadableYaml` ("FILE:LINE: not valid YAML
    (...)") instead of a traceback. ``FileNotFoundError`` passes through for the caller to word."""
    import yaml

    try:
        return yaml.safe_load(Path(path).read_bytes().decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise UnreadableYaml(f"{path}: not UTF-8 text (byte {exc.start})") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        raise UnreadableYaml(f"{where}: not valid YAML ({getattr(exc, 'problem', None) or exc})") from None


def file_sha256(path: str | Path) -> str:
    """SHA-256 of a file, read in 1 MiB blocks (inputs can be large survey or ad dumps)."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_jsonl(path: str | Path) -> list[Any]:
    """Every line of a JSON Lines file (blank lines skipped); :class:`UnreadableJson` names the
    file and line of the first one that is not UTF-8 JSON."""
    out = []
    with open(path, "rb") as fh:
        for lineno, raw in enumerate(fh, start=1):
            if not raw.strip():
                continue
            try:
                out.append(json.loads(raw.decode("utf-8")))
            except UnicodeDecodeError as exc:
                raise UnreadableJson(f"{path}:{lineno}: not UTF-8 text (byte {exc.start})") from None
            except json.JSONDecodeError as exc:
                raise UnreadableJson(f"{path}:{lineno}: not JSON ({exc.msg})") from None
    return out
