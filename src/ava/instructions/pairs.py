"""Pair mining for transsuasion (TS-*) and transcreation (TC-*), blocked by brand.

Cost stays linear in the number of ads: identical bodies are embedded once; within a brand the
unique bodies are cut (in a fixed hash order) into blocks of at most ``block_size`` and compared
only inside a block, so similarity work is O(n * block_size); each body pair expands to at most
``max_ads_per_body``^2 ad pairs; and each subtask keeps at most ``max_pairs_per_brand`` pairs per
brand (the ones with the smallest pair hash: a seeded, uniform, reproducible choice).
"""

from __future__ import annotations

import hashlib
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
from rapidfuzz.distance import Levenshtein

from ava.contracts.ads import Ad
from ava.contracts.instructions import InstructionSample
from ava.instructions.samples import make_sample
from ava.instructions.templates import Templates


@dataclass(frozen=True)
class PairConfig:
    similarity: float = 0.7
    min_word_edits: int = 15
    """Pairs need a word-level edit distance strictly greater than this."""
    tc_region_rank_gap: int = 3
    block_size: int = 256
    max_ads_per_body: int = 8
    max_pairs_per_brand: int = 1000
    embed_max_tokens: int = 128
    """Word pieces embedded per body (the model allows 256); an ad's opening carries its theme,
    and long bodies (EU web-novel ads run to thousands of words) would otherwise dominate the cost."""
    embed_backend: str = "onnx"
    """``onnx`` (default), ``torch`` (the reference) or ``onnx-int8`` (faster, moves similarities):
    see ``ava.instructions.embed``."""
    seed: int = 0


def _h(*parts: str) -> str:
    return hashlib.sha1("|".join(parts).encode()).hexdigest()


def text_key(text: str) -> str:
    return _h(text)


def similar_body_pairs(
    keys: list[str], vecs: np.ndarray, tokens: dict[str, list[str]], cfg: PairConfig, counts: Counter[str]
) -> list[tuple[str, str]]:
    """Body pairs (by text key) of one brand: cosine > threshold and word edits > minimum."""
    order = sorted(range(len(keys)), key=lambda i: _h(str(cfg.seed), keys[i]))
    found: list[tuple[str, str]] = []
    for start in range(0, len(order), cfg.block_size):
        block = order[start : start + cfg.block_size]
        sims = np.round(vecs[block] @ vecs[block].T, 4)
        counts["body_pairs_compared"] += len(block) * (len(block) - 1) // 2
        rows, cols = np.nonzero(np.triu(sims > cfg.similarity, k=1))
        counts["body_pairs_similar"] += len(rows)
        for i, j in zip(rows.tolist(), cols.tolist(), strict=True):
            a, b = keys[block[i]], keys[block[j]]
            ta, tb = tokens[a], tokens[b]
            if abs(len(ta) - len(tb)) <= cfg.min_word_edits and Levenshtein.distance(ta, tb) <= cfg.min_word_edits:
                continue
            found.append((a, b) if a < b else (b, a))
    counts["body_pairs_kept"] += len(found)
    return sorted(found)


def _demo(ad: Ad) -> tuple[str, str] | None:
    s = ad.signals
    return (s.best_gender, s.best_age) if s.best_gender and s.best_age else None


def _rank(ad: Ad, region: str) -> int:
    """Competition rank ("min" for ties): states without delivery all share the rank after the last one."""
    ranking = ad.signals.region_ranking
    return ranking.index(region) if region in ranking else len(ranking)


def pair_tasks(x: Ad, y: Ad, gap: int) -> list[tuple[str, str, str]]:
    """Subtasks for which (x -> y) is a valid ordered pair: (task, source audience, target audience).

    TS: x is the weaker ad for the same audience; TC: the audience y is best for is not x's best
    (age, gender) or ranks ``gap``+ positions lower in x (regions).
    """
    sx, sy, rx, ry = x.signals, y.signals, x.record, y.record
    out: list[tuple[str, str, str]] = []
    demo = _demo(x)
    if demo and demo == _demo(y):
        if rx.spend and ry.spend and rx.spend.lower < ry.spend.lower:
            out.append(("TS-B", "demographic", "demographic"))
        if (rx.spend and ry.spend and rx.spend == ry.spend and rx.impressions and ry.impressions
                and rx.impressions.lower < ry.impressions.lower):
            out.append(("TS-E", "demographic", "demographic"))
    if sx.best_age and sx.best_age == sy.best_age and sx.age_shares[sx.best_age] < sy.age_shares[sy.best_age]:
        out.append(("TS-A", sx.best_age, sy.best_age))
    if (sx.best_gender and sx.best_gender == sy.best_gender
            and sx.gender_shares[sx.best_gender] < sy.gender_shares[sy.best_gender]):
        out.append(("TS-G", sx.best_gender, sy.best_gender))
    if sx.region_ranking and sy.region_ranking:
        top = sy.region_ranking[0]
        if sx.region_ranking[0] == top and sx.region_shares[top] < sy.region_shares[top]:
            out.append(("TS-R", top, top))
        if _rank(x, top) - 0 >= gap:
            out.append(("TC-R", sx.region_ranking[0], top))
    if sx.best_age and sy.best_age and sx.best_age != sy.best_age:
        out.append(("TC-A", sx.best_age, sy.best_age))
    if sx.best_gender and sy.best_gender and sx.best_gender != sy.best_gender:
        out.append(("TC-G", sx.best_gender, sy.best_gender))
    return out


