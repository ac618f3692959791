"""The output folder of ``ava train``: checked before any model loads, bound to its run, one writer.

* A path that is a file, lies under a file, or cannot be written is refused up front, not after
  minutes of loading and tokenising.
* ``train_config.json`` (written first) binds the folder to the settings, data and model that
  produced it: a second run with anything different is refused with what differs, a finished run
  (``training_card.json``) is never overwritten, an unfinished one continues only with ``--resume``,
  and a folder holding anything else is not used.
* A lock file (``.ava-train.lock``, an OS lock released when the process dies, so a crashed run
  never blocks the next) keeps a second ``ava train`` out of a folder that one is writing.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

from ava.io import write_json

CONFIG = "train_config.json"
CARD = "training_card.json"
FAILED = "training_failed.json"
LOCK = ".ava-train.lock"


class OutputError(ValueError):
    """An output folder that cannot be used for this run; the message says why and what to do."""


def check_writable(out: Path) -> None:
    """Refuse an output path that is a file, lies under a file, or cannot be created or written."""
    for parent in [out, *out.parents]:
        if parent.exists():
            if not parent.is_dir():
                where = "is a file" if parent == out else f"lies under {parent}, which is a file"
                raise OutputError(f"--out {out} {where}; pass a folder")
            break
    try:
        out.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=out, prefix=".ava-write-test.")
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise OutputError(f"--out {out}: cannot write there ({exc.strerror or exc}); pass a writable folder") from exc


def acquire(out: Path) -> FileLock:
    """Hold ``out``'s lock for the run, or refuse if another process holds it."""
    lock = FileLock(str(out / LOCK), timeout=0)
    try:
        lock.acquire()
    except Timeout as exc:
        raise OutputError(f"--out {out}: another ava train is writing there ({out / LOCK} is held); "
                          "wait for it or use another --out") from exc
    return lock


def bind(out: Path, binding: dict[str, Any], record: dict[str, Any], resume: bool) -> bool:
    """Refuse a folder that belongs to another or a finished run; write ``train_config.json``.

    Returns whether an earlier unfinished run with the same settings is being continued.
    """
    if (out / CARD).exists():
        raise OutputError(f"--out {out} holds a finished training run ({CARD}); choose a new --out")
    saved = out / CONFIG
    continuing = False
    if saved.exists():
        try:
            previous = json.loads(saved.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise OutputError(f"{saved}: unreadable ({exc}); it is not an ava train folder: use a new --out") from exc
        before = previous.get("binding", previous)
        if before != binding:
            changed = sorted(k for k in set(before) | set(binding) if before.get(k) != binding.get(k))
            detail = _sub_keys(before, binding, changed)
            raise OutputError(
                f"{saved}: an earlier run in this folder used other settings ({detail}); "
                "use a new --out or the same settings"
            )
        if not resume:
            raise OutputError(f"--out {out} holds an unfinished run with these settings: pass --resume to "
                              "continue it, or use a new --out")
        continuing = True
    else:
        others = sorted(p.name for p in out.iterdir() if p.name not in (LOCK, FAILED))
        if others:
            raise OutputError(f"--out {out} is not empty and holds no ava train run ({', '.join(others[:3])}); "
                              "use an empty or new folder")
    (out / FAILED).unlink(missing_ok=True)
    write_json(saved, {"binding": binding, **record})
    return continuing


def _sub_keys(before: dict[str, Any], after: dict[str, Any], changed: list[str]) -> str:
    parts = []
    for key in changed:
        a, b = before.get(key), after.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            sub = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
            parts += [f"{key}.{k}: {a.get(k)!r} -> {b.get(k)!r}" for k in sub]
        else:
            parts.append(f"{key}: {a!r} -> {b!r}")
    return "; ".join(parts)
