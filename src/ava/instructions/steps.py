"""The streaming steps of the ingest stage: read -> normalise/validate -> clean -> signals."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from ava.ads.limits import AdLimits, default_limits
from ava.ads.normalise import BadRecord, normalise_raw
from ava.ads.readers import InputFile, RawItem, iter_raw
from ava.ads.signals import REMOVED_NOTICE, compute_signals
from ava.contracts.ads import Ad, AdRecord
from ava.instructions.pipeline import StepStats


@dataclass
class ReadAds:
    """This rank's raw records of every input, in input order."""

    inputs: list[InputFile]
    name: str = "read"

    def run(self, items: Iterable[Any], rank: int, world_size: int, stats: StepStats) -> Iterator[RawItem]:
        for inp in self.inputs:
            for raw in iter_raw(inp, rank, world_size):
                if raw.record:  # a note about a whole file (empty, not an ad file) is no record read
                    stats.seen += 1
                    stats.kept += 1
                    stats.by_file.setdefault(inp.name, Counter())["read"] += 1
                yield raw


@dataclass
class Normalise:
    """Validate; a bad record is counted by reason and logged with its file and line, then skipped."""

    errors: list[dict[str, Any]] = field(default_factory=list)
    limits: AdLimits = field(default_factory=default_limits)
    name: str = "normalise"

    def run(self, items: Iterable[RawItem], rank: int, world_size: int, stats: StepStats) -> Iterator[AdRecord]:
        for raw in items:
            stats.seen += 1
            try:
                record = normalise_raw(raw, self.limits)
            except BadRecord as exc:
                stats.drop(exc.reason, raw.source.file)
                self.errors.append({"file": raw.source.file, "line": raw.source.line,
                                    "reason": exc.reason, "message": str(exc)})
                continue
            stats.kept += 1
            yield record


@dataclass
class Clean:
    """The method's cleaning: no body, removed content, or no start date -> dropped (counted)."""

    name: str = "clean"

    def run(self, items: Iterable[AdRecord], rank: int, world_size: int, stats: StepStats) -> Iterator[AdRecord]:
        for record in items:
            stats.seen += 1
            reason = None
            if not record.body.strip():
                reason = "empty_body"
            elif record.body.startswith(REMOVED_NOTICE):
                reason = "removed_content"
            elif record.start_date is None:
                reason = "missing_date"
            if reason:
                stats.drop(reason, record.source.file)
                continue
            stats.kept += 1
            yield record


@dataclass
class Signals:
    name: str = "signals"

    def run(self, items: Iterable[AdRecord], rank: int, world_size: int, stats: StepStats) -> Iterator[Ad]:
        for record in items:
            stats.seen += 1
            ad = compute_signals(record)
            if not ad.signals.text:
                stats.drop("empty_after_cleaning", record.source.file)
                continue
            stats.kept += 1
            yield ad
