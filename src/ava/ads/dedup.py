"""Which ads a build keeps when ids or contents repeat (the policy, in one place).

Every record is identified by its position ``(file index, line)`` in input order; the earliest wins:

1. **Same ad id, different content** (another page, text, dates, buckets or audience): the first
   record keeps the id; every later one is *skipped* with reason ``duplicate_id`` and reported with
   its file and line, because two ads under one Library ID would give two samples with one sample
   id, and there is no telling which copy is right.
2. **Same ad id, same content**: an exact copy (the same ad fetched twice); *de-duplicated*,
   counted as ``duplicate``.
3. **Same content, different ids** (real data repeats bodies and audiences under new ids): counted
   as ``duplicate`` among the ads left after step 1, the first in input order kept.

Step 1 runs first so a conflicting copy never takes the content slot of a valid ad.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

Position = tuple[int, int]
"""(index of the input file, line or record number): input order."""


@dataclass(frozen=True, slots=True)
class Loser:
    """A record the build does not keep: ``reason`` and the position of the record kept instead."""

    reason: str
    kept: Position


def resolve_duplicates(keys: Iterable[tuple[str, str, Position]]) -> dict[Position, Loser]:
    """``(ad id, content key, position)`` of every usable record -> the records not kept, and why."""
    rows = sorted(keys, key=lambda k: k[2])
    by_id: dict[str, tuple[str, Position]] = {}
    losers: dict[Position, Loser] = {}
    for ad_id, content, pos in rows:
        first = by_id.setdefault(ad_id, (content, pos))
        if first[1] != pos:
            losers[pos] = Loser("duplicate" if first[0] == content else "duplicate_id", first[1])
    by_content: dict[str, Position] = {}
    for _ad_id, content, pos in rows:
        if pos not in losers:
            first_pos = by_content.setdefault(content, pos)
            if first_pos != pos:
                losers[pos] = Loser("duplicate", first_pos)
    return losers
