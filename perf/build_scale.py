"""Scale benchmark of ``ava build``: the real US ads scaled up by perturbed copies, local vs Ray.

    .venv/bin/python perf/build_scale.py --sizes 2000,10000          # a few minutes
    .venv/bin/python perf/build_scale.py --sizes 10000,100000 --engines local,ray
    .venv/bin/python perf/build_scale.py --sizes 1000000 --engines ray \
        --results runs/build-scale.json   # adds to the rows saved by earlier runs, prints them all

Copy ``c`` of the real ads is a new brand per real page (``<page_id>-c<c>``), its dates shifted by
``c`` days, every body tagged with the copy number: within a copy the real duplication (155
distinct bodies per 500 ads) and the real within-brand pair structure are kept, across copies no
text repeats, so embedding work grows with the data as it would with real new ads.

``--results FILE`` keeps every measured row (a long tier can run on its own later and be
tabulated with the earlier ones). Printed per size and engine: ads/s, samples/s, peak memory
(RSS of the process tree), the finished output's bytes per ad and the peak of the output folder
during the build (``_work`` included), embedding texts/s per worker, seconds per stage; then the
projection to 1.5 M ads (linear fit over the smallest and largest measured sizes, per stage), and
the naive method's cost on the same data: every ad embedded (no de-duplication) and all pairs
compared within a brand (quadratic), as ratios to what the build did.

Every build starts with a cold embedding cache (its own ``AVA_CACHE``, with the ONNX export
copied in, so the one-off export is not timed): the numbers are a first build's.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import sys
import tempfile
import threading
import time
from datetime import date, timedelta
from pathlib import Path

import psutil

from ava.instructions.build import build
from ava.instructions.embed import onnx_model

ROOT = Path(__file__).resolve().parents[1]
REAL = ROOT.parent / "shared" / "data" / "ads" / "us-political-2020-sample.jsonl"
TARGET = 1_500_000
PARALLEL = ("ingest", "samples", "pairs")


def _shift(day: str | None, days: int) -> str | None:
    return None if not day else (date.fromisoformat(day) + timedelta(days=days)).isoformat()


def make_input(n: int, path: Path) -> None:
    """``n`` ads: perturbed copies of the real US ads (see the module docstring)."""
    real = [json.loads(line) for line in REAL.read_text(encoding="utf-8").splitlines() if line.strip()]
    with path.open("w", encoding="utf-8") as fh:
        for i in range(n):
            copy, ad = divmod(i, len(real))
            rec = dict(real[ad])
            rec["id"] = f"{rec['id']}{copy:05d}"
            rec["page_id"] = f"{rec['page_id']}-c{copy}"
            rec["page_name"] = f"{rec['page_name']} {copy}"
            rec["ad_creative_bodies"] = [f"{b} #{copy}" for b in rec.get("ad_creative_bodies") or []]
            for key in ("ad_delivery_start_time", "ad_delivery_stop_time"):
                rec[key] = _shift(rec.get(key), copy % 365)
            fh.write(json.dumps(rec) + "\n")


def folder_bytes(path: Path) -> int:
    total = 0
    with contextlib.suppress(FileNotFoundError):
        for entry in os.scandir(path):
            with contextlib.suppress(FileNotFoundError):
                total += folder_bytes(Path(entry.path)) if entry.is_dir() else entry.stat().st_size
    return total


class PeakRSS:
    """Peak resident memory and CPU seconds of this process and all its children (workers, Ray),
    and the peak size of ``folder`` (every 2 s), sampled. CPU seconds do not depend on how busy the
    shared machine is; wall seconds do."""

    def __init__(self, every: float = 0.25, folder: Path | None = None) -> None:
        self.every, self.peak, self._stop = every, 0, threading.Event()
        self.folder, self.peak_disk, self._last_disk = folder, 0, 0.0
        self._cpu: dict[int, float] = {}
        self._cpu0 = self._own_cpu()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @staticmethod
    def _own_cpu() -> float:
        # Not children_*: joined pool workers would be counted twice (they are sampled by pid).
        t = psutil.Process().cpu_times()
        return t.user + t.system

    @property
    def cpu_s(self) -> float:
        me = psutil.Process().pid
        others = sum(v for pid, v in self._cpu.items() if pid != me)
        return self._own_cpu() - self._cpu0 + others

    def _run(self) -> None:
        me = psutil.Process()
        while not self._stop.is_set():
            total = 0
            for proc in [me, *me.children(recursive=True)]:
                with contextlib.suppress(psutil.Error):
                    total += proc.memory_info().rss
                    if proc.pid != me.pid:
                        t = proc.cpu_times()
                        self._cpu[proc.pid] = t.user + t.system
            self.peak = max(self.peak, total)
            if self.folder and time.monotonic() - self._last_disk > 2:
                self.peak_disk, self._last_disk = max(self.peak_disk, folder_bytes(self.folder)), time.monotonic()
            time.sleep(self.every)

    def __enter__(self) -> PeakRSS:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def cold_cache(scratch: Path, name: str) -> None:
    """A fresh ``AVA_CACHE`` for one build, with the ONNX export (made once per run) copied in."""
    models = scratch / "models-cache"
    if not models.exists():
        os.environ["AVA_CACHE"] = str(models)
        onnx_model()
    cache = scratch / f"cache-{name}"
    shutil.rmtree(cache, ignore_errors=True)
    shutil.copytree(models / "models", cache / "models")
    os.environ["AVA_CACHE"] = str(cache)


def run_one(inp: Path, out: Path, engine: str, workers: int, shards: int | None) -> dict:
    shutil.rmtree(out, ignore_errors=True)
    cold_cache(out.parent, out.name)
    start = time.perf_counter()
    with PeakRSS(folder=out) as mem:
        result = build([inp], out, engine=engine, workers=workers, shards=shards, log=lambda _m: None)
    if engine == "ray":
        import ray

        ray.shutdown()
    wall = time.perf_counter() - start
    m = result.manifest
    shutil.rmtree(out.parent / f"cache-{out.name}", ignore_errors=True)
    t = result.timing
    return {
        "wall": wall, "cpu": mem.cpu_s, "disk": folder_bytes(out), "peak_disk": max(mem.peak_disk, folder_bytes(out)),
        "embed_computed": t.get("embed_computed", 0), "words_computed": t.get("words_computed", 0),
        "words_s": t.get("words_s", 0.0), "keywords_s": t.get("keywords_s", 0.0),
        "embed_cpu": t.get("embed_cpu_s", 0.0), "keywords_cpu": t.get("keywords_cpu_s", 0.0),
        "mine_cpu": t.get("mine_cpu_s", 0.0),
        "worker_cpu": {s: result.timing.get(f"{s}_cpu_s", 0.0) for s in PARALLEL},
        "stages": result.stage_seconds, "peak_gb": mem.peak / 1e9,
        "ads": sum(m["ads"].values()), "read": m["steps"]["read"]["seen"], "samples": sum(m["totals"].values()),
        "texts": m["pair_mining"].get("distinct_texts", 0), "embed_s": result.timing.get("embed_s", 0.0),
        "compared": m["pair_mining"].get("body_pairs_compared", 0), "mining": m["pair_mining"],
        "manifest": m,
    }


def naive_costs(r: dict) -> tuple[float, float]:
    """(ads embedded / texts embedded, all ad pairs within brands / block comparisons) on this data."""
    return r["ads"] / max(1, r["texts"]), r["mining"].get("naive_ad_pairs", 0) / max(1, r["compared"])


def _data_files(out: Path) -> list[str]:
    """A build's files as compared across engines: everything but its run record (``run.json``:
    start and end times, the engine) and lock, as in tests/test_build.py."""
    return sorted(p.relative_to(out).as_posix() for p in out.rglob("*")
                  if p.is_file() and p.name not in ("run.json", ".lock"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="2000,10000", help="comma-separated ad counts")
    ap.add_argument("--engines", default="local,ray")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--shards", type=int, default=None, help="default: the builder's own rule (one per 16 MiB)")
    ap.add_argument("--tmp", default=None, help="scratch folder (default: a temporary one)")
    ap.add_argument("--results", default=None, help="JSON file of measured rows: read, extended, rewritten")
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    engines = args.engines.split(",")
    tmp = Path(args.tmp or tempfile.mkdtemp(prefix="ava-build-scale-"))
    tmp.mkdir(parents=True, exist_ok=True)
    rows: dict[tuple[int, str], dict] = _load_rows(args.results)
    for n in sizes:
        inp = tmp / f"ads-{n}.jsonl"
        make_input(n, inp)
        for engine in engines:
            print(f"building {n} ads with {engine} ...", file=sys.stderr, flush=True)
            r = run_one(inp, tmp / f"out-{n}-{engine}", engine, args.workers, args.shards)
            shards = r.pop("manifest")["config"]["shards"]
            rows[(n, engine)] = {**r, "workers": args.workers, "shards": shards}
            _save_rows(args.results, rows)
            print(f"  {r['wall']:.1f}s", file=sys.stderr, flush=True)
        if len(engines) > 1:
            a, b = (tmp / f"out-{n}-{e}" for e in engines[:2])
            names, other = _data_files(a), _data_files(b)
            same = names == other and all((a / p).read_bytes() == (b / p).read_bytes() for p in names)
            rows[(n, engines[1])]["identical_to"] = engines[0] if same else None
            _save_rows(args.results, rows)
            print(f"  {engines[0]} and {engines[1]} outputs byte-identical ({len(names)} files): {same}",
                  file=sys.stderr)
        inp.unlink()
        for engine in engines:  # keep the disk for the next size
            shutil.rmtree(tmp / f"out-{n}-{engine}", ignore_errors=True)

    stage_names = ["ingest", "plan", "samples", "pairs", "export"]
    print(f"\n## ava build scale ({args.workers} workers, {psutil.cpu_count()} CPUs, "
          f"load avg now {psutil.getloadavg()[0]:.1f})\n")
    print("*worker CPU ms/ad*: the shard workers' CPU seconds per ad, independent of other load on the machine; "
          "constant across sizes means linear growth.\n")
    print("*embed texts/s*: distinct bodies embedded per second of one worker (the build runs "
          f"{args.workers} at once). *disk KB/ad*: the finished output (Parquet, card, manifest); *peak MB*: "
          "the output folder's largest size during the build, `_work` included.\n")
    print("| ads | engine | shards | wall s | tree CPU s | worker CPU ms/ad | ads/s | samples | samples/s | peak GB | "
          "disk MB | disk KB/ad | peak disk MB | distinct texts | embed texts/s | keywords s | "
          + " | ".join(f"{s} s" for s in stage_names) + " |")
    print("|" + "---|" * (16 + len(stage_names)))
    for (n, engine), r in sorted(rows.items()):
        embed_rate = r["texts"] / r["embed_s"] if r["embed_s"] else float("nan")
        worker_ms = 1000 * sum(r["worker_cpu"].values()) / r["read"]
        print(f"| {n:,} | {engine} | {r['shards']} | {r['wall']:.1f} | {r['cpu']:.0f} | "
              f"{worker_ms:.2f} | {r['read'] / r['wall']:.0f} | "
              f"{r['samples']:,} | {r['samples'] / r['wall']:.0f} | {r['peak_gb']:.2f} | "
              f"{r.get('disk', 0) / 1e6:.1f} | {r.get('disk', 0) / 1e3 / r['read']:.2f} | "
              f"{r.get('peak_disk', 0) / 1e6:.0f} | {r['texts']:,} | {embed_rate:.0f} | {r.get('keywords_s', 0):.0f} | "
              + " | ".join(f"{r['stages'].get(s, 0):.1f}" for s in stage_names) + " |")

    print(f"\n### Projection to {TARGET:,} ads (PROJECTED, not run: linear per stage over the measured sizes)\n")
    print("*wall*: extrapolated wall seconds as measured on this shared machine. *dedicated*: the shard "
          f"workers' CPU seconds (contention-free cost) / {args.workers} workers, plus the serial stages.\n")
    print("| engine | wall h | dedicated h | per-ad ms (dedicated) | pairs stage share | disk GB | "
          "naive: ads embedded × | naive: pair comparisons × |")
    print("|---|---|---|---|---|---|---|---|")
    for engine in sorted({e for _, e in rows}):
        measured = sorted(n for n, e in rows if e == engine)
        (n0, r0), (n1, r1) = (measured[0], rows[(measured[0], engine)]), (measured[-1], rows[(measured[-1], engine)])

        def project(v0: float, v1: float, n0: int = n0, n1: int = n1) -> float:
            slope = (v1 - v0) / (n1 - n0) if n1 != n0 else v1 / n1
            return max(v1, v1 + slope * (TARGET - n1))

        wall = sum(project(r0["stages"].get(s, 0.0), r1["stages"].get(s, 0.0)) for s in stage_names)
        work = {s: project(r0["worker_cpu"][s], r1["worker_cpu"][s]) / args.workers for s in PARALLEL}
        serial = sum(project(r0["stages"].get(s, 0.0), r1["stages"].get(s, 0.0)) for s in ("plan", "export"))
        dedicated = sum(work.values()) + serial
        emb_ratio, pair_ratio = naive_costs(r1)
        disk = project(r0.get("disk", 0), r1.get("disk", 0)) / 1e9
        print(f"| {engine} | {wall / 3600:.2f} | {dedicated / 3600:.2f} | {1000 * dedicated / TARGET:.2f} | "
              f"{work['pairs'] / dedicated:.0%} | {disk:.2f} | {emb_ratio:.1f} | {pair_ratio:.1f} |")
    print("\n| ads | engine | pairs stage CPU s | embedding bodies | KeyBERT (words included) | mining, rendering, "
          "writing | embed texts per CPU s |\n|---|---|---|---|---|---|---|")
    for (n, engine), r in sorted(rows.items()):
        if "embed_cpu" in r:
            print(f"| {n:,} | {engine} | {r['worker_cpu']['pairs']:.0f} | {r['embed_cpu']:.0f} | "
                  f"{r['keywords_cpu']:.0f} | {r['mine_cpu']:.0f} | {r['texts'] / max(r['embed_cpu'], 1e-9):.0f} |")
    print("\nworker CPU s per stage: " + "; ".join(
        f"{n:,} {e}: " + ", ".join(f"{s} {r['worker_cpu'][s]:.0f}" for s in PARALLEL) for (n, e), r in rows.items()))
    if not args.tmp:
        shutil.rmtree(tmp, ignore_errors=True)


def _load_rows(path: str | None) -> dict[tuple[int, str], dict]:
    if not path or not Path(path).exists():
        return {}
    return {(r["ads_in"], r["engine"]): r for r in json.loads(Path(path).read_text(encoding="utf-8"))}


def _save_rows(path: str | None, rows: dict[tuple[int, str], dict]) -> None:
    if path:
        from ava.io import write_json

        Path(path).parent.mkdir(parents=True, exist_ok=True)
        write_json(Path(path), [{"ads_in": n, "engine": e, **r} for (n, e), r in sorted(rows.items())])


if __name__ == "__main__":
    main()
