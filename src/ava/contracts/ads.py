"""One normalised ad-library record, whatever shape it was read from, and the signals derived from it.

Produced by ``ava.ads`` (readers + normaliser + signals), consumed by ``ava.instructions``.
Every record remembers its source file and line so a bad value can be reported where it is.
"""

from __future__ import annotations

from dataclasses import dataclass, field

AGE_BUCKETS = ("13-17", "18-24", "25-34", "35-44", "45-54", "55-64", "65+")
GENDERS = ("male", "female", "unknown")


@dataclass(frozen=True, slots=True)
class SourceRef:
    """Where a record came from: the input's display name and a 1-based line (or record number)."""

    file: str
    line: int
    format: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}"


@dataclass(frozen=True, slots=True)
class Bounds:
    """A Meta range bucket; ``upper`` is None for the open top bucket (e.g. ``1000001+``)."""

    lower: int
    upper: int | None

    @property
    def bucket(self) -> str:
        return f"{self.lower}+" if self.upper is None else f"{self.lower}-{self.upper}"


@dataclass(frozen=True, slots=True)
class DemoCell:
    """One share of impressions; ``age`` is None when a source only gives gender aggregates."""

    age: str | None
    gender: str | None
    share: float


@dataclass(frozen=True, slots=True)
class RegionShare:
    region: str
    share: float


@dataclass(frozen=True, slots=True)
class AdRecord:
    """A validated ad. Dates are ISO ``YYYY-MM-DD``; the snapshot URL (token risk) is never kept."""

    ad_id: str
    page_id: str
    page_name: str
    body: str
    source: SourceRef
    title: str | None = None
    caption: str | None = None
    description: str | None = None
    bylines: str | None = None
    currency: str | None = None
    start_date: str | None = None
    stop_date: str | None = None
    platforms: tuple[str, ...] = ()
    languages: tuple[str, ...] = ()
    market: str | None = None
    spend: Bounds | None = None
    impressions: Bounds | None = None
    audience_size: Bounds | None = None
    demographics: tuple[DemoCell, ...] = ()
    regions: tuple[RegionShare, ...] = ()

    @property
    def advertiser(self) -> str:
        """A Page is an advertiser (brand sub-pages are separate advertisers)."""
        return self.page_id


@dataclass(frozen=True, slots=True)
class AdSignals:
    """What an ad says about its audience, ready to be rendered into prompts.

    ``region_ranking`` lists delivered US states by share / 2020 population, best first (empty
    when the ad has no US region data); ``region_shares`` keeps the raw shares of those states.
    """

    text: str
    content_key: str
    keywords: tuple[str, ...] = ()
    best_age: str | None = None
    best_gender: str | None = None
    age_shares: dict[str, float] = field(default_factory=dict)
    gender_shares: dict[str, float] = field(default_factory=dict)
    region_ranking: tuple[str, ...] = ()
    region_shares: dict[str, float] = field(default_factory=dict)

    @property
    def top_regions(self) -> tuple[str, ...]:
        return self.region_ranking[:3]


@dataclass(frozen=True, slots=True)
class Ad:
    """A record with its signals: the unit the instruction steps work on."""

    record: AdRecord
    signals: AdSignals
