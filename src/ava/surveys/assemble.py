"""Turn per-wave tallies into benchmark questions (``SurveyQuestion``) for either benchmark."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ava.contracts.surveys import GroupDistribution, SurveyQuestion
from ava.surveys.curated import OQAQuestion, WaveDetails, topic_key
from ava.surveys.questions import base_code, wave_of_column
from ava.surveys.rules import question_rules
from ava.surveys.wave import RawQuestion

OQA_TEXT, XL_TEXT, SPSS_TEXT = "opinionqa-info", "opinionqa-xl-json", "spss-label"


@dataclass(frozen=True)
class Context:
    """Everything about a wave that every question of it shares."""

    wave: str
    weighted: bool
    details: WaveDetails | None
    fallback_date: str | None
    group_keys: tuple[tuple[str, str], ...]


def _groups(raw: RawQuestion, subst: list[int], refusal: list[int], keys) -> tuple[GroupDistribution, ...]:
    """Distributions, refusal rates and counts of all groups at once (vectorised over groups)."""
    counts = raw.counts[:, subst + refusal]
    w_sub = raw.wsums[:, subst]
    tot_sub = w_sub.sum(axis=1)
    w_ref = raw.wsums[:, refusal].sum(axis=1) if refusal else np.zeros(len(keys))
    total = tot_sub + w_ref
    has_sub, has_any = tot_sub > 0, total > 0
    dist = np.divide(w_sub, tot_sub[:, None], out=np.zeros_like(w_sub), where=has_sub[:, None]).tolist()
    refusal_rate = np.divide(w_ref, total, out=np.zeros_like(total), where=has_any).tolist()
    n, cnt, tot = counts.sum(axis=1).tolist(), counts.tolist(), total.tolist()
    return tuple(
        GroupDistribution(attribute=att, group=grp, distribution=tuple(dist[g]) if has_sub[g] else (),
                          refusal_rate=refusal_rate[g], n=n[g], weighted_n=tot[g], counts=tuple(cnt[g]))
        for g, (att, grp) in enumerate(keys)
    )


def _meta(ctx: Context) -> tuple[str | None, str | None]:
    topic = ctx.details.topic if ctx.details else None
    date = (ctx.details.date if ctx.details else None) or ctx.fallback_date
    return topic, date


def from_opinionqa(raw: RawQuestion, row: OQAQuestion, ctx: Context, steer: frozenset[tuple[str, str]],
                   topics: dict, key: str | None = None) -> tuple[SurveyQuestion | None, str | None]:
    """OpinionQA's question exactly: its text, references and ordinals; codes via its option_mapping."""
    by_label: dict[str, float] = {}
    for code, label in row.option_mapping.items():
        by_label.setdefault(label, code)
    index = {c: i for i, c in enumerate(raw.codes)}
    cols = []
    for ref in row.references:
        code = by_label.get(ref)
        if code is None or code not in index:
            return None, f"{row.key}: reference option {ref!r} has no code in the .sav value labels"
        cols.append(index[code])
    k = len(row.ordinals)
    topic, date = _meta(ctx)
    tags = ["opinionqa"]
    if (row.key, row.question) in steer:
        tags.append("steer500")
    if len(set(row.ordinals)) <= 1:
        tags.append("degenerate-ordinal")
    if not ctx.weighted:
        tags.append("unweighted")
    found = topics.get(topic_key(row.question, row.references))
    if found:
        tags += [f"cg:{t}" for t in found.get("cg", [])] + [f"fg:{t}" for t in found.get("fg", [])]
    q = SurveyQuestion(
        key=key or row.key, wave=ctx.wave, text=row.question, options=row.substantive,
        ordinals=row.ordinals, refusal_options=row.non_substantive, text_source=OQA_TEXT,
        ordinal_source="curated", weighted=ctx.weighted,
        groups=_groups(raw, cols[:k], cols[k:], ctx.group_keys),
        topic=topic, date=date, tags=tuple(tags), column=raw.column,
    )
    return q, None


def from_raw(raw: RawQuestion, ctx: Context, xl_entry: dict | None) -> tuple[SurveyQuestion | None, str | None]:
    """An OpinionQA-XL question from value labels: substantive options by rule, positions 1..N."""
    subst = [i for i, s in enumerate(raw.substantive) if s]
    refusal = [i for i, s in enumerate(raw.substantive) if not s]
    groups = _groups(raw, subst, refusal, ctx.group_keys)
    if not groups[0].distribution:
        return None, "no substantive answer in the whole sample"
    text, source = raw.text, SPSS_TEXT
    if xl_entry and str(xl_entry.get("question", "")).strip():
        text, source = str(xl_entry["question"]).strip(), XL_TEXT
    topic, date = _meta(ctx)
    tags = ["opinionqa-xl"] + ([] if ctx.weighted else ["unweighted"])
    if question_rules().is_select_all(raw.labels):
        tags.append("select-all")
    # Diary files name columns without a wave suffix (Q3_6_2): the key gets one, to stay unique.
    key = raw.column if wave_of_column(raw.column) else f"{raw.column}_{ctx.wave}"
    q = SurveyQuestion(
        key=key, wave=ctx.wave, text=text,
        options=tuple(raw.labels[i] for i in subst),
        ordinals=tuple(float(i) for i in range(1, len(subst) + 1)),
        refusal_options=tuple(raw.labels[i] for i in refusal),
        text_source=source, ordinal_source="codes", weighted=ctx.weighted, groups=groups,
        topic=topic, date=date, tags=tuple(tags), column=raw.column,
    )
    return q, None


def xl_from_opinionqa(q: SurveyQuestion) -> SurveyQuestion:
    """An OpinionQA question as it appears inside OpinionQA-XL (curated text and ordinals kept)."""
    from dataclasses import replace

    tags = tuple(t for t in q.tags if t not in {"opinionqa"})
    return replace(q, tags=("opinionqa-xl", "opinionqa", *[t for t in tags if t != "opinionqa-xl"]))


def xl_entry_for(xl: dict, wave: str, column: str) -> dict | None:
    entries = xl.get(wave) or {}
    return entries.get(base_code(column)) or entries.get(column)
