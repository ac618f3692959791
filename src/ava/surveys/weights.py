"""Pick a wave's main survey weight by rule (and say why)."""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class WeightChoice:
    column: str | None
    rule: str
    candidates: tuple[str, ...]


def choose_weight(columns: list[str], wave: str) -> WeightChoice:
    """The main cross-sectional weight of ``wave``.

    1. ``WEIGHT_<wave>`` exactly (e.g. WEIGHT_W26) — Pew's main weight;
    2. else the only weight column naming this wave and no other (WEIGHT_W14_SOCIALMEDIA,
       WEIGHT_FORM_W16); longitudinal weights such as WEIGHT_W25W26 or WEIGHT_W53_W54 cover other
       samples and are never used;
    3. else a column named exactly ``WEIGHT``;
    4. else none: the wave is built unweighted and every question is flagged.
    Other weight columns (diary, form, longitudinal) are reported but never used.
    """
    candidates = tuple(c for c in columns if "WEIGHT" in c.upper())
    upper = {c.upper(): c for c in candidates}
    main = f"WEIGHT_{wave}".upper()
    if main in upper:
        return WeightChoice(upper[main], f"main weight {upper[main]}", candidates)
    tag = re.compile(rf"(^|_){re.escape(wave.upper())}(_|$)")
    variants = [c for u, c in upper.items()
                if tag.search(u) and len(re.findall(r"W\d+(?:\.\d+)?", u.replace("WEIGHT", ""))) == 1]
    if len(variants) == 1:
        return WeightChoice(variants[0], f"only weight of this wave alone: {variants[0]} (no {main})", candidates)
    if "WEIGHT" in upper:
        return WeightChoice(upper["WEIGHT"], "column named WEIGHT", candidates)
    why = f"no {main}" + (f"; other weight columns not used: {', '.join(candidates)}" if candidates else
                          "; no weight columns")
    return WeightChoice(None, f"UNWEIGHTED: {why}", candidates)
