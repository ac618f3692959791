"""One normalised ad-library record, whatever shape it was read from, and the signals derived from it.

Produced by ``ava.ads`` (readers + normaliser + signals), consumed by ``ava.instructions``.
Every record remembers its source file and line so a bad value can be reported where it is.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ava.contracts.pickling import fast_pickle

AGE_BUCKETS = ("13-17", "18-24", "25-34", "35-44", "45-54", "55-64", "65+")
GENDERS = ("male", "female", "unknown")


@fast_pickle
@dataclass(frozen=True, slots=True)
class SourceRef:
    """Where a record came from: the input's display name and a 1-based line (or record number)."""

    file: str
    line: int
    format: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}"


@fast_pickle
@dataclass(frozen=True, slots=True)
class Bounds:
    """A Meta range bucket; ``upper`` is None for the open top bucket (e.g. ``1000001+``)."""

    lower: int
    upper: int | None

    @property
    def bucket(self) -> str:
        return f"{self.lower}+" if self.upper is None else f"{self.lower}-{self.upper}"


@fast_pickle
@dataclass(frozen=True, slots=True)
class DemoCell:
    """One share of impressions; ``age`` is None when a source only gives gender aggregates."""

    age: str | None
    gender: str | None
    share: float


@fast_pickle
@dataclass(frozen=True, slots=True)
class RegionShare:
    region: str
    share: float


@fast_pickle
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


@fast_pickle
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


@fast_pickle
@dataclass(frozen=True, slots=True)
class Ad:
    """A record with its signals: the unit the instruction steps work on."""

    record: AdRecord
    signals: AdSignals


SKIP_REASONS: dict[str, str] = {
    # a record the normaliser refused (ava.ads.normalise / ava.ads.fields)
    "not_an_object": "the record is not a JSON object",
    "bad_type": "a field the build reads has the wrong JSON type (a string where a list belongs, ...)",
    "missing_field": "a value a cell needs (a region name, a country name) is missing or empty",
    "missing_id": "no id/_id/ad_id and no ?id= in ad_snapshot_url",
    "missing_page": "no page_id or page_name: the advertiser is unknown",
    "bad_date": "a date that is not YYYY-MM-DD or ISO 8601",
    "stop_before_start": "the delivery stop date is before the start",
    "bad_number": "a number that is not one: malformed, negative, NaN/infinite, fractional bound, too large",
    "bad_bounds": "a spend/impressions/audience object without lower_bound",
    "bounds_unordered": "upper_bound < lower_bound",
    "bad_currency": "a currency that is not a 3-letter ISO 4217 code",
    "shares_do_not_sum": "distribution shares do not sum to 1 +- 0.01",
    "unknown_age": "a demographic age outside Meta's buckets",
    "unknown_gender": "a demographic gender other than male/female/unknown",
    "duplicate_cell": "two cells for one age x gender, or two shares for one region",
    "bad_csv_cell": "a CSV list cell that is not a Python-repr literal",
    "invalid_text": "text holding undecodable bytes or an unpaired surrogate escape",
    "body_too_long": "the body is longer than the body cap (data/ads/limits.yaml, --max-body-chars)",
    "text_too_long": "an id or a short text field is longer than its cap (data/ads/limits.yaml)",
    # a line, row or file the readers could not turn into a record (ava.ads.readers)
    "invalid_json": "a line (or a whole JSON file) that is not valid JSON",
    "not_utf8": "a line or row with bytes that are not UTF-8, or a UTF-16 file",
    "api_page_in_jsonl": "a JSONL line holding a whole API response page instead of one ad",
    "csv_row_width": "a CSV row with more or fewer fields than the header",
    "bad_csv_header": "a CSV without the ad_id/page_id/page_name columns, or with a repeated column",
    "api_error": "a JSON file holding an Ad Library API error response",
    "api_page_without_data": "an API response page without 'data'",
    "empty_file": "an ad file with no records (0 bytes, blank, header only, empty 'data')",
    "unreadable_file": "a file that could not be read to its end (corrupt or truncated gzip, I/O error)",
    "unsupported_file": "a file in an input folder that is not an ad file (not .jsonl/.json/.csv[.gz])",
    # found by the build's plan across all inputs (ava.ads.dedup)
    "duplicate_id": "duplicate ad id with different content: the first in input order is kept",
}
"""Every reason a record or file is skipped (``skipped.json``, the manifest's ``files``), and what it means."""
