"""The four stages of ``ava build``, as functions of a :class:`BuildJob` and a shard rank.

1. :func:`ingest_shard`  read -> normalise/validate -> clean -> signals; an :class:`AdKey` per ad.
2. :func:`make_plan`     (global, cheap) de-duplicate identical ads, assign advertisers to splits.
3. :func:`samples_shard` TAP samples, written as output part ``rank``; ads routed to brand shards.
4. :func:`pairs_shard`   per brand shard: distinct bodies embedded once; KeyBERT keywords and TAG
   samples; TS/TC pairs mined within brands; written as output part ``shards + rank``.

A shard function reads only its inputs under ``_work`` (:mod:`ava.instructions.workfiles`) and
writes only its own files, and returns its counts (kept in its completion marker): shards run in
any order, on any executor, and a shard re-run after a crash writes the same bytes.
"""

from __future__ import annotations

import hashlib
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from ava.ads.dedup import Loser, resolve_duplicates
from ava.ads.keywords import frequency_keywords, keybert_keywords
from ava.ads.limits import AdLimits, default_limits
from ava.ads.readers import InputFile
from ava.ads.redact import redact
from ava.contracts.ads import Ad
from ava.contracts.instructions import SPLITS, InstructionSample
from ava.instructions.dataset import DatasetLayout, write_parquet
from ava.instructions.embed import DIM, Embedder, embed_cached, make_embedder
from ava.instructions.pairs import PairConfig, mine_brand, text_key, unique_texts
from ava.instructions.pipeline import run_steps
from ava.instructions.samples import ad_samples
from ava.instructions.steps import Clean, Normalise, ReadAds, Signals
from ava.instructions.templates import load_templates
from ava.instructions.workfiles import AdKey, WorkDir, dump, dump_many, load, load_one, raw_sizes


@dataclass(frozen=True)
class BuildJob:
    """Everything a shard function needs; picklable, so it ships to processes and Ray tasks."""

    inputs: tuple[InputFile, ...]
    out: Path
    shards: int
    seed: int = 0
    heldout_fraction: float = 0.1
    temporal_fraction: float = 0.1
    cutoff: str | None = None
    pair: PairConfig = field(default_factory=PairConfig)
    templates: str | None = None
    limits: AdLimits = field(default_factory=default_limits)
    keywords: str = "keybert"
    embed_cache: bool = True
    """Read and add vectors in the user's embedding cache (not part of the build's identity: a
    vector is a pure function of its text, so cached and computed vectors are the same bytes)."""

    @property
    def layout(self) -> DatasetLayout:
        return DatasetLayout(self.out)

    @property
    def work(self) -> WorkDir:
        return WorkDir(self.layout.work)


def _h(text: str) -> int:
    """A seeded choice that depends on nothing but ``text``: 60 bits of its SHA-1."""
    return int(hashlib.sha1(text.encode()).hexdigest()[:15], 16)


# ---------------------------------------------------------------- stage 1: ingest


def ingest_shard(job: BuildJob, rank: int) -> dict[str, Any]:
    """Read shard ``rank`` of the inputs into usable ads (and their keys); counts per step and file."""
    normalise = Normalise(limits=job.limits)
    steps = [ReadAds(list(job.inputs)), normalise, Clean(), Signals()]
    stream, stats = run_steps(steps, [], rank, job.shards)
    ads: list[Ad] = list(stream)
    file_index = {inp.name: i for i, inp in enumerate(job.inputs)}
    keys = [AdKey(a.signals.content_key, a.record.advertiser, a.record.start_date,
                  file_index[a.record.source.file], a.record.source.line, a.record.ad_id) for a in ads]
    dump(job.work.ads(rank), ads)
    dump(job.work.keys(rank), keys)
    files: dict[str, dict[str, Any]] = {}
    for step in steps:
        for name, counter in stats[step.name].by_file.items():
            entry = files.setdefault(name, {"read": 0, "kept": 0, "skipped": {}, "dropped": {}})
            for reason, n in counter.items():
                if reason == "read":
                    entry["read"] += n
                else:
                    bucket = entry["skipped" if step.name == "normalise" else "dropped"]
                    bucket[reason] = bucket.get(reason, 0) + n
    for ad in ads:
        files.setdefault(ad.record.source.file, {"read": 0, "kept": 0, "skipped": {}, "dropped": {}})["kept"] += 1
    return {"steps": {k: v.to_dict() for k, v in stats.items()}, "files": files, "errors": normalise.errors}


# ---------------------------------------------------------------- stage 2: plan


