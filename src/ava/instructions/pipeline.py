"""datatrove-style pipeline plumbing: counted streaming steps, shard markers, two executors.

A step is ``run(items, rank, world_size) -> items`` and counts what it saw, kept and dropped per
reason. A *stage* runs one shard function per rank; each finished shard leaves a completion marker
(``.done``, holding the shard's counts) so a re-run skips it. The same shard functions run on the
local executor (multiprocessing) and on Ray Data; outputs depend only on the rank, never on the
executor, so both engines write the same bytes.
"""

from __future__ import annotations

import json
import logging
import multiprocessing as mp
import os
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from tqdm import tqdm

from ava.io import write_json


@dataclass
class StepStats:
    seen: int = 0
    kept: int = 0
    dropped: Counter[str] = field(default_factory=Counter)
    by_file: dict[str, Counter[str]] = field(default_factory=dict)
    """Per input file: what this step dropped there, by reason (for the manifest's file table)."""

    def drop(self, reason: str, file: str | None = None) -> None:
        self.dropped[reason] += 1
        if file is not None:
            self.by_file.setdefault(file, Counter())[reason] += 1

    def to_dict(self) -> dict[str, Any]:
        return {"seen": self.seen, "kept": self.kept, "dropped": dict(sorted(self.dropped.items()))}


class Step(Protocol):
    name: str

    def run(self, items: Iterable[Any], rank: int, world_size: int, stats: StepStats) -> Iterator[Any]: ...


def run_steps(
    steps: list[Step], items: Iterable[Any], rank: int, world_size: int
) -> tuple[Iterator[Any], dict[str, StepStats]]:
    """Chain ``steps`` lazily over ``items``; the returned stats fill in as the iterator is consumed."""
    stats = {s.name: StepStats() for s in steps}
    stream: Iterable[Any] = items
    for s in steps:
        stream = s.run(stream, rank, world_size, stats[s.name])
    return iter(stream), stats


