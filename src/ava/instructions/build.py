"""``ava build``: ad files -> the sharded AVA instruction dataset, resumable, on either engine.

Stages (each shard leaves a marker under ``OUT/_work/<stage>/``; a re-run skips finished shards):

1. ``ingest``  (per shard): read -> normalise/validate -> clean -> signals; keys for the plan.
2. ``plan``    (global, cheap): de-duplicate identical ads, assign advertisers to splits.
3. ``samples`` (per shard): TAP samples, written as output part ``rank``; route ads to brand shards.
4. ``pairs``   (per brand shard): embed distinct bodies once; KeyBERT keywords and TAG samples;
   TS/TC pairs mined within brands; all written as output part ``shards + rank``.
Then ``skipped.json``, the dataset card ``README.md``, ``manifest.json`` (the data's description) and
the JSONL export when asked. Whether a build is finished is said by its run record ``OUT/run.json``
(:mod:`ava.runs`: ``running`` until all of this is written, then ``complete``). Each stage writes its
samples straight into their final parts (``data/<split>-NNNNN-of-NNNNN.parquet``, 2 x shards parts
per split): no intermediate copy of the samples is written and read back.

``_work/`` holds only what resumption needs: each stage's inputs are deleted once every shard of
the stage that reads them is done, and the whole folder goes when the build finishes (unless
``keep_work``). The shard count fixes the output layout, so it is part of the build's binding:
resuming with a different ``--shards`` (or other inputs/options) is refused, naming what differs.
"""

from __future__ import annotations

import hashlib
import json
import pickle
import shutil
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import IO, Any

import numpy as np
import pyarrow as pa

from ava.ads.dedup import resolve_duplicates
from ava.ads.keywords import METHODS, frequency_keywords, keybert_keywords
from ava.ads.limits import AdLimits, default_limits
from ava.ads.readers import InputFile, cut_jsonl, discover
from ava.ads.redact import redact
from ava.contracts.ads import Ad
from ava.contracts.instructions import SPLITS, InstructionSample
from ava.instructions.card import write_card
from ava.instructions.cluster import OutputNotShared
from ava.instructions.embed import Embedder, embed_cached, make_embedder
from ava.instructions.output import compact_parts, part_path, write_jsonl, write_parquet
from ava.instructions.pairs import PairConfig, mine_brand, text_key, unique_texts
from ava.instructions.pipeline import Executor, make_executor, merge_counts, run_stage, run_steps
from ava.instructions.samples import ad_samples
from ava.instructions.steps import Clean, Normalise, ReadAds, Signals
from ava.instructions.templates import ALL_TASKS, load_templates
from ava.io import atomic_write, file_sha256, write_json
from ava.runs import Binding, Output, check_writable, start_run

WORK = "_work"
KIND = "instructions"
OWNED = (WORK, "data", "jsonl", "README.md", "skipped.json", "manifest.json")
"""What a build writes in OUT besides ``run.json``: found without a record it is refused, and
``--restart`` removes it."""


class NoUsableAds(ValueError):
    """Not one input record became a usable ad: there is nothing to build (the reasons are in skipped.json)."""


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
    def work(self) -> Path:
        return self.out / WORK


@dataclass
class BuildResult:
    manifest: dict[str, Any]
    stage_seconds: dict[str, float]
    timing: dict[str, float]


def _h(text: str) -> int:
    return int(hashlib.sha1(text.encode()).hexdigest()[:15], 16)


_ZSTD = pa.Codec("zstd", compression_level=3)


def _dump(path: Path, obj: Any) -> None:
    """An intermediate file between stages of one build (never an output), zstd-compressed.

    Pickle is the cheapest faithful round trip of the typed records, and only this build reads
    them; zstd (pyarrow's codec) cuts them ~5x for little CPU, which is most of ``_work``'s peak.
    """
    _dump_many(path, [obj])


def _load(path: Path) -> Any:
    return _load_one(path, 0)


