"""US state populations (2020 census) for population-normalised region ranking."""

from __future__ import annotations

import csv
from functools import lru_cache

from ava.paths import bundled

# The Ad Library names D.C. "Washington, District of Columbia"; the census table says
# "District of Columbia". Aliases map API spellings onto census names.
REGION_ALIASES = {"Washington, District of Columbia": "District of Columbia"}


@lru_cache(maxsize=1)
def us_state_population() -> dict[str, int]:
    """State name -> resident population on 1 April 2020 (50 states + D.C.)."""
    with bundled("census", "us_states_2020.csv").open(encoding="utf-8") as fh:
        return {row["state"]: int(row["population"]) for row in csv.DictReader(fh)}


def us_state(region: str) -> str | None:
    """The census name of an Ad Library region if it is a US state or D.C., else None."""
    name = REGION_ALIASES.get(region, region)
    return name if name in us_state_population() else None
