"""Atomic file writes: a reader never sees a half-written output."""

from __future__ import annotations

import hashlib
import json
import os
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
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


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