def _audience(t: Templates, task: str, value: str, ad: Ad) -> str:
    dim = task.split("-")[1]
    if dim in ("B", "E"):
        return t.audience["demographic"].format(gender=ad.signals.best_gender, age=ad.signals.best_age)
    key = {"A": "age", "G": "gender", "R": "region"}[dim]
    return t.audience[dim].format(**{key: value})


def render_pair(t: Templates, task: str, x: Ad, y: Ad, src_aud: str, tgt_aud: str, split: str) -> InstructionSample:
    spec = t.tasks[task]
    brand = x.record.page_name
    ids = (x.record.ad_id, y.record.ad_id)
    response = spec["response"].format(title_clause=t.title_clause(y), body=y.signals.text)
    if task.startswith("TS"):
        audience = _audience(t, task, tgt_aud, y)
        lines = [
            spec["instruction"].format(brand=brand, audience=audience),
            spec["current"].format(title_clause=t.title_clause(x), body=x.signals.text),
        ]
    else:
        source, target = _audience(t, task, src_aud, x), _audience(t, task, tgt_aud, y)
        lines = [
            spec["instruction"].format(brand=brand, source_audience=source, target_audience=target),
            spec["source"].format(source_audience=source, title_clause=t.title_clause(x), body=x.signals.text),
            spec["ask"].format(target_audience=target),
        ]
    return make_sample(t, task, split, x.record.advertiser, ids, lines, response, source_text=x.signals.text)


def mine_brand(
    t: Templates, ads: list[Ad], split: str, vectors: dict[str, np.ndarray], cfg: PairConfig, counts: Counter[str]
) -> list[InstructionSample]:
    """All TS/TC samples of one brand's ads (all in one split)."""
    by_text: dict[str, list[Ad]] = defaultdict(list)
    for ad in ads:
        by_text[text_key(ad.signals.text)].append(ad)
    keys = sorted(by_text)
    counts["naive_ad_pairs"] += len(ads) * (len(ads) - 1) // 2  # what an all-pairs miner would compare
    if len(keys) < 2:
        counts["brands_single_text"] += 1
        return []
    tokens = {k: by_text[k][0].signals.text.lower().split() for k in keys}
    vecs = np.stack([vectors[k] for k in keys])
    candidates: dict[str, list[tuple[str, Ad, Ad, str, str]]] = defaultdict(list)
    sides: dict[str, list[Ad]] = {}  # each body's ads for pairing, chosen once (a body is in many pairs)
    for a, b in similar_body_pairs(keys, vecs, tokens, cfg, counts):
        for k in (a, b):
            if k not in sides:
                sides[k] = sorted(by_text[k], key=lambda ad: _h(str(cfg.seed), ad.record.ad_id))[: cfg.max_ads_per_body]
        for u in sides[a]:
            for v in sides[b]:
                counts["ad_pairs_checked"] += 1
                for x, y in ((u, v), (v, u)):
                    for task, src, tgt in pair_tasks(x, y, cfg.tc_region_rank_gap):
                        key = _h(str(cfg.seed), task, x.record.ad_id, y.record.ad_id)
                        candidates[task].append((key, x, y, src, tgt))
    out: list[InstructionSample] = []
    for task in sorted(candidates):
        chosen = sorted(candidates[task], key=lambda c: c[0])
        counts[f"{task}:candidates"] += len(chosen)
        if len(chosen) > cfg.max_pairs_per_brand:
            counts[f"{task}:over_brand_cap"] += len(chosen) - cfg.max_pairs_per_brand
            chosen = chosen[: cfg.max_pairs_per_brand]
        out.extend(render_pair(t, task, x, y, src, tgt, split) for _, x, y, src, tgt in chosen)
    return out


def unique_texts(ads: Iterable[Ad]) -> dict[str, str]:
    """Text key -> text, for embedding each distinct body once."""
    return {text_key(ad.signals.text): ad.signals.text for ad in ads}
