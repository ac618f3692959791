"""Locating and reading benchmark data, and counting every row a loader drops.

Shared by the benchmark modules in :mod:`ava.evals.tasks`: where data is looked for when no
path is given, the one "data not found" error, UTF-8 reading that names the file and line of
a bad byte, and the load report that counts what was dropped or repaired per reason. Which
units ``--limit`` keeps is :mod:`ava.subsets`'.
"""

from __future__ import annotations

import os
import sys
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


class DataNotFound(FileNotFoundError):
    """A benchmark's data is not where it was looked for; the message says how to get it."""


class DataError(ValueError):
    """Benchmark data that cannot be used at all; the message names the file (and line)."""


def data_root(settings: Mapping[str, Any] | None = None) -> Path:
    """Where benchmark data folders are looked for when no path is given.

    ``data_root`` setting, else ``$AVA_DATA``, else ``../shared/data`` (the development
    checkout's layout), else ``./data``.
    """
    settings = settings or {}
    if settings.get("data_root"):
        return Path(str(settings["data_root"])).expanduser()
    if os.environ.get("AVA_DATA"):
        return Path(os.environ["AVA_DATA"]).expanduser()
    shared = Path("..") / "shared" / "data"
    return shared if shared.exists() else Path("data")


def locate(explicit: str | Path | None, folder: str, filename: str, how_to_get: str,
           settings: Mapping[str, Any] | None = None) -> Path:
    """A benchmark's data file: ``explicit`` (a file, or a folder holding ``filename``), else
    ``<data root>/<folder>/<filename>``; a clear :class:`DataNotFound` otherwise."""
    if explicit is not None:
        path = Path(explicit).expanduser()
        candidate = path / filename if path.is_dir() else path
    else:
        candidate = data_root(settings) / folder / filename
    if candidate.is_file():
        return candidate
    raise DataNotFound(f"data not found at {candidate}; {how_to_get}")


def read_utf8(path: str | Path) -> str:
    """A text file's content; :class:`DataError` naming the line of the first byte that is not UTF-8."""
    raw = Path(path).read_bytes()
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise DataError(f"{path}:{line}: not UTF-8 text (byte 0x{raw[exc.start]:02x}); save it as UTF-8") from None


@dataclass
class LoadReport:
    """What a loader read, kept and dropped (per reason), with the first messages verbatim.

    Every dropped or repaired row is counted here and reported in the task's results:
    nothing is skipped silently.
    """

    path: str
    rows: int = 0
    kept: int = 0
    dropped: Counter[str] = field(default_factory=Counter)
    repaired: Counter[str] = field(default_factory=Counter)
    messages: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    max_messages: int = 50

    def drop(self, reason: str, where: str, message: str) -> None:
        self.dropped[reason] += 1
        self._say(f"{self.path}:{where}: {message}")

    def repair(self, reason: str, where: str, message: str) -> None:
        self.repaired[reason] += 1
        self._say(f"{self.path}:{where}: {message}")

    def _say(self, message: str) -> None:
        if len(self.messages) < self.max_messages:
            self.messages.append(message)

    def warn(self, n_messages: int = 5) -> None:
        """Print the summary and the first messages to stderr when anything was dropped or repaired."""
        if not (self.dropped or self.repaired):
            return
        print(f"warning: {self.summary()}", file=sys.stderr)
        for message in self.messages[:n_messages]:
            print(f"  {message}", file=sys.stderr)
        n_more = sum(self.dropped.values()) + sum(self.repaired.values()) - n_messages
        if n_more > 0:
            print(f"  ... and {n_more} more (all counted in the results' data section)", file=sys.stderr)

    def summary(self) -> str:
        parts = [f"{self.path}: {self.rows} rows read, {self.kept} kept"]
        if self.dropped:
            parts.append("dropped: " + ", ".join(f"{n} {r}" for r, n in sorted(self.dropped.items())))
        if self.repaired:
            parts.append("repaired: " + ", ".join(f"{n} {r}" for r, n in sorted(self.repaired.items())))
        return "; ".join(parts + self.notes)

    def to_dict(self) -> dict[str, Any]:
        n_messages = sum(self.dropped.values()) + sum(self.repaired.values())
        return {
            "path": self.path,
            "rows": self.rows,
            "kept": self.kept,
            "dropped": dict(sorted(self.dropped.items())),
            "repaired": dict(sorted(self.repaired.items())),
            "messages": list(self.messages),
            "messages_left_out": max(0, n_messages - len(self.messages)),
            "notes": list(self.notes),
            "summary": self.summary(),
        }
