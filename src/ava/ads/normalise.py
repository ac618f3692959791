"""Raw ad dict (current API, legacy 2019, EU/DSA, analysis CSV) -> one validated :class:`AdRecord`.

A record that cannot be trusted raises :class:`BadRecord` with a short reason code (counted in the
manifest) and a one-line message naming the field. Every field read is type-checked first
(:mod:`ava.ads.fields`), so any JSON value in any field gives a record or a reason, never a crash.
Fields the build does not read (``eu_total_reach``, ``target_ages``, ...) are not checked: they
cannot change the output. Values are never echoed unredacted.
"""

from __future__ import annotations

import ast
import re
from datetime import datetime
from typing import Any

from ava.ads.census import us_state
from ava.ads.fields import (
    BadRecord,
    check_text,
    entries,
    first_present,
    ident,
    kind,
    number,
    objects,
    strings,
    text,
    whole,
    wrong_type,
)
from ava.ads.limits import AdLimits, default_limits
from ava.ads.readers import RawItem
from ava.contracts.ads import AGE_BUCKETS, GENDERS, AdRecord, Bounds, DemoCell, RegionShare, SourceRef

__all__ = ["SHARE_TOLERANCE", "BadRecord", "normalise", "normalise_raw"]

SHARE_TOLERANCE = 0.01
"""Shares must sum to 1 within this; real files are off by at most 1e-4 (rounding)."""

_SNAPSHOT_ID = re.compile(r"[?&]id=(\d+)")
_DATE_FORMATS = ("%Y-%m-%d", "%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S")
_CURRENCY = re.compile(r"[A-Za-z]{3}")


def normalise_raw(raw: RawItem, limits: AdLimits | None = None) -> AdRecord:
    """The record a reader produced, or :class:`BadRecord` with the reader's reason when it had none."""
    if raw.error is not None:
        raise BadRecord(raw.reason or "invalid_json", raw.error)
    return normalise(raw.data, raw.source, limits)


def normalise(data: Any, source: SourceRef, limits: AdLimits | None = None) -> AdRecord:
    """Validate and normalise one raw record; raises :class:`BadRecord`."""
    lim = limits or default_limits()
    if not isinstance(data, dict):
        raise BadRecord("not_an_object", f"expected a JSON object, got {kind(data)}")
    gender_cells: tuple[DemoCell, ...] = ()
    if source.format == "csv":
        data, gender_cells = _csv_to_api(data)
    ad_id = _ad_id(data, lim.max_id_chars)
    page_id = ident(data.get("page_id"), "page_id", lim.max_id_chars)
    page_name = text(data.get("page_name"), "page_name", lim.max_text_chars)
    if not page_id or not page_name:
        raise BadRecord("missing_page", "no page_id/page_name: the advertiser is unknown")
    start = _date(data, "ad_delivery_start_time") or _date(data, "ad_creation_time")
    stop = _date(data, "ad_delivery_stop_time")
    if start and stop and stop < start:
        raise BadRecord("stop_before_start", f"ad_delivery_stop_time {stop} is before the start {start}")
    regions = _regions(data, lim.max_text_chars)
    cap = lim.max_text_chars
    return AdRecord(
        ad_id=ad_id,
        page_id=page_id,
        page_name=page_name,
        body=_first(data, "ad_creative_bodies", "ad_creative_body", lim.max_body_chars, "body_too_long") or "",
        source=source,
        title=_first(data, "ad_creative_link_titles", "ad_creative_link_title", cap),
        caption=_first(data, "ad_creative_link_captions", "ad_creative_link_caption", cap),
        description=_first(data, "ad_creative_link_descriptions", "ad_creative_link_description", cap),
        bylines=text(*_swap(first_present(data, "bylines", "funding_entity")), cap),
        currency=_currency(data.get("currency"), cap),
        start_date=start,
        stop_date=stop,
        platforms=tuple(p.lower() for p in strings(data.get("publisher_platforms"), "publisher_platforms", cap)),
        languages=tuple(strings(data.get("languages"), "languages", cap)),
        market=_market(data, regions, cap),
        spend=_bounds(data, "spend"),
        impressions=_bounds(data, "impressions"),
        audience_size=_bounds(data, "estimated_audience_size") or _bounds(data, "potential_reach"),
        demographics=_demographics(data) or gender_cells,
        regions=regions,
    )