def merge_counts(parts: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """Sum nested count dicts (ints at the leaves), keys sorted: the stage's total over shards."""
    out: dict[str, Any] = {}
    for part in parts:
        for key, value in part.items():
            if isinstance(value, dict):
                out[key] = merge_counts([out.get(key, {}), value])
            elif isinstance(value, int | float):
                out[key] = out.get(key, 0) + value
            else:
                out.setdefault(key, value)
    return dict(sorted(out.items()))


ShardFn = Callable[[int], dict[str, Any]]


class Executor(Protocol):
    name: str

    def prepare(self, out: Path, inputs: list[Path]) -> None: ...

    def summary(self) -> str: ...

    def map(self, fn: ShardFn, ranks: list[int], desc: str) -> None: ...

    def close(self, abort: bool = False) -> None: ...


def _marker(stage_dir: Path, rank: int) -> Path:
    return stage_dir / f"shard-{rank:05d}.done"


def run_stage(
    executor: Executor, stage_dir: Path, fn: ShardFn, n_shards: int, desc: str,
    cost: Callable[[int], float] | None = None,
) -> tuple[list[dict[str, Any]], float]:
    """Run ``fn`` for every rank without a completion marker; return every shard's counts and seconds.

    ``cost`` (a shard's expected work) starts the largest shards first, so the stage does not end
    with one worker finishing a big shard while the others idle (at 1 M ads the last pairs shard
    ran alone for 30 s). The order changes no output: each shard writes only its own files."""
    stage_dir.mkdir(parents=True, exist_ok=True)
    pending = [r for r in range(n_shards) if not _marker(stage_dir, r).exists()]
    if cost is not None:
        pending.sort(key=lambda r: (-cost(r), r))
    start = time.perf_counter()
    if pending:
        executor.map(_MarkedShard(fn, stage_dir), pending, desc)
    seconds = time.perf_counter() - start
    results = [json.loads(_marker(stage_dir, r).read_text(encoding="utf-8")) for r in range(n_shards)]
    return results, seconds


class _MarkedShard:
    """Runs a shard function and writes its marker last, so a crash mid-shard leaves no marker."""

    def __init__(self, fn: ShardFn, stage_dir: Path) -> None:
        self.fn, self.stage_dir = fn, stage_dir

    def __call__(self, rank: int) -> int:
        cpu = time.process_time()
        result = self.fn(rank)
        # CPU seconds of this shard's process: a cost measure that does not depend on how busy a
        # shared machine is (markers live under _work/, never in the outputs).
        result["_cpu_s"] = time.process_time() - cpu
        write_json(_marker(self.stage_dir, rank), result)
        return rank


class LocalExecutor:
    """Shards in one process pool (``spawn``: safe with torch) kept for all stages of a build, so
    workers import the libraries and load the embedding model once; one worker runs in-process."""

    name = "local"

    def __init__(self, workers: int = 2, progress: bool = True) -> None:
        self.workers = max(1, workers)
        self.progress = progress
        self._pool: Any = None

    def prepare(self, out: Path, inputs: list[Path]) -> None:
        """Nothing to check: every worker is a process of this machine."""

    def summary(self) -> str:
        return f"local: {self.workers} worker process(es)"

    def map(self, fn: ShardFn, ranks: list[int], desc: str) -> None:
        bar = tqdm(total=len(ranks), desc=desc, unit="shard", leave=False, disable=not self.progress)
        if self.workers == 1:
            for rank in ranks:
                fn(rank)
                bar.update()
        else:
            if self._pool is None:
                threads = max(1, (os.cpu_count() or 1) // self.workers)
                self._pool = mp.get_context("spawn").Pool(self.workers, initializer=_limit_threads, initargs=(threads,))
            for _ in self._pool.imap_unordered(fn, ranks):
                bar.update()
        bar.close()

    def close(self, abort: bool = False) -> None:
        """Wait for the workers to exit; ``abort`` (an error or interruption) stops them mid-shard
        instead of letting them finish the stage's queued shards (a shard without its marker is redone)."""
        if self._pool is not None:
            if abort:
                self._pool.terminate()
            else:
                self._pool.close()
            self._pool.join()
            self._pool = None


def _limit_threads(n: int) -> None:
    """Pool initializer: BLAS/torch threads per worker, set before torch is imported."""
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = str(n)


class EngineUnavailable(RuntimeError):
    """The chosen engine cannot run here (Ray not installed, or its cluster cannot be reached)."""


RAY_MISSING = "the Ray engine needs Ray, an optional extra: pip install 'align-via-actions[ray]'"


def ray_module() -> Any:
    """``ray``, or :class:`EngineUnavailable` saying how to install it (Ray is an extra)."""
    try:
        import ray
        import ray.data  # noqa: F401  (the [data] part of the extra)
    except ImportError:
        raise EngineUnavailable(RAY_MISSING) from None
    return ray


class RayExecutor:
    """The same shard functions as Ray Data tasks on a local Ray instance or an existing cluster.

    ``address`` (``--ray-address``, e.g. ``ray://head:10001`` or ``head:6379``, or ``auto`` for the
    cluster this machine belongs to) connects to a running cluster; without it a local instance
    with ``workers`` CPUs is started. On a cluster ``workers`` caps the shards run at once.
    """

    name = "ray"

    def __init__(self, workers: int = 2, address: str | None = None) -> None:
        self.workers, self.address = max(1, workers), address
        self.ray = ray_module()
        self.nodes: Counter[str] = Counter()
        """Shard tasks run per Ray node id (shown after a build: evidence of where the work ran)."""

    def summary(self) -> str:
        nodes = ", ".join(f"{node[:8]}: {n}" for node, n in sorted(self.nodes.items()))
        return f"ray: {sum(self.nodes.values())} shard tasks on {len(self.nodes)} node(s) ({nodes})"

    def start(self) -> Any:
        ray = self.ray
        if not ray.is_initialized():
            options: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False,
                                       "configure_logging": False, "ignore_reinit_error": True}
            if self.address:
                options["address"] = self.address
            else:
                options["num_cpus"] = self.workers
            try:
                ray.init(**options)
            except ConnectionError as exc:
                raise EngineUnavailable(f"cannot reach the Ray cluster at {self.address}: {exc}") from None
        return ray

    def prepare(self, out: Path, inputs: list[Path]) -> None:
        """Refuse (``OutputNotShared``) a build whose OUT or inputs some node cannot see."""
        from ava.instructions.cluster import check_shared

        check_shared(self.start(), out, inputs)

    def map(self, fn: ShardFn, ranks: list[int], desc: str) -> None:
        ray = self.start()
        ctx = ray.data.DataContext.get_current()
        ctx.enable_progress_bars = False
        logging.getLogger("ray.data").setLevel(logging.WARNING)
        ds = ray.data.from_items([{"rank": r} for r in ranks], override_num_blocks=len(ranks))
        pool = ray.data.TaskPoolStrategy(size=min(self.workers, len(ranks)))
        done = ds.map(_RayRow(fn), num_cpus=1, compute=pool).take_all()
        if sorted(row["rank"] for row in done) != sorted(ranks):
            raise RuntimeError(f"{desc}: Ray returned shards {sorted(r['rank'] for r in done)}, expected {ranks}")
        self.nodes.update(row["node"] for row in done)

    def close(self, abort: bool = False) -> None:
        """The Ray instance is left running (it may be the caller's); ``ray.shutdown()`` ends it."""


class _RayRow:
    def __init__(self, fn: Callable[[int], int]) -> None:
        self.fn = fn

    def __call__(self, row: dict[str, Any]) -> dict[str, Any]:
        import ray

        return {"rank": self.fn(int(row["rank"])), "node": ray.get_runtime_context().get_node_id()}


def make_executor(engine: str, workers: int, ray_address: str | None = None, progress: bool = True) -> Executor:
    if ray_address and engine != "ray":
        raise ValueError("--ray-address needs --engine ray")
    if engine == "local":
        return LocalExecutor(workers, progress)
    if engine == "ray":
        return RayExecutor(workers, ray_address)
    raise ValueError(f"unknown engine {engine!r}: use 'local' or 'ray'")