def _dump_many(path: Path, objs: list[Any]) -> None:
    """Several objects in one file, each readable alone (``_load_one``): one route file per
    source shard instead of shards² small files."""
    blobs = [pickle.dumps(o, protocol=pickle.HIGHEST_PROTOCOL) for o in objs]
    packed = [_ZSTD.compress(b, asbytes=True) for b in blobs]
    header = json.dumps([[len(p), len(b)] for p, b in zip(packed, blobs, strict=True)]).encode()
    with atomic_write(path, "wb") as fh:
        fh.write(len(header).to_bytes(8, "little") + header)
        for p in packed:
            fh.write(p)


def _read_header(fh: IO[bytes]) -> list[list[int]]:
    """A ``_dump_many`` file's header: [packed, unpacked] bytes per object; leaves ``fh`` after it."""
    size = int.from_bytes(fh.read(8), "little")
    return json.loads(fh.read(size))


def _raw_sizes(path: Path) -> list[int]:
    """The unpacked size of each object in a ``_dump_many`` file, from its header alone."""
    with path.open("rb") as fh:
        return [raw for _packed, raw in _read_header(fh)]


def _load_one(path: Path, index: int) -> Any:
    with path.open("rb") as fh:
        sizes = _read_header(fh)
        fh.seek(sum(c for c, _ in sizes[:index]), 1)  # past the objects before ``index``
        packed, raw = sizes[index]
        return pickle.loads(_ZSTD.decompress(fh.read(packed), decompressed_size=raw, asbytes=True))


# ---------------------------------------------------------------- stage 1: ingest


def ingest_shard(job: BuildJob, rank: int) -> dict[str, Any]:
    normalise = Normalise(limits=job.limits)
    steps = [ReadAds(list(job.inputs)), normalise, Clean(), Signals()]
    stream, stats = run_steps(steps, [], rank, job.shards)
    ads: list[Ad] = list(stream)
    file_index = {inp.name: i for i, inp in enumerate(job.inputs)}
    keys = [[a.signals.content_key, a.record.advertiser, a.record.start_date,
             file_index[a.record.source.file], a.record.source.line, a.record.ad_id] for a in ads]
    _dump(job.work / "ads" / f"shard-{rank:05d}.pkl", ads)
    _dump(job.work / "keys" / f"shard-{rank:05d}.pkl", keys)
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
    keys = [_load(job.work / "keys" / f"shard-{r:05d}.pkl") for r in range(job.shards)]
    # ad-id conflicts and exact/content duplicates: the policy is ava.ads.dedup's
    losers = resolve_duplicates((k[5], k[0], (k[3], k[4])) for shard in keys for k in shard)
    first: dict[str, str] = {}
    dates: list[str] = []
    for shard in keys:
        for _ck, adv, date, fi, line, _id in shard:
            if (fi, line) not in losers:
                dates.append(date)
                first[adv] = min(first.get(adv, date), date)
    dates.sort()
    cutoff = job.cutoff
    if cutoff is None and job.temporal_fraction > 0 and dates:
        cutoff = dates[min(len(dates) - 1, int(len(dates) * (1 - job.temporal_fraction)))]
    splits: dict[str, str] = {}
    for adv in sorted(first):
        if _h(f"{job.seed}|advertiser|{adv}") / 16**15 < job.heldout_fraction:
            splits[adv] = "test_advertiser"
        elif cutoff is not None and first[adv] >= cutoff:
            splits[adv] = "test_temporal"
        else:
            splits[adv] = "train"
    drops: Counter[str] = Counter()
    for rank, shard in enumerate(keys):
        reasons: list[str | None] = []
        for _ck, adv, date, fi, line, _id in shard:
            reason = None
            if (fi, line) in losers:
                reason = losers[fi, line].reason
            elif splits[adv] == "train" and cutoff is not None and date >= cutoff:
                reason = "after_temporal_cutoff"
            reasons.append(reason)
            if reason:
                drops[reason] += 1
        _dump(job.work / "plan" / f"shard-{rank:05d}.pkl", reasons)
    _dump(job.work / "plan" / "splits.pkl", splits)
    advertisers = Counter(splits.values())
    return {"cutoff": cutoff, "dropped": dict(sorted(drops.items())),
            "advertisers": {s: advertisers.get(s, 0) for s in SPLITS}, "skipped": _id_conflicts(job, keys, losers)}