def _swap(pair: tuple[str, Any]) -> tuple[Any, str]:
    """``first_present``'s (key, value) as the (value, field) the accessors take."""
    return pair[1], pair[0]


def _ad_id(data: dict[str, Any], limit: int) -> str:
    for key in ("id", "_id", "ad_id"):
        value = ident(data.get(key), key, limit)
        if value:
            return value
    # Legacy dumps only carry the Library ID inside the snapshot URL (``?id=...``).
    url = data.get("ad_snapshot_url")
    if url is not None and not isinstance(url, str):
        raise wrong_type("ad_snapshot_url", url, "a string")
    match = _SNAPSHOT_ID.search(url or "")
    if match:
        return ident(match.group(1), "the id in ad_snapshot_url", limit) or ""
    raise BadRecord("missing_id", "no id/_id and no ?id= in ad_snapshot_url")


def _first(
    data: dict[str, Any], list_key: str, legacy_key: str, limit: int, reason: str = "text_too_long"
) -> str | None:
    """The first non-empty entry of a list of strings, or the legacy single-string field.

    Every entry must be a string (or null); only the entry used is checked for length.
    """
    key, value = list_key, data.get(list_key)
    if value is None:
        key, value = legacy_key, data.get(legacy_key)
    if isinstance(value, str):
        return check_text(value, key, limit, reason) or None
    items = entries(value, key, "strings")
    for label, item in items:
        if not isinstance(item, str):
            raise wrong_type(label, item, "a string")
    for label, item in items:
        if item.strip():
            return check_text(item, label, limit, reason)
    return None


def _date(data: dict[str, Any], key: str) -> str | None:
    value = data.get(key)
    if value is not None and not isinstance(value, str):
        raise wrong_type(key, value, "a date string (YYYY-MM-DD or ISO 8601)")
    raw = (value or "").strip()
    if not raw:
        return None
    for fmt in _DATE_FORMATS:
        try:
            return datetime.strptime(raw, fmt).date().isoformat()
        except ValueError:
            continue
    raise BadRecord("bad_date", f"{key} is not a date (expected YYYY-MM-DD or ISO 8601)")


def _currency(value: Any, limit: int) -> str | None:
    code = text(value, "currency", limit)
    if code is None:
        return None
    if not _CURRENCY.fullmatch(code):
        raise BadRecord("bad_currency", f"currency {code[:20]!r} is not a 3-letter ISO 4217 code")
    return code.upper()


def _bounds(data: dict[str, Any], key: str) -> Bounds | None:
    value = data.get(key)
    if value is None or value == {}:
        return None
    if not isinstance(value, dict):
        raise wrong_type(key, value, "an object {'lower_bound': ..., 'upper_bound': ...}")
    if value.get("lower_bound") in (None, ""):
        raise BadRecord("bad_bounds", f"{key} must be {{'lower_bound': ..., 'upper_bound': ...}}")
    lower = whole(value["lower_bound"], f"{key}.lower_bound")
    upper_raw = value.get("upper_bound")
    upper = None if upper_raw in (None, "") else whole(upper_raw, f"{key}.upper_bound")
    if upper is not None and upper < lower:
        raise BadRecord("bounds_unordered", f"{key}: upper_bound {upper} < lower_bound {lower}")
    return Bounds(lower, upper)


def _check_sum(total: float, field: str) -> None:
    if abs(total - 1.0) > SHARE_TOLERANCE:
        raise BadRecord("shares_do_not_sum", f"{field} shares sum to {total:.4f}, not 1")


def _label(value: Any) -> str:
    """A cell value quoted for a message: a short string as itself, anything else by its type."""
    return repr(value[:20]) if isinstance(value, str) else kind(value)


