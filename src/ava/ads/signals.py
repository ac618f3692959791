"""Audience signals of one ad: best age group and gender, population-normalised top states,
buckets, URL-masked text, and a content key for de-duplication.

Keywords are not made here: KeyBERT needs the body's embedding, which the build computes once per
distinct body next to pair mining (``ava.ads.keywords``); ``AdSignals.keywords`` is filled there."""

from __future__ import annotations

import hashlib
import json
import re

from ava.ads.census import us_state, us_state_population
from ava.contracts.ads import AGE_BUCKETS, Ad, AdRecord, AdSignals

REMOVED_NOTICE = "This content was removed because it didn't follow our Advertising Standards"

# Full URLs, www. hosts, and bare domains with a common TLD ("iwillvote.com", "yes23.com.au").
_URL = re.compile(
    r"(?:https?://|www\.)\S+"
    r"|\b[a-z0-9][a-z0-9-]*(?:\.[a-z0-9-]+)*\.(?:com|org|net|gov|edu|us|io|co|info|biz|ly|me|eu|uk|nl|be"
    r"|de|fr|au|ca|ie|es|it)\b(?:/\S*)?",
    re.IGNORECASE,
)
_SPACES = re.compile(r"[ \t\u00a0\u2009\u202f]+")
_BLANKS = re.compile(r"\n\s*\n+")


def mask_urls(text: str) -> str:
    return _URL.sub("[URL]", text)


def clean_text(text: str) -> str:
    """URLs masked as ``[URL]``, odd spaces folded, blank-line runs collapsed."""
    text = _SPACES.sub(" ", mask_urls(text))
    text = "\n".join(line.strip() for line in text.split("\n"))
    return _BLANKS.sub("\n\n", text).strip()


def age_shares(record: AdRecord) -> dict[str, float]:
    out: dict[str, float] = {}
    for cell in record.demographics:
        if cell.age is not None:
            out[cell.age] = out.get(cell.age, 0.0) + cell.share
    return {a: out[a] for a in AGE_BUCKETS if a in out}


def gender_shares(record: AdRecord) -> dict[str, float]:
    out: dict[str, float] = {}
    for cell in record.demographics:
        if cell.gender in ("male", "female"):
            out[cell.gender] = out.get(cell.gender, 0.0) + cell.share
    return out


def best_age(shares: dict[str, float]) -> str | None:
    """Argmax over age buckets (summed over gender); ties go to the younger bucket."""
    if not shares or max(shares.values()) <= 0:
        return None
    return max(AGE_BUCKETS, key=lambda a: (shares.get(a, -1.0), -AGE_BUCKETS.index(a)))


def best_gender(shares: dict[str, float]) -> str | None:
    """Male or female (summed over age), None on an exact tie or without data."""
    male, female = shares.get("male", 0.0), shares.get("female", 0.0)
    if male == female:
        return None
    return "male" if male > female else "female"


def region_ranking(record: AdRecord) -> tuple[tuple[str, ...], dict[str, float]]:
    """US states with delivery, ranked by share / 2020 population (ties by name), and raw shares."""
    population = us_state_population()
    shares: dict[str, float] = {}
    for cell in record.regions:
        state = us_state(cell.region)
        if state and cell.share > 0:
            shares[state] = shares.get(state, 0.0) + cell.share
    ranking = sorted(shares, key=lambda s: (-shares[s] / population[s], s))
    return tuple(ranking), shares


def content_key(record: AdRecord, text: str) -> str:
    """Identical ads (same page, text, dates, buckets and audience) share this key; the id is left out."""
    payload = [
        record.page_id, text, record.title, record.start_date, record.stop_date,
        record.spend and record.spend.bucket, record.impressions and record.impressions.bucket,
        sorted((c.age or "", c.gender or "", round(c.share, 6)) for c in record.demographics),
        sorted((r.region, round(r.share, 6)) for r in record.regions),
    ]
    return hashlib.sha1(json.dumps(payload, ensure_ascii=False).encode()).hexdigest()


def compute_signals(record: AdRecord) -> Ad:
    text = clean_text(record.body)
    ages, genders = age_shares(record), gender_shares(record)
    ranking, shares = region_ranking(record)
    return Ad(
        record,
        AdSignals(
            text=text,
            content_key=content_key(record, text),
            best_age=best_age(ages),
            best_gender=best_gender(genders),
            age_shares=ages,
            gender_shares=genders,
            region_ranking=ranking,
            region_shares=shares,
        ),
    )
