"""``ava build``: ad files -> the sharded AVA instruction dataset, resumable, on either engine.

The driver: it binds OUT to the inputs and options, runs the stages (:mod:`ava.instructions.stages`:
ingest, plan, samples, pairs; each parallel shard leaves a marker under ``OUT/_work/<stage>/`` and
a re-run skips finished shards) and then writes ``skipped.json``, the dataset card ``README.md``,
``manifest.json`` (the data's description) and the JSONL export when asked
(:mod:`ava.instructions.dataset` names and writes them). Whether a build is finished is said by its
run record ``OUT/run.json`` (:mod:`ava.runs`: ``running`` until all of this is written, then
``complete``). Each stage writes its samples straight into their final parts
(``data/<split>-NNNNN-of-NNNNN.parquet``, 2 x shards parts per split): no intermediate copy of the
samples is written and read back.

``_work/`` holds only what resumption needs (:mod:`ava.instructions.workfiles`): each stage's
inputs are deleted once every shard of the stage that reads them is done, and the whole folder
goes when the build finishes (unless ``keep_work``). The shard count fixes the output layout, so
it is part of the build's binding: resuming with a different ``--shards`` (or other
inputs/options) is refused, naming what differs.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import Any

from ava.ads.keywords import METHODS
from ava.ads.limits import default_limits
from ava.ads.readers import InputFile, cut_jsonl, discover
from ava.contracts.instructions import SPLITS
from ava.instructions.card import write_card
from ava.instructions.cluster import OutputNotShared
from ava.instructions.dataset import KIND, DatasetLayout, compact_parts, layout_description, write_jsonl
from ava.instructions.embed import make_embedder
from ava.instructions.pairs import PairConfig
from ava.instructions.pipeline import Executor, make_executor, merge_counts, run_stage
from ava.instructions.stages import BuildJob, ingest_shard, make_plan, pairs_shard, routed_bytes, samples_shard
from ava.instructions.templates import ALL_TASKS, load_templates
from ava.io import file_sha256, write_json
from ava.runs import Binding, Output, check_writable, start_run


class NoUsableAds(ValueError):
    """Not one input record became a usable ad: there is nothing to build (the reasons are in skipped.json)."""


@dataclass
class BuildResult:
    manifest: dict[str, Any]
    stage_seconds: dict[str, float]
    timing: dict[str, float]


def _config(job: BuildJob, hashes: list[dict[str, Any]]) -> dict[str, Any]:
    t = load_templates(job.templates)
    return {
        "shards": job.shards, "inputs": hashes, "seed": job.seed, "heldout_fraction": job.heldout_fraction,
        "temporal_fraction": job.temporal_fraction, "cutoff": job.cutoff, "pair": asdict(job.pair),
        "ad_limits": asdict(job.limits),
        "keywords": job.keywords,
        # which shard reads which record (it decides the TAP parts): a build is resumed only
        # under the rule it began with
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
                       restart=restart, owned=DatasetLayout.OWNED) as run:
            if run.previous is not None and run.previous.complete and job.layout.manifest.is_file():
                manifest = json.loads(job.layout.manifest.read_text(encoding="utf-8"))
                log(f"already built: {manifest['totals']} samples in {job.out}")
                result = BuildResult(manifest, {}, {})
            else:
                job.layout.manifest.unlink(missing_ok=True)  # from here on the build is unfinished
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
        shutil.rmtree(job.work.root, ignore_errors=True)
    return result


def _export_jsonl(job: BuildJob) -> None:
    for split in SPLITS:
        write_jsonl(job.out, split)


def _plan_once(job: BuildJob) -> dict[str, Any]:
    """The plan stage, skipped on a resumed build whose plan is done (``plan.json`` is written last)."""
    done = job.work.plan
    if not done.exists():
        write_json(done, make_plan(job))
        job.work.remove(job.work.read_by("plan", job.shards))
    return json.loads(done.read_text(encoding="utf-8"))


def _run(job: BuildJob, config: dict[str, Any], executor: Executor, log: Callable[[str], None]) -> BuildResult:
    shards, work = job.shards, job.work
    seconds: dict[str, float] = {}

    def stage(name: str, fn: Callable[[BuildJob, int], dict[str, Any]], **kw: Any) -> list[dict[str, Any]]:
        results, seconds[name] = run_stage(executor, work.stage(name), partial(fn, job), shards, name, **kw)
        return results

    ingest = stage("ingest", ingest_shard)
    steps = merge_counts(r["steps"] for r in ingest)
    log(f"ingest: {steps['read']['seen']} records read, {steps['signals']['kept']} usable "
        f"({seconds['ingest']:.1f}s)")
    skipped = sorted((e for r in ingest for e in r["errors"]), key=lambda e: (e["file"], e["line"]))
    if not steps["signals"]["kept"]:
        write_json(job.layout.skipped, skipped)
        raise NoUsableAds(_no_ads_message(job, merge_counts(r["files"] for r in ingest)))
    start = time.perf_counter()
    plan = _plan_once(job)
    seconds["plan"] = time.perf_counter() - start
    log(f"plan: cutoff {plan['cutoff']}, advertisers {plan['advertisers']}, dropped {plan['dropped']}")
    made = stage("samples", samples_shard)
    work.remove(work.read_by("samples", shards))
    pairs = stage("pairs", pairs_shard, cost=routed_bytes(job))
    work.remove(work.read_by("pairs", shards))
    mining = merge_counts(r["pair_mining"] for r in pairs)
    log(f"pairs: {mining.get('brands', 0)} brands, {mining.get('distinct_texts', 0)} distinct bodies embedded, "
        f"{mining.get('body_pairs_kept', 0)} body pairs ({seconds['pairs']:.1f}s)")
    start = time.perf_counter()
    manifest = _manifest(job, config, ingest, plan, made, pairs, steps, mining)
    manifest["arrow_bytes"] = merge_counts(r["arrow_bytes"] for r in [*made, *pairs])
    write_json(job.layout.skipped, sorted(skipped + plan["skipped"], key=lambda e: (e["file"], e["line"])))
    compact_parts(job.out)
    write_card(job.out, manifest)
    write_json(job.layout.manifest, manifest)
    seconds["export"] = time.perf_counter() - start
    timing = merge_counts(r.get("timing", {}) for r in pairs)
    for name, results in (("ingest", ingest), ("samples", made), ("pairs", pairs)):
        timing[f"{name}_cpu_s"] = sum(r.get("_cpu_s", 0.0) for r in results)
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
            f"Every record and file is listed in {job.layout.skipped}")


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
        "layout": {**layout_description(), "parts": 2 * job.shards,
                   "parts_by_stage": {"samples": "0..shards-1: TAP", "pairs": "shards..2*shards-1: TAG, TS, TC"}},
    }