def _id_conflicts(job: BuildJob, keys: list[Any], losers: dict[tuple[int, int], Any]) -> list[dict[str, Any]]:
    """skipped.json entries for ads whose id an earlier ad with other content already holds."""
    out = []
    for shard in keys:
        for *_, fi, line, ad_id in shard:
            lost = losers.get((fi, line))
            if lost is not None and lost.reason == "duplicate_id":
                kept = f"{job.inputs[lost.kept[0]].name}:{lost.kept[1]}"
                out.append({"file": job.inputs[fi].name, "line": line, "reason": "duplicate_id", "message": redact(
                    f"duplicate ad id with different content: id {ad_id} is already the ad at {kept} (kept)")})
    return out


# ---------------------------------------------------------------- stage 3: per-ad samples


def samples_shard(job: BuildJob, rank: int) -> dict[str, Any]:
    t = load_templates(job.templates)
    ads: list[Ad] = _load(job.work / "ads" / f"shard-{rank:05d}.pkl")
    reasons = _load(job.work / "plan" / f"shard-{rank:05d}.pkl")
    splits = _load(job.work / "plan" / "splits.pkl")
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
    _dump_many(job.work / "route" / f"from-{rank:05d}.pkl", routes)
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
            return np.stack([vecs[text_key(w)] for w in words]) if words else np.zeros((0, 384), np.float32)

        doc = np.stack([vectors[k] for k in keys]) if keys else np.zeros((0, 384), np.float32)
        found = keybert_keywords([texts[k] for k in keys], doc, embed_words)
    timing["keywords_s"] = time.perf_counter() - start
    timing["keywords_cpu_s"] = time.process_time() - cpu
    return dict(zip(keys, found, strict=True))


def _routed_bytes(job: BuildJob) -> Callable[[int], float]:
    """A pairs shard's expected work: the bytes of ads routed to it (0 once its routes are gone)."""
    routes = [job.work / "route" / f"from-{source:05d}.pkl" for source in range(job.shards)]
    sizes = [_raw_sizes(p) for p in routes if p.exists()]
    return lambda rank: sum(s[rank] for s in sizes)


def pairs_shard(job: BuildJob, rank: int) -> dict[str, Any]:
    """One brand shard: embed its distinct bodies once, then keywords and TAG samples, then TS/TC pairs."""
    t = load_templates(job.templates)
    by_brand: dict[str, list[Ad]] = defaultdict(list)
    brand_split: dict[str, str] = {}
    for source in range(job.shards):
        for split, ad in _load_one(job.work / "route" / f"from-{source:05d}.pkl", rank):
            by_brand[ad.record.advertiser].append(ad)
            brand_split[ad.record.advertiser] = split
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


def write_parts(job: BuildJob, part: int, samples: list[InstructionSample]) -> dict[str, int]:
    """Output part ``part`` (of 2 x shards) of every split, rows sorted by (task, id); Arrow bytes per split."""
    nbytes = {}
    for split in SPLITS:
        rows = sorted((s for s in samples if s.split == split), key=lambda s: (s.task, s.id))
        nbytes[split] = write_parquet(part_path(job.out, split, part, 2 * job.shards), rows)
    return nbytes


# ---------------------------------------------------------------- driver


