"""Raw ad dict (current API, legacy 2019, EU/DSA, analysis CSV) -> one validated :class:`AdRecord`.

A record that cannot be trusted raises :class:`BadRecord` with a short reason code (counted in the
manifest) and a one-line message naming the field. Values are never echoed unredacted.
"""

from __future__ import annotations

import ast
import math
import re
from datetime import datetime
from typing import Any

from ava.ads.census import us_state
from ava.ads.redact import redact
from ava.contracts.ads import AGE_BUCKETS, GENDERS, AdRecord, Bounds, DemoCell, RegionShare, SourceRef

SHARE_TOLERANCE = 0.01
"""Shares must sum to 1 within this; real files are off by at most 1e-4 (rounding)."""

_SNAPSHOT_ID = re.compile(r"[?&]id=(\d+)")
_DATE_FORMATS = ("%Y-%m-%d", "%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S")


class BadRecord(ValueError):
    """A record that fails validation: ``reason`` is a stable code, the message says what to fix."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(redact(message))
        self.reason = reason


def normalise(data: Any, source: SourceRef) -> AdRecord:
    """Validate and normalise one raw record; raises :class:`BadRecord`."""
    if not isinstance(data, dict):
        raise BadRecord("not_an_object", f"expected a JSON object, got {type(data).__name__}")
    if source.format == "csv":
        data = _csv_to_api(data)
    ad_id = _ad_id(data)
    page_id, page_name = _text(data.get("page_id")), _text(data.get("page_name"))
    if not page_id or not page_name:
        raise BadRecord("missing_page", "no page_id/page_name: the advertiser is unknown")
    start = _date(data, "ad_delivery_start_time") or _date(data, "ad_creation_time")
    stop = _date(data, "ad_delivery_stop_time")
    if start and stop and stop < start:
        raise BadRecord("stop_before_start", f"ad_delivery_stop_time {stop} is before the start {start}")
    demographics = _demographics(data)
    regions = _regions(data)
    return AdRecord(
        ad_id=ad_id,
        page_id=page_id,
        page_name=page_name,
        body=_first(data, "ad_creative_bodies", "ad_creative_body") or "",
        source=source,
        title=_first(data, "ad_creative_link_titles", "ad_creative_link_title"),
        caption=_first(data, "ad_creative_link_captions", "ad_creative_link_caption"),
        description=_first(data, "ad_creative_link_descriptions", "ad_creative_link_description"),
        bylines=_text(data.get("bylines") or data.get("funding_entity")),
        currency=_text(data.get("currency")),
        start_date=start,
        stop_date=stop,
        platforms=tuple(str(p).lower() for p in data.get("publisher_platforms") or ()),
        languages=tuple(str(x) for x in data.get("languages") or ()),
        market=_market(data, regions),
        spend=_bounds(data, "spend"),
        impressions=_bounds(data, "impressions"),
        audience_size=_bounds(data, "estimated_audience_size") or _bounds(data, "potential_reach"),
        demographics=demographics,
        regions=regions,
    )


def _text(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _ad_id(data: dict[str, Any]) -> str:
    for key in ("id", "_id", "ad_id"):
        value = _text(data.get(key))
        if value:
            return value
    # Legacy dumps only carry the Library ID inside the snapshot URL (``?id=...``).
    match = _SNAPSHOT_ID.search(str(data.get("ad_snapshot_url") or ""))
    if match:
        return match.group(1)
    raise BadRecord("missing_id", "no id/_id and no ?id= in ad_snapshot_url")


def _first(data: dict[str, Any], list_key: str, legacy_key: str) -> str | None:
    """The first non-empty entry of a list field, or the legacy single-string field."""
    value = data.get(list_key)
    if value is None:
        value = data.get(legacy_key)
    if isinstance(value, str):
        value = [value]
    for item in value or ():
        text = _text(item)
        if text:
            return text
    return None


def _date(data: dict[str, Any], key: str) -> str | None:
    raw = _text(data.get(key))
    if raw is None:
        return None
    for fmt in _DATE_FORMATS:
        try:
            return datetime.strptime(raw, fmt).date().isoformat()
        except ValueError:
            continue
    raise BadRecord("bad_date", f"{key} is not a date (expected YYYY-MM-DD or ISO 8601)")


def _number(value: Any, field: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise BadRecord("bad_number", f"{field} is not a number") from None
    if not math.isfinite(number) or number < 0:
        raise BadRecord("bad_number", f"{field} must be a finite, non-negative number")
    return number


def _bounds(data: dict[str, Any], key: str) -> Bounds | None:
    value = data.get(key)
    if not value:
        return None
    if not isinstance(value, dict) or value.get("lower_bound") in (None, ""):
        raise BadRecord("bad_bounds", f"{key} must be {{'lower_bound': ..., 'upper_bound': ...}}")
    lower = int(_number(value["lower_bound"], f"{key}.lower_bound"))
    upper_raw = value.get("upper_bound")
    upper = None if upper_raw in (None, "") else int(_number(upper_raw, f"{key}.upper_bound"))
    if upper is not None and upper < lower:
        raise BadRecord("bounds_unordered", f"{key}: upper_bound {upper} < lower_bound {lower}")
    return Bounds(lower, upper)


def _check_sum(total: float, field: str) -> None:
    if abs(total - 1.0) > SHARE_TOLERANCE:
        raise BadRecord("shares_do_not_sum", f"{field} shares sum to {total:.4f}, not 1")


def _demographics(data: dict[str, Any]) -> tuple[DemoCell, ...]:
    cells = data.get("demographic_distribution")
    if cells:
        out = []
        for cell in cells:
            age, gender = cell.get("age"), cell.get("gender")
            if age not in AGE_BUCKETS:
                raise BadRecord("unknown_age", f"demographic_distribution age {str(age)[:20]!r} is not a Meta bucket")
            if gender not in GENDERS:
                raise BadRecord("unknown_gender", f"demographic_distribution gender {str(gender)[:20]!r} unknown")
            out.append(DemoCell(age, gender, _number(cell.get("percentage"), "demographic_distribution")))
        _check_sum(sum(c.share for c in out), "demographic_distribution")
        return tuple(out)
    breakdown = data.get("age_country_gender_reach_breakdown")
    if breakdown:
        return _eu_breakdown(breakdown)
    return tuple(data.get("_gender_cells") or ())


def _eu_breakdown(breakdown: list[dict[str, Any]]) -> tuple[DemoCell, ...]:
    """EU (DSA) reach gives absolute counts per country x age x gender: pool countries, make shares."""
    counts: dict[tuple[str, str], float] = {}
    for country in breakdown:
        for row in country.get("age_gender_breakdowns") or ():
            age = row.get("age_range")
            if age not in AGE_BUCKETS:
                continue  # "Unknown" age ranges carry no bucket to predict
            for gender in GENDERS:
                if gender in row:
                    key = (age, gender)
                    counts[key] = counts.get(key, 0.0) + _number(row[gender], "age_gender_breakdowns")
    total = sum(counts.values())
    if total <= 0:
        return ()
    return tuple(DemoCell(a, g, n / total) for (a, g), n in sorted(counts.items()))


def _regions(data: dict[str, Any]) -> tuple[RegionShare, ...]:
    cells = data.get("delivery_by_region") or data.get("region_distribution")
    if not cells:
        return ()
    out = [RegionShare(str(c.get("region")), _number(c.get("percentage"), "delivery_by_region")) for c in cells]
    _check_sum(sum(r.share for r in out), "delivery_by_region")
    return tuple(out)


def _market(data: dict[str, Any], regions: tuple[RegionShare, ...]) -> str | None:
    if regions and all(us_state(r.region) for r in regions):
        return "USA"
    countries = [
        str(loc.get("name"))
        for loc in data.get("target_locations") or ()
        if str(loc.get("type", "")).lower() == "countries" and not loc.get("excluded")
    ]
    return ", ".join(sorted(countries)) or None


def _literal(value: str, field: str) -> Any:
    """Python-repr lists/dicts in the analysis CSV: parsed with ``ast.literal_eval`` (never ``eval``)."""
    if not value.strip():
        return None
    try:
        return ast.literal_eval(value)
    except (ValueError, SyntaxError):
        raise BadRecord("bad_csv_cell", f"column {field} is not a Python-repr list") from None


def _csv_to_api(row: dict[str, str]) -> dict[str, Any]:
    """Map the analysis CSV's columns onto API fields where they allow it.

    The table has gender aggregates (``male``/``female``) but only coarse age aggregates
    (young/middle/old), which are not Meta buckets: those are not used, so CSV ads never give
    an age label.
    """
    out: dict[str, Any] = {k: row.get(k) for k in ("page_id", "page_name", "bylines", "currency")}
    out["id"] = row.get("ad_id")
    out["ad_creative_bodies"] = [row.get("ad_creative_bodies") or ""]
    for key in ("ad_creative_link_titles", "ad_creative_link_captions", "ad_creative_link_descriptions"):
        out[key] = _literal(row.get(key) or "", key)
    out["ad_delivery_start_time"] = row.get("ad_delivery_start_time")
    out["ad_delivery_stop_time"] = row.get("ad_delivery_stop_time")
    for key in ("spend", "impressions"):
        if (row.get(f"{key}_lower") or "").strip():
            out[key] = {"lower_bound": row[f"{key}_lower"], "upper_bound": row.get(f"{key}_upper")}
    out["delivery_by_region"] = _literal(row.get("delivery_by_region") or "", "delivery_by_region")
    cells = []
    for gender in ("male", "female"):
        if (row.get(gender) or "").strip():
            cells.append(DemoCell(None, gender, _number(row[gender], gender)))
    if cells and sum(c.share for c in cells) > 1 + SHARE_TOLERANCE:
        raise BadRecord("shares_do_not_sum", "male + female shares exceed 1")
    out["_gender_cells"] = cells
    return out
