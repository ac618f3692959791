"""The versioned prompt templates (``data/instructions/templates.yaml``) and how an ad fills them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from typing import Any

import yaml

from ava.ads.signals import clean_text
from ava.contracts.ads import Ad, Bounds
from ava.paths import bundled

TAP_TASKS = ("TAP-G", "TAP-A", "TAP-R", "TAP-B", "TAP-I")
TAG_TASKS = ("TAG-G", "TAG-A", "TAG-R", "TAG-B", "TAG-I")
TS_TASKS = ("TS-B", "TS-E", "TS-A", "TS-G", "TS-R")
TC_TASKS = ("TC-A", "TC-G", "TC-R")
ALL_TASKS = TAP_TASKS + TAG_TASKS + TS_TASKS + TC_TASKS

# An ad's title and dates are rendered into every sample it takes part in (dozens for an ad in
# pairs): cleaning and formatting them once per distinct value is ~0.1 ms an ad of a build.
_clean_title = lru_cache(maxsize=1 << 16)(clean_text)


@lru_cache(maxsize=1 << 14)
def _format_day(iso: str, fmt: str) -> str:
    return date.fromisoformat(iso).strftime(fmt)


@dataclass(frozen=True)
class Templates:
    version: str
    context: dict[str, str]
    audience: dict[str, str]
    tasks: dict[str, dict[str, Any]]

    def bounds(self, b: Bounds, unit: str = "") -> str:
        text = (
            self.context["bounds_open"].format(lb=b.lower)
            if b.upper is None
            else self.context["bounds"].format(lb=b.lower, ub=b.upper)
        )
        return f"{text} {unit}".rstrip()

    def spend(self, ad: Ad) -> str | None:
        r = ad.record
        return self.bounds(r.spend, r.currency or "") if r.spend else None

    def impressions(self, ad: Ad) -> str | None:
        return self.bounds(ad.record.impressions) if ad.record.impressions else None

    def day(self, iso: str) -> str:
        return _format_day(iso, self.context["date_format"])

    def title_clause(self, ad: Ad) -> str:
        title = _clean_title(ad.record.title or "")
        return self.context["title_clause"].format(title=title) if title else ""

    def context_lines(self, ad: Ad, hide: tuple[str, ...] | list[str] = ()) -> list[str]:
        """The ad's facts as sentences, leaving out missing ones and those in ``hide``."""
        r, c = ad.record, self.context
        lines = [c["brand"].format(brand=r.page_name, title_clause=self.title_clause(ad))]
        if r.platforms:
            lines.append(c["platforms"].format(platforms=", ".join(r.platforms)))
        if r.start_date and r.stop_date:
            lines.append(c["dates"].format(start=self.day(r.start_date), end=self.day(r.stop_date)))
        elif r.start_date:
            lines.append(c["dates_open"].format(start=self.day(r.start_date)))
        lines.append(c["market"].format(market=r.market or c["market_global"]))
        if "spend" not in hide and r.spend:
            lines.append(c["spend"].format(spend=self.spend(ad)))
        if "impressions" not in hide and r.impressions:
            lines.append(c["impressions"].format(impressions=self.impressions(ad)))
        if "audience_size" not in hide and r.audience_size:
            lines.append(c["audience_size"].format(audience_size=self.bounds(r.audience_size)))
        return lines

    def content(self, text: str) -> str:
        return self.context["content"].format(body=text)


@lru_cache(maxsize=4)
def load_templates(path: str | None = None) -> Templates:
    """Templates from ``path`` or the bundled file; checks that every subtask is defined."""
    source = bundled("instructions", "templates.yaml") if path is None else path
    with open(source, encoding="utf-8") as fh:
        doc = yaml.safe_load(fh)
    missing = [t for t in ALL_TASKS if t not in doc.get("tasks", {})]
    if missing or not doc.get("version"):
        raise ValueError(f"{source}: templates need a 'version' and all 18 tasks; missing {missing}")
    return Templates(str(doc["version"]), doc["context"], doc["audience"], doc["tasks"])
