"""Chunk -> append -> flush -> resume: the loop every resumable run shares.

Finished work is appended to a JSONL log one chunk at a time and flushed, so a kill loses at
most the chunk in flight; a rerun reads the log back and does only what is missing.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")


def unfinished_chunks(items: Sequence[T], key: Callable[[T], str], log: JsonlLog, size: int,
                      boundary: Callable[[T], Hashable] | None = None) -> list[T]:
    """The items of every chunk ``log`` does not hold whole, chunks fixed by absolute position
    (chunk k is ``items[k*size:(k+1)*size]``); the rows of a chunk held only in part are dropped
    from the log (and its file, rewritten atomically).

    Why whole chunks: a batched model's numbers depend, in the last bits, on which prompts share a
    batch (padding widths, the prefix tree, the kernel's reduction order). Redoing only the missing
    items after a kill would score them in other company than an uninterrupted run did, and the
    resumed scores would differ from it by ~1e-7. Redoing whole chunks from their start, with the
    same fixed size, puts every item in the same batches as an uninterrupted run: bit for bit.
    ``boundary``: as :func:`run_in_chunks`'s (chunks restart at each change of its value).
    """
    todo: list[T] = []
    dropped: set[str] = set()
    for chunk in _fixed_chunks(items, size, boundary):
        held = [key(item) for item in chunk if key(item) in log.rows]
        if len(held) < len(chunk):
            todo += chunk
            dropped.update(held)
    if dropped:
        log.drop(dropped)
    return todo


@dataclass(frozen=True)
class ChunkPolicy:
    """Chunks start at ``first`` items and double while one takes under ``seconds``, up to ``most``.

    Why grow: a slow model (CPU) still shows progress and saves every few seconds, a fast one
    gets large batches. ``first == most`` gives fixed chunks.
    """

    first: int = 32
    most: int = 4096
    seconds: float = 5.0


class JsonlLog:
    """An append-only JSONL file of finished work, one row per item, keyed by the field ``key``.

    Reading cuts a torn last line (a kill mid-write) off the file, so the next append starts on
    a fresh line, and counts and skips any other unreadable line: that work is redone.
    """

    def __init__(self, path: Path, key: str) -> None:
        self.path = Path(path)
        self.key = key
        self.rows: dict[str, dict[str, Any]] = {}
        self.unreadable = 0

    def load(self) -> dict[str, dict[str, Any]]:
        self.rows, self.unreadable = {}, 0
        if not self.path.exists():
            return self.rows
        with open(self.path, "rb+") as fh:
            data = fh.read()
            keep = data.rfind(b"\n") + 1
            if keep < len(data):
                fh.truncate(keep)
                self.unreadable += 1
        for line in data[:keep].splitlines():
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                self.rows[str(row[self.key])] = row
            except (ValueError, KeyError, TypeError):
                self.unreadable += 1
        return self.rows

    def drop(self, keys: set[str]) -> None:
        """Forget the rows with these keys, here and in the file (rewritten atomically)."""
        from ava.io import atomic_write

        self.rows = {k: row for k, row in self.rows.items() if k not in keys}
        with atomic_write(self.path) as fh:
            for row in self.rows.values():
                fh.write(json.dumps(row, ensure_ascii=False) + "\n")

    def append(self, rows: Sequence[Mapping[str, Any]], fh: Any) -> None:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
            self.rows[str(row[self.key])] = dict(row)
        fh.flush()


def _fixed_chunks(items: Sequence[T], size: int, boundary: Callable[[T], Hashable] | None) -> list[Sequence[T]]:
    """``items`` in chunks of ``size`` from the start, restarting at each change of ``boundary``:
    the chunks :func:`run_in_chunks` makes of them with a fixed :class:`ChunkPolicy`."""
    chunks: list[Sequence[T]] = []
    start = 0
    while start < len(items):
        end = min(start + size, len(items))
        if boundary is not None:
            first = boundary(items[start])
            end = next((i for i in range(start + 1, end) if boundary(items[i]) != first), end)
        chunks.append(items[start:end])
        start = end
    return chunks


def run_in_chunks(
    todo: Sequence[T],
    work: Callable[[Sequence[T]], Sequence[Mapping[str, Any]]],
    log: JsonlLog,
    *,
    policy: ChunkPolicy = ChunkPolicy(),
    boundary: Callable[[T], Hashable] | None = None,
    desc: str = "",
    unit: str = "item",
    progress: bool = True,
) -> None:
    """``work`` each chunk of ``todo`` (one row per item) and append its rows to ``log`` before the next.

    ``boundary``: a chunk never spans two values of it (e.g. generation lengths per task family).
    """
    if not todo:
        return
    from tqdm.auto import tqdm

    log.path.parent.mkdir(parents=True, exist_ok=True)
    with (
        open(log.path, "a", encoding="utf-8") as fh,
        tqdm(total=len(todo), unit=unit, desc=desc, disable=not progress, dynamic_ncols=True) as bar,
    ):
        start, size = 0, min(policy.first, policy.most)
        while start < len(todo):
            end = min(start + size, len(todo))
            if boundary is not None:
                first = boundary(todo[start])
                end = next((i for i in range(start + 1, end) if boundary(todo[i]) != first), end)
            part = todo[start:end]
            started = time.perf_counter()
            rows = work(part)
            if len(rows) != len(part):
                raise ValueError(f"{desc or 'work'}: {len(rows)} results for {len(part)} items")
            if time.perf_counter() - started < policy.seconds:
                size = min(policy.most, size * 2)
            log.append(rows, fh)
            bar.update(len(part))
            start = end