def _config(job: BuildJob, hashes: list[dict[str, Any]]) -> dict[str, Any]:
    t = load_templates(job.templates)
    return {
        "shards": job.shards, "inputs": hashes, "seed": job.seed, "heldout_fraction": job.heldout_fraction,
        "temporal_fraction": job.temporal_fraction, "cutoff": job.cutoff, "pair": asdict(job.pair),
        "ad_limits": asdict(job.limits),
        "keywords": job.keywords,
        # which shard reads which record (it decides the TAP parts): a build begun under the former
        # rule (record index mod shards) is not resumed under this one
        "input_sharding": "jsonl-byte-ranges",
        "template_version": t.version, "templates_sha256": hashlib.sha256(
            json.dumps(t.tasks, sort_keys=True).encode() + json.dumps(t.context, sort_keys=True).encode()
            + json.dumps(t.audience, sort_keys=True).encode()).hexdigest(),
    }


def binding(config: dict[str, Any]) -> Binding:
    """What a build is bound to: the inputs (a hash of each file's name and sha256) and every option
    of ``config`` that changes the samples or their layout (``--shards`` fixes the part layout)."""
    inputs = hashlib.sha256(json.dumps([[i["name"], i["sha256"]] for i in config["inputs"]]).encode())
    return Binding(inputs=inputs.hexdigest()[:16], options={k: v for k, v in config.items() if k != "inputs"})


AUTO_SHARD_BYTES = 16 << 20
"""``shards=None``: one shard per 16 MiB of input (~8 K API-shaped ads), at least 8. A worker holds
one shard's ads and samples in memory, so this bounds memory whatever the input size; it depends
only on the inputs, so the layout stays deterministic."""


