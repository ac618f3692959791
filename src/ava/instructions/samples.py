"""Per-ad subtasks: target audience prediction (TAP-*) and targeted ad generation (TAG-*)."""

from __future__ import annotations

import hashlib
from collections import Counter

from ava.contracts.ads import Ad
from ava.contracts.instructions import InstructionSample
from ava.instructions.templates import Templates

ANSWER = "Answer:"


def sample_id(task: str, ad_ids: tuple[str, ...], version: str) -> str:
    """Stable id: the same ads, task and template version always give the same id."""
    return hashlib.sha1(f"{task}|{'|'.join(ad_ids)}|{version}".encode()).hexdigest()[:20]


def make_sample(
    t: Templates, task: str, split: str, advertiser: str, ad_ids: tuple[str, ...], lines: list[str],
    response: str, label: str | None = None, source_text: str | None = None,
) -> InstructionSample:
    return InstructionSample(
        id=sample_id(task, ad_ids, t.version), task=task, family=task.split("-")[0], split=split,
        prompt="\n".join([*lines, ANSWER]), response=response, advertiser=advertiser, ad_ids=ad_ids,
        template_version=t.version, label=label, source_text=source_text,
    )


def _target(t: Templates, ad: Ad, dim: str) -> tuple[dict[str, str], str] | str:
    """The fields and normalised label of an ad's audience on ``dim``, or why it has none."""
    s = ad.signals
    if dim == "G":
        if not s.best_gender:
            return "no_gender"
        return {"gender": s.best_gender, "gender_title": s.best_gender.title()}, s.best_gender
    if dim == "A":
        return ({"age": s.best_age}, s.best_age) if s.best_age else "no_age"
    if dim == "R":
        if not s.region_ranking:
            return "no_us_regions"
        top = s.top_regions
        return {"regions": ", ".join(top), "region": ", ".join(top)}, "|".join(top)
    if dim == "B":
        if not ad.record.spend:
            return "no_spend"
        return {"spend": t.spend(ad)}, ad.record.spend.bucket
    if not ad.record.impressions:
        return "no_impressions"
    return {"impressions": t.impressions(ad)}, ad.record.impressions.bucket


def ad_samples(
    t: Templates, ad: Ad, split: str, dropped: Counter[str], families: tuple[str, ...] = ("TAP", "TAG")
) -> list[InstructionSample]:
    """TAP and/or TAG samples of one ad; each subtask it cannot make is counted in ``dropped``.

    The build makes TAP samples per ingest shard and TAG samples where the keywords are extracted
    (next to pair mining, which embeds the bodies that KeyBERT reuses).
    """
    out: list[InstructionSample] = []
    r, s = ad.record, ad.signals
    ids = (r.ad_id,)
    where = ", ".join(s.top_regions) or r.market
    for dim in "GARBI":
        found = _target(t, ad, dim)
        if isinstance(found, str):
            for family in families:
                dropped[f"{family}-{dim}:{found}"] += 1
            continue
        fields, label = found
        if "TAG" in families:
            out.extend(_tag(t, ad, split, dim, fields, where, dropped))
        if "TAP" not in families:
            continue
        spec = t.tasks[f"TAP-{dim}"]
        instruction = spec["instruction"]
        if dim in "GA" and not s.top_regions:
            instruction = spec["instruction_no_regions"]
        lines = [
            instruction.format(regions=", ".join(s.top_regions)),
            *t.context_lines(ad, spec["hide"]),
            t.content(s.text),
            spec["question"],
        ]
        out.append(make_sample(t, f"TAP-{dim}", split, r.advertiser, ids, lines,
                               spec["response"].format(**fields), label=label))
    return out


def _tag(
    t: Templates, ad: Ad, split: str, dim: str, fields: dict[str, str], where: str, dropped: Counter[str]
) -> list[InstructionSample]:
    s = ad.signals
    if not s.keywords:
        dropped[f"TAG-{dim}:no_keywords"] += 1
        return []
    spec = t.tasks[f"TAG-{dim}"]
    audience = t.audience[dim].format(**fields)
    lines = [
        spec["instruction" if where else "instruction_no_where"].format(where=where, audience=audience),
        *t.context_lines(ad, spec["hide"]),
        t.context["keywords"].format(keywords=", ".join(s.keywords)),
        spec["ask"].format(audience=audience),
    ]
    return [make_sample(t, f"TAG-{dim}", split, ad.record.advertiser, (ad.record.ad_id,), lines,
                        spec["response"].format(body=s.text))]