def _demographics(data: dict[str, Any]) -> tuple[DemoCell, ...]:
    cells = data.get("demographic_distribution")
    if cells is not None and cells != []:
        out: dict[tuple[str, str], DemoCell] = {}
        for label, cell in objects(cells, "demographic_distribution"):
            age, gender = cell.get("age"), cell.get("gender")
            if not isinstance(age, str) or age not in AGE_BUCKETS:
                raise BadRecord("unknown_age", f"{label}.age {_label(age)} is not a Meta age bucket")
            if not isinstance(gender, str) or gender not in GENDERS:
                raise BadRecord("unknown_gender", f"{label}.gender {_label(gender)} is not male/female/unknown")
            if (age, gender) in out:
                raise BadRecord("duplicate_cell", f"{label}: a second cell for {age} {gender}")
            out[age, gender] = DemoCell(age, gender, number(cell.get("percentage"), f"{label}.percentage"))
        _check_sum(sum(c.share for c in out.values()), "demographic_distribution")
        return tuple(out.values())
    breakdown = data.get("age_country_gender_reach_breakdown")
    if breakdown is not None and breakdown != []:
        return _eu_breakdown(breakdown)
    return ()


def _eu_breakdown(breakdown: Any) -> tuple[DemoCell, ...]:
    """EU (DSA) reach gives absolute counts per country x age x gender: pool countries, make shares."""
    counts: dict[tuple[str, str], float] = {}
    for label, country in objects(breakdown, "age_country_gender_reach_breakdown"):
        rows = objects(country.get("age_gender_breakdowns"), f"{label}.age_gender_breakdowns")
        for row_label, row in rows:
            age = row.get("age_range")
            if not isinstance(age, str):
                raise wrong_type(f"{row_label}.age_range", age, "an age range string")
            if age not in AGE_BUCKETS:
                continue  # "Unknown" age ranges carry no bucket to predict
            for gender in GENDERS:
                if gender in row:
                    key = (age, gender)
                    counts[key] = counts.get(key, 0.0) + number(row[gender], f"{row_label}.{gender}")
    total = sum(counts.values())
    if total <= 0:
        return ()
    return tuple(DemoCell(a, g, n / total) for (a, g), n in sorted(counts.items()))


def _regions(data: dict[str, Any], limit: int) -> tuple[RegionShare, ...]:
    key, cells = first_present(data, "delivery_by_region", "region_distribution")
    out: dict[str, RegionShare] = {}
    for label, cell in objects(cells, key):
        region = text(cell.get("region"), f"{label}.region", limit)
        if region is None:
            raise wrong_type(f"{label}.region", cell.get("region"), "a region name")
        if region in out:
            raise BadRecord("duplicate_cell", f"{label}: a second share for region {region[:40]!r}")
        out[region] = RegionShare(region, number(cell.get("percentage"), f"{label}.percentage"))
    if not out:
        return ()
    _check_sum(sum(r.share for r in out.values()), key)
    return tuple(out.values())


def _market(data: dict[str, Any], regions: tuple[RegionShare, ...], limit: int) -> str | None:
    if regions and all(us_state(r.region) for r in regions):
        return "USA"
    countries = []
    for label, loc in objects(data.get("target_locations"), "target_locations"):
        kind_, excluded = loc.get("type"), loc.get("excluded")
        if kind_ is not None and not isinstance(kind_, str):
            raise wrong_type(f"{label}.type", kind_, "a string")
        if excluded is not None and not isinstance(excluded, bool):
            raise wrong_type(f"{label}.excluded", excluded, "true or false")
        if (kind_ or "").lower() == "countries" and not excluded:
            name = text(loc.get("name"), f"{label}.name", limit)
            if name is None:
                raise wrong_type(f"{label}.name", loc.get("name"), "a country name")
            countries.append(name)
    return ", ".join(sorted(countries)) or None


def _literal(value: str, field: str) -> Any:
    """Python-repr lists/dicts in the analysis CSV: parsed with ``ast.literal_eval`` (never ``eval``)."""
    if not value.strip():
        return None
    try:
        return ast.literal_eval(value)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        raise BadRecord("bad_csv_cell", f"column {field} is not a Python-repr list") from None


def _csv_to_api(row: dict[str, Any]) -> tuple[dict[str, Any], tuple[DemoCell, ...]]:
    """Map the analysis CSV's columns onto API fields where they allow it, and its gender cells.

    The table has gender aggregates (``male``/``female``) but only coarse age aggregates
    (young/middle/old), which are not Meta buckets: those are not used, so CSV ads never give
    an age label. (The readers give every cell as a string, or None for a missing column.)
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
            cells.append(DemoCell(None, gender, number(row[gender], gender)))
    if cells and sum(c.share for c in cells) > 1 + SHARE_TOLERANCE:
        raise BadRecord("shares_do_not_sum", "male + female shares exceed 1")
    return out, tuple(cells)