def auto_shards(inputs: list[InputFile]) -> int:
    total = sum(i.path.stat().st_size for i in inputs)
    return max(8, -(-total // AUTO_SHARD_BYTES))


def build(
    ads: list[str | Path], out: str | Path, *, engine: str = "local", workers: int = 2, shards: int | None = None,
    seed: int = 0, heldout_fraction: float = 0.1, temporal_fraction: float = 0.1, cutoff: str | None = None,
    pair: PairConfig | None = None, templates: str | None = None, keywords: str = "keybert",
    embed_cache: bool = True, jsonl: bool = False, keep_work: bool = False, ray_address: str | None = None,
    max_body_chars: int | None = None, restart: bool = False,
    log: Callable[[str], None] | None = None, progress: bool = True,
) -> BuildResult:
    """Build the dataset (or finish an interrupted build) and return its manifest and stage timings.

    OUT is opened with :func:`ava.runs.start_run`: checked writable, locked (one writer), bound
    to the inputs and options (a rerun with other ones is refused naming what differs;
    ``restart`` starts over), ``run.json`` running until the manifest is written, then complete.
    ``jsonl`` adds ``OUT/jsonl/<split>.jsonl`` (the Parquet is the dataset; JSONL is ~25x larger);
    ``keep_work`` keeps ``OUT/_work`` after a finished build (it is removed by default). Neither is
    part of the build's identity: asking for JSONL on a finished build only writes the export.
    ``ray_address`` runs the Ray engine on an existing cluster; OUT and the inputs must then be on
    a file system every node shares (checked before any shard runs). Only this process (the driver)
    writes the run record and holds the lock; shards on other nodes write only their parts and markers.
    """
    log = log or (lambda msg: print(msg, file=sys.stderr))
    inputs = discover(list(ads))
    shards = auto_shards(inputs) if shards is None else shards
    if shards < 1:
        raise ValueError("--shards must be at least 1")
    inputs = [cut_jsonl(i, shards) for i in inputs]  # each shard reads only its part of a JSONL file
    if keywords not in METHODS:
        raise ValueError(f"unknown keyword method {keywords!r}: use one of {', '.join(METHODS)}")
    job = BuildJob(tuple(inputs), Path(out), shards, seed, heldout_fraction, temporal_fraction, cutoff,
                   pair or PairConfig(seed=seed), templates, default_limits().with_body_cap(max_body_chars),
                   keywords, embed_cache)
    make_embedder(job.pair.embed_backend)  # an unknown backend is refused before anything runs
    output = Output(job.out, folder=True)
    check_writable(output)
    executor = make_executor(engine, workers, ray_address, progress)  # a missing Ray is refused before OUT is made
    hashes = [{"name": i.name, "sha256": file_sha256(i.path), "bytes": i.path.stat().st_size} for i in inputs]
    config = _config(job, hashes)
    created = not job.out.exists()
    try:
        with start_run(output, KIND, binding(config), info={"engine": engine, "inputs": [i.name for i in inputs]},
                       restart=restart, owned=OWNED) as run:
            if run.previous is not None and run.previous.complete and (job.out / "manifest.json").is_file():
                manifest = json.loads((job.out / "manifest.json").read_text(encoding="utf-8"))
                log(f"already built: {manifest['totals']} samples in {job.out}")
                result = BuildResult(manifest, {}, {})
            else:
                (job.out / "manifest.json").unlink(missing_ok=True)  # from here on the build is unfinished
                executor.prepare(job.out, [i.path for i in inputs])  # a cluster must share OUT: checked first
                result = _run(job, config, executor, log)
                log(executor.summary())
            if jsonl:
                _export_jsonl(job)
    except OutputNotShared:
        executor.close()
        if created:  # nothing but our own record was written: leave no folder behind
            shutil.rmtree(job.out, ignore_errors=True)
        raise
    except BaseException:
        executor.close(abort=True)
        raise
    executor.close()
    if not keep_work:
        shutil.rmtree(job.work, ignore_errors=True)
    return result


def _export_jsonl(job: BuildJob) -> None:
    for split in SPLITS:
        write_jsonl(job.out, split)


def _done_with(job: BuildJob, *names: str) -> None:
    """Delete intermediate files once every shard that reads them is done (markers stay)."""
    for name in names:
        target = job.work / name
        if target.is_dir():
            shutil.rmtree(target)
        else:
            target.unlink(missing_ok=True)


def _plan_once(job: BuildJob) -> dict[str, Any]:
    """The plan stage, skipped on a resumed build whose plan is done (``plan.json`` is written last)."""
    done = job.work / "plan" / "plan.json"
    if not done.exists():
        write_json(done, make_plan(job))
        _done_with(job, "keys")
    return json.loads(done.read_text(encoding="utf-8"))


def _run(job: BuildJob, config: dict[str, Any], executor: Executor, log: Callable[[str], None]) -> BuildResult:
    shards = job.shards
    seconds: dict[str, float] = {}

    ingest, seconds["ingest"] = run_stage(executor, job.work / "ingest", partial(ingest_shard, job), shards, "ingest")
    steps = merge_counts(r["steps"] for r in ingest)
    log(f"ingest: {steps['read']['seen']} records read, {steps['signals']['kept']} usable "
        f"({seconds['ingest']:.1f}s)")
    skipped = sorted((e for r in ingest for e in r["errors"]), key=lambda e: (e["file"], e["line"]))
    if not steps["signals"]["kept"]:
        write_json(job.out / "skipped.json", skipped)
        raise NoUsableAds(_no_ads_message(job, merge_counts(r["files"] for r in ingest)))
    start = time.perf_counter()
    plan = _plan_once(job)
    seconds["plan"] = time.perf_counter() - start
    log(f"plan: cutoff {plan['cutoff']}, advertisers {plan['advertisers']}, dropped {plan['dropped']}")
    made, seconds["samples"] = run_stage(executor, job.work / "samples", partial(samples_shard, job), shards, "samples")
    _done_with(job, "ads", "plan/splits.pkl", *(f"plan/shard-{r:05d}.pkl" for r in range(shards)))
    pairs, seconds["pairs"] = run_stage(executor, job.work / "pairs", partial(pairs_shard, job), shards, "pairs",
                                        cost=_routed_bytes(job))
    _done_with(job, "route")
    mining = merge_counts(r["pair_mining"] for r in pairs)
    log(f"pairs: {mining.get('brands', 0)} brands, {mining.get('distinct_texts', 0)} distinct bodies embedded, "
        f"{mining.get('body_pairs_kept', 0)} body pairs ({seconds['pairs']:.1f}s)")
    start = time.perf_counter()
    manifest = _manifest(job, config, ingest, plan, made, pairs, steps, mining)
    manifest["arrow_bytes"] = merge_counts(r["arrow_bytes"] for r in [*made, *pairs])
    write_json(job.out / "skipped.json", sorted(skipped + plan["skipped"], key=lambda e: (e["file"], e["line"])))
    compact_parts(job.out)
    write_card(job.out, manifest)
    write_json(job.out / "manifest.json", manifest)
    seconds["export"] = time.perf_counter() - start
    timing = merge_counts(r.get("timing", {}) for r in pairs)
    for stage, results in (("ingest", ingest), ("samples", made), ("pairs", pairs)):
        timing[f"{stage}_cpu_s"] = sum(r.get("_cpu_s", 0.0) for r in results)
    log(f"done: {manifest['totals']} samples -> {job.out}")
    return BuildResult(manifest, seconds, timing)


def _no_ads_message(job: BuildJob, files: dict[str, Any]) -> str:
    """One line: what became of each input (the first few), and where the details are."""
    parts = []
    for name, entry in list(files.items())[:5]:
        reasons = Counter(entry.get("skipped", {})) + Counter(entry.get("dropped", {}))
        why = ", ".join(f"{r} {n}" for r, n in sorted(reasons.items()))
        parts.append(f"{name}: {entry.get('read', 0)} read ({why or 'nothing kept'})")
    more = f"; and {len(files) - 5} more files" if len(files) > 5 else ""
    return (f"no usable ads in {len(job.inputs)} input file(s): {'; '.join(parts)}{more}. "
            f"Every record and file is listed in {job.out / 'skipped.json'}")


def _manifest(
    job: BuildJob, config: dict[str, Any], ingest: list[dict[str, Any]], plan: dict[str, Any],
    made: list[dict[str, Any]], pairs: list[dict[str, Any]], steps: dict[str, Any], mining: dict[str, Any],
) -> dict[str, Any]:
    per_ad = merge_counts(r["samples"] for r in made)
    per_pair = merge_counts(r["samples"] for r in pairs)
    counts = {s: {t: per_ad.get(s, {}).get(t, 0) + per_pair.get(s, {}).get(t, 0) for t in ALL_TASKS} for s in SPLITS}
    files = merge_counts(r["files"] for r in ingest)
    for entry in files.values():
        entry["skipped_total"] = sum(entry["skipped"].values())
        entry["dropped_total"] = sum(entry["dropped"].values())
    errors = sorted([*(e for r in ingest for e in r["errors"]), *plan["skipped"]], key=lambda e: (e["file"], e["line"]))
    ads = merge_counts(r["ads"] for r in made)
    return {
        "format": "ava-instructions/2",
        "template_version": config["template_version"],
        "seed": job.seed,
        "config": config,
        "inputs": config["inputs"],
        "files": files,
        "skipped_examples": errors[:20],
        "steps": {**steps, "plan": {"dropped": plan["dropped"]}},
        "cutoff": plan["cutoff"],
        "advertisers": plan["advertisers"],
        "ads": {s: ads.get(s, 0) for s in SPLITS},
        "counts": counts,
        "totals": {s: sum(counts[s].values()) for s in SPLITS},
        "not_made": merge_counts(r["not_made"] for r in [*made, *pairs]),
        "pair_mining": mining,
        "layout": {"parquet": "data/<split>-NNNNN-of-NNNNN.parquet", "card": "README.md",
                   "skipped": "skipped.json", "jsonl": "jsonl/<split>.jsonl (only with --jsonl)",
                   "parts": 2 * job.shards, "parts_by_stage": {"samples": "0..shards-1: TAP",
                                                               "pairs": "shards..2*shards-1: TAG, TS, TC"}},
    }