def make_plan(job: BuildJob) -> dict[str, Any]:
    """De-duplicate (the first copy in input order wins) and assign every advertiser one split.

    Held-out advertisers: a seeded hash of the page id below ``heldout_fraction``. Temporal
    hold-out: advertisers whose first ad starts on/after the cut-off (by default the date above
    which ``temporal_fraction`` of the ads start). Ads of train advertisers on/after the cut-off
    are dropped, so no advertiser is in two splits and train never sees post-cut-off ads.
    """
    keys: list[list[AdKey]] = [load(job.work.keys(r)) for r in range(job.shards)]
    # ad-id conflicts and exact/content duplicates: the policy is ava.ads.dedup's
    losers = resolve_duplicates((k.ad_id, k.content_key, k.position) for shard in keys for k in shard)
    first: dict[str, str] = {}
    dates: list[str] = []
    for shard in keys:
        for k in shard:
            if k.position not in losers:
                dates.append(k.start_date)
                first[k.advertiser] = min(first.get(k.advertiser, k.start_date), k.start_date)
    dates.sort()
    cutoff = job.cutoff
    if cutoff is None and job.temporal_fraction > 0 and dates:
        cutoff = dates[min(len(dates) - 1, int(len(dates) * (1 - job.temporal_fraction)))]
    splits = _assign_splits(job, first, cutoff)
    drops: Counter[str] = Counter()
    for rank, shard in enumerate(keys):
        reasons = [_drop_reason(k, losers, splits, cutoff) for k in shard]
        drops.update(r for r in reasons if r)
        dump(job.work.drops(rank), reasons)
    dump(job.work.splits, splits)
    advertisers = Counter(splits.values())
    return {"cutoff": cutoff, "dropped": dict(sorted(drops.items())),
            "advertisers": {s: advertisers.get(s, 0) for s in SPLITS}, "skipped": _id_conflicts(job, keys, losers)}


def _assign_splits(job: BuildJob, first: dict[str, str], cutoff: str | None) -> dict[str, str]:
    """Each advertiser's split, from a seeded hash of its id and the date of its first ad."""
    splits: dict[str, str] = {}
    for adv in sorted(first):
        if _h(f"{job.seed}|advertiser|{adv}") / 16**15 < job.heldout_fraction:
            splits[adv] = "test_advertiser"
        elif cutoff is not None and first[adv] >= cutoff:
            splits[adv] = "test_temporal"
        else:
            splits[adv] = "train"
    return splits


def _drop_reason(key: AdKey, losers: dict[tuple[int, int], Loser], splits: dict[str, str],
                 cutoff: str | None) -> str | None:
    """Why the plan drops an ad (a duplicate, or a train advertiser's ad after the cut-off), or None."""
    if key.position in losers:
        return losers[key.position].reason
    if splits[key.advertiser] == "train" and cutoff is not None and key.start_date >= cutoff:
        return "after_temporal_cutoff"
    return None


def _id_conflicts(job: BuildJob, keys: list[list[AdKey]], losers: dict[tuple[int, int], Loser]
                  ) -> list[dict[str, Any]]:
    """skipped.json entries for ads whose id an earlier ad with other content already holds."""
    out = []
    for shard in keys:
        for k in shard:
            lost = losers.get(k.position)
            if lost is not None and lost.reason == "duplicate_id":
                kept = f"{job.inputs[lost.kept[0]].name}:{lost.kept[1]}"
                out.append({"file": job.inputs[k.file].name, "line": k.line, "reason": "duplicate_id",
                            "message": redact(f"duplicate ad id with different content: id {k.ad_id} is already "
                                              f"the ad at {kept} (kept)")})
    return out


# ---------------------------------------------------------------- stage 3: per-ad samples


def samples_shard(job: BuildJob, rank: int) -> dict[str, Any]:
    """TAP samples of ingest shard ``rank``'s kept ads, and those ads routed to their brand shards."""
    t = load_templates(job.templates)
    ads: list[Ad] = load(job.work.ads(rank))
    reasons = load(job.work.drops(rank))
    splits = load(job.work.splits)
    not_made: Counter[str] = Counter()
    samples: list[InstructionSample] = []
    routes: list[list[tuple[str, Ad]]] = [[] for _ in range(job.shards)]
    ads_per_split: Counter[str] = Counter()
    for ad, reason in zip(ads, reasons, strict=True):
        if reason:
            continue
        split = splits[ad.record.advertiser]
        ads_per_split[split] += 1
        samples.extend(ad_samples(t, ad, split, not_made, families=("TAP",)))
        routes[_h(f"{job.seed}|brand|{ad.record.advertiser}") % job.shards].append((split, ad))
    nbytes = write_parts(job, rank, samples)
    dump_many(job.work.route(rank), routes)
    return {"ads": dict(ads_per_split), "samples": _count(samples), "not_made": _nested(not_made),
            "arrow_bytes": nbytes}


def _count(samples: list[InstructionSample]) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = defaultdict(dict)
    for (split, task), n in Counter((s.split, s.task) for s in samples).items():
        out[split][task] = n
    return dict(out)


def _nested(counter: Counter[str]) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = defaultdict(dict)
    for key, n in counter.items():
        task, reason = key.split(":", 1)
        out[task][reason] = n
    return dict(out)


def write_parts(job: BuildJob, part: int, samples: list[InstructionSample]) -> dict[str, int]:
    """Output part ``part`` (of 2 x shards) of every split, rows sorted by (task, id); Arrow bytes per split."""
    nbytes = {}
    for split in SPLITS:
        rows = sorted((s for s in samples if s.split == split), key=lambda s: (s.task, s.id))
        nbytes[split] = write_parquet(job.layout.part(split, part, 2 * job.shards), rows)
    return nbytes


# ---------------------------------------------------------------- stage 4: pairs


_EMBEDDERS: dict[tuple[str, int], Embedder] = {}


def _embedder(job: BuildJob) -> Embedder:
    """One embedder per process and setting: shards of a stage reuse the loaded model."""
    key = (job.pair.embed_backend, job.pair.embed_max_tokens)
    if key not in _EMBEDDERS:
        _EMBEDDERS[key] = make_embedder(*key)
    return _EMBEDDERS[key]


def _embed(job: BuildJob, texts: dict[str, str], timing: dict[str, float], what: str) -> dict[str, np.ndarray]:
    """Vectors by text key: from the user's embedding cache where present (``embed_cache``), else computed.

    Timings and computed counts go to ``timing`` (never the manifest: a warm cache must not change
    the outputs' bytes)."""
    start, cpu = time.perf_counter(), time.process_time()
    vectors, computed = embed_cached(_embedder(job), texts, cache=job.embed_cache)
    timing[f"{what}_s"] = timing.get(f"{what}_s", 0.0) + time.perf_counter() - start
    timing[f"{what}_cpu_s"] = timing.get(f"{what}_cpu_s", 0.0) + time.process_time() - cpu
    timing[f"{what}_computed"] = timing.get(f"{what}_computed", 0) + computed
    timing[f"{what}_texts"] = timing.get(f"{what}_texts", 0) + len(texts)
    return vectors


def _keywords(job: BuildJob, texts: dict[str, str], vectors: dict[str, np.ndarray],
              timing: dict[str, float]) -> dict[str, tuple[str, ...]]:
    """Keywords per distinct body: KeyBERT over the bodies' vectors (candidate words embedded once
    each, through the same cache), or by frequency."""
    keys = sorted(texts)
    start, cpu = time.perf_counter(), time.process_time()
    if job.keywords == "frequency":
        found = [frequency_keywords(texts[k]) for k in keys]
    else:
        def embed_words(words: list[str]) -> np.ndarray:
            by_key = {text_key(w): w for w in words}
            vecs = _embed(job, by_key, timing, "words")
            return np.stack([vecs[text_key(w)] for w in words]) if words else np.zeros((0, DIM), np.float32)

        doc = np.stack([vectors[k] for k in keys]) if keys else np.zeros((0, DIM), np.float32)
        found = keybert_keywords([texts[k] for k in keys], doc, embed_words)
    timing["keywords_s"] = time.perf_counter() - start
    timing["keywords_cpu_s"] = time.process_time() - cpu
    return dict(zip(keys, found, strict=True))


def routed_bytes(job: BuildJob) -> Callable[[int], float]:
    """A pairs shard's expected work: the bytes of ads routed to it (0 once its routes are gone)."""
    routes = [job.work.route(source) for source in range(job.shards)]
    sizes = [raw_sizes(p) for p in routes if p.exists()]
    return lambda rank: sum(s[rank] for s in sizes)


def _routed_brands(job: BuildJob, rank: int) -> tuple[dict[str, list[Ad]], dict[str, str]]:
    """The ads every samples shard routed to brand shard ``rank``, by brand, and each brand's split."""
    by_brand: dict[str, list[Ad]] = defaultdict(list)
    brand_split: dict[str, str] = {}
    for source in range(job.shards):
        for split, ad in load_one(job.work.route(source), rank):
            by_brand[ad.record.advertiser].append(ad)
            brand_split[ad.record.advertiser] = split
    return by_brand, brand_split


def pairs_shard(job: BuildJob, rank: int) -> dict[str, Any]:
    """One brand shard: embed its distinct bodies once, then keywords and TAG samples, then TS/TC pairs."""
    t = load_templates(job.templates)
    by_brand, brand_split = _routed_brands(job, rank)
    timing: dict[str, float] = {"embed_s": 0.0, "embed_texts": 0}
    counts: Counter[str] = Counter()
    not_made: Counter[str] = Counter()
    texts = unique_texts(ad for ads in by_brand.values() for ad in ads)
    counts["ads"] = sum(len(v) for v in by_brand.values())
    counts["distinct_texts"] = len(texts)
    vectors = _embed(job, texts, timing, "embed") if texts else {}
    keywords = _keywords(job, texts, vectors, timing)
    start, cpu = time.perf_counter(), time.process_time()
    samples: list[InstructionSample] = []
    for brand in sorted(by_brand):
        counts["brands"] += 1
        ads = [Ad(ad.record, replace(ad.signals, keywords=keywords[text_key(ad.signals.text)]))
               for ad in by_brand[brand]]
        for ad in ads:
            samples.extend(ad_samples(t, ad, brand_split[brand], not_made, families=("TAG",)))
        samples.extend(mine_brand(t, ads, brand_split[brand], vectors, job.pair, counts))
    timing["mine_s"], timing["mine_cpu_s"] = time.perf_counter() - start, time.process_time() - cpu
    nbytes = write_parts(job, job.shards + rank, samples)
    return {"pair_mining": dict(sorted(counts.items())), "samples": _count(samples), "not_made": _nested(not_made),
            "timing": timing, "arrow_bytes": nbytes}
