"""Benchmark suites: the paper's headline table (``--suite paper``) or a quick sample of it.

``run_suite`` builds every benchmark of the table from the registry, scores them with the
model and with the ``uniform`` baseline (free), and prints one row per scorer shaped like the
method's headline table. A benchmark that cannot be built (not registered, data missing) is
skipped with its reason printed and saved: the rest still runs.

Also here, because the three culture benchmarks share them: their prompt templates (versioned
data), where their data is looked for, and the load report that counts every dropped row.
"""

from __future__ import annotations

import os
import re
import sys
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from ava.paths import bundled

# -- shared by the culture benchmarks ---------------------------------------------------------


@cache
def culture_templates() -> dict[str, Any]:
    """``data/benchmarks/culture_templates.yaml`` (prompts, cultures, thresholds, split)."""
    with open(bundled("benchmarks", "culture_templates.yaml"), encoding="utf-8") as fh:
        return yaml.safe_load(fh)


class DataNotFound(FileNotFoundError):
    """A benchmark's data is not where it was looked for; the message says how to get it."""


def data_root(settings: Mapping[str, Any] | None = None) -> Path:
    """Where benchmark data folders are looked for when no path is given.

    ``data_root`` setting, else ``$AVA_DATA``, else ``../shared/data`` (the development
    checkout's layout), else ``./data``.
    """
    settings = settings or {}
    if settings.get("data_root"):
        return Path(str(settings["data_root"])).expanduser()
    if os.environ.get("AVA_DATA"):
        return Path(os.environ["AVA_DATA"]).expanduser()
    shared = Path("..") / "shared" / "data"
    return shared if shared.exists() else Path("data")


def locate(explicit: str | Path | None, folder: str, filename: str, how_to_get: str,
           settings: Mapping[str, Any] | None = None) -> Path:
    """A benchmark's data file: ``explicit`` (a file, or a folder holding ``filename``), else
    ``<data root>/<folder>/<filename>``; a clear :class:`DataNotFound` otherwise."""
    candidates: list[Path] = []
    if explicit is not None:
        path = Path(explicit).expanduser()
        candidates = [path / filename] if path.is_dir() else [path]
    else:
        candidates = [data_root(settings) / folder / filename]
    for path in candidates:
        if path.is_file():
            return path
    raise DataNotFound(f"data not found at {candidates[0]}; {how_to_get}")


@dataclass
class LoadReport:
    """What a loader read, kept and dropped (per reason), with the first messages verbatim.

    Every dropped or repaired row is counted here and reported in the task's metrics:
    nothing is skipped silently.
    """

    path: str
    rows: int = 0
    kept: int = 0
    dropped: Counter[str] = field(default_factory=Counter)
    repaired: Counter[str] = field(default_factory=Counter)
    messages: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    max_messages: int = 50

    def drop(self, reason: str, where: str, message: str) -> None:
        self.dropped[reason] += 1
        self._say(f"{self.path}:{where}: {message}")

    def repair(self, reason: str, where: str, message: str) -> None:
        self.repaired[reason] += 1
        self._say(f"{self.path}:{where}: {message}")

    def _say(self, message: str) -> None:
        if len(self.messages) < self.max_messages:
            self.messages.append(message)

    def warn(self, n_messages: int = 5) -> None:
        """Print the summary and the first messages to stderr when anything was dropped or repaired."""
        if not (self.dropped or self.repaired):
            return
        print(f"warning: {self.summary()}", file=sys.stderr)
        for message in self.messages[:n_messages]:
            print(f"  {message}", file=sys.stderr)
        n_more = sum(self.dropped.values()) + sum(self.repaired.values()) - n_messages
        if n_more > 0:
            print(f"  ... and {n_more} more (all counted in the results' data section)", file=sys.stderr)

    def summary(self) -> str:
        parts = [f"{self.path}: {self.rows} rows read, {self.kept} kept"]
        if self.dropped:
            parts.append("dropped: " + ", ".join(f"{n} {r}" for r, n in sorted(self.dropped.items())))
        if self.repaired:
            parts.append("repaired: " + ", ".join(f"{n} {r}" for r, n in sorted(self.repaired.items())))
        return "; ".join(parts + self.notes)

    def to_dict(self) -> dict[str, Any]:
        n_messages = sum(self.dropped.values()) + sum(self.repaired.values())
        return {
            "path": self.path,
            "rows": self.rows,
            "kept": self.kept,
            "dropped": dict(sorted(self.dropped.items())),
            "repaired": dict(sorted(self.repaired.items())),
            "messages": list(self.messages),
            "messages_left_out": max(0, n_messages - len(self.messages)),
            "notes": list(self.notes),
            "summary": self.summary(),
        }


def join_segments(parts: Sequence[str]) -> tuple[str, ...]:
    """Prompt segments that each end at a line break: a part not ending in one joins the next.

    Why: segments are tokenised separately, and a break after a newline is where a BPE
    tokenizer breaks anyway, so the segmented prompt tokenises like the whole string.
    """
    out: list[str] = []
    pending = ""
    for part in parts[:-1]:
        pending += part
        if pending.endswith("\n"):
            out.append(pending)
            pending = ""
    out.append(pending + parts[-1])
    return tuple(s for s in out if s)


def sample_units(n: int, limit: int | None, seed: int) -> list[int]:
    """Indices of a seeded sample of ``limit`` of ``n`` units, in their original order."""
    if limit is None or limit >= n:
        return list(range(n))
    if limit < 1:
        raise ValueError(f"limit must be at least 1 (got {limit})")
    import numpy as np

    return sorted(int(i) for i in np.random.default_rng(seed).choice(n, size=limit, replace=False))


# -- suites -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Column:
    """One column of the headline table: which benchmark and which headline number.

    ``task`` matches the names of the benchmark's tasks, ``key`` the headline key (both
    regular expressions, case-insensitive); ``scale`` brings the number to the table's x100.
    """

    label: str
    benchmark: str
    task: str
    key: str
    scale: float = 1.0


COLUMNS: tuple[Column, ...] = (
    Column("OQA-XL Rep", "opinionqa-xl", r"^opinionqa-xl$", r"^representativeness$", 100.0),
    Column("OQA-XL Steer", "opinionqa-xl", r"^opinionqa-xl-steer$", r"^steerability$", 100.0),
    Column("OQA Rep", "opinionqa", r"^opinionqa$", r"^representativeness$", 100.0),
    Column("OQA Steer", "opinionqa", r"^opinionqa-steer$", r"^steerability$", 100.0),
    Column("GOQA Sim", "globalopinionqa", r"^globalopinionqa$", r"^avg_sim$"),
    Column("GOQA Skew", "globalopinionqa", r"^globalopinionqa$", r"^skew$"),
    Column("CB Reddit", "culturebank", r"^culturebank$", r"^reddit$"),
    Column("CB TikTok", "culturebank", r"^culturebank$", r"^tiktok$"),
    Column("CNLI US", "culturenli", r"^culturenli$", r"^us$"),
    Column("CNLI IN", "culturenli", r"^culturenli$", r"^in$"),
)

OPTIONAL_COLUMNS: tuple[Column, ...] = (
    # only with --set goqa_similarity=culturebank-compat; labelled, never in place of the standard ones
    Column("GOQA Sim (CB-compat)", "globalopinionqa", r"^globalopinionqa$", r"^avg_sim_cbcompat$"),
    Column("GOQA Skew (CB-compat)", "globalopinionqa", r"^globalopinionqa$", r"^skew_cbcompat$"),
)


@dataclass(frozen=True)
class Entry:
    """A benchmark in a suite: ``make_tasks`` keyword arguments, and per-task unit limits.

    The culture benchmarks take ``limit`` themselves (a seeded sample of units); the survey
    benchmarks leave it to the runner (their first N questions), so those limits are per task.
    """

    kwargs: dict[str, Any] = field(default_factory=dict)
    task_limits: dict[str, int] = field(default_factory=dict)
    limit_by_runner: bool = False


SUITES: dict[str, dict[str, Entry]] = {
    # Units: survey questions (steering: questions x every persona), GOQA questions (x their
    # countries), CNLI pairs (x 2 cultures), CultureBank held-out rows per source.
    "quick": {
        "opinionqa-xl": Entry({"steer": True}, {"opinionqa-xl": 10, "opinionqa-xl-steer": 1}, True),
        "opinionqa": Entry({"steer": True}, {"opinionqa": 10, "opinionqa-steer": 1}, True),
        "globalopinionqa": Entry({"limit": 20}),
        "culturebank": Entry({"limit": 25}),
        "culturenli": Entry({"limit": 25}),
    },
    "paper": {
        "opinionqa-xl": Entry({"steer": True}, limit_by_runner=True),
        "opinionqa": Entry({"steer": True}, limit_by_runner=True),
        "globalopinionqa": Entry(),
        "culturebank": Entry(),
        "culturenli": Entry(),
    },
}


class LimitedTask:
    """A task restricted to the items of its first ``limit`` units (the runner's ``--limit`` rule)."""

    def __init__(self, task: Any, limit: int) -> None:
        self.task = task
        self.limit = limit
        self.name = task.name
        self.version = task.version
        self.template_version = getattr(task, "template_version", None)

    def items(self) -> list[Any]:
        from ava.benchmarks.runner import limit_items

        return limit_items(self.task.items(), self.limit)

    def metrics(self, items: Sequence[Any], scores: Mapping[str, Any]) -> dict[str, Any]:
        return self.task.metrics(items, scores)


def build_suite_tasks(
    name: str, seed: int = 0, limit: int | None = None, settings: Mapping[str, Any] | None = None
) -> tuple[dict[str, list[Any]], dict[str, str]]:
    """Tasks per benchmark, and the reason each benchmark that could not be built was skipped."""
    from ava.benchmarks import registry

    if name not in SUITES:
        raise ValueError(f"unknown suite {name!r} (known: {', '.join(SUITES)})")
    settings = dict(settings or {})
    tasks: dict[str, list[Any]] = {}
    skipped: dict[str, str] = {}
    for bench, entry in SUITES[name].items():
        kwargs = dict(entry.kwargs)
        if limit is not None:
            kwargs["limit"] = limit
        try:
            factory = registry.get(bench)
        except registry.UnknownBenchmark as exc:
            skipped[bench] = f"not available in this installation ({exc})"
            continue
        try:
            built = factory(seed=seed, **kwargs, **{k: v for k, v in settings.items() if k not in kwargs})
        except (DataNotFound, FileNotFoundError) as exc:
            skipped[bench] = str(exc)
            continue
        except Exception as exc:  # a suite reports a broken benchmark and runs the rest
            skipped[bench] = f"could not be built: {type(exc).__name__}: {exc}"
            continue
        if not entry.limit_by_runner:
            tasks[bench] = list(built)
            continue
        limited = []
        for task in built:
            n = entry.task_limits.get(task.name)
            n = limit if n is None else (n if limit is None else min(n, limit))
            limited.append(LimitedTask(task, n) if n is not None else task)
        tasks[bench] = limited
    return tasks, skipped


def headline_row(results_tasks: Mapping[str, Mapping[str, Any]], by_bench: Mapping[str, Sequence[str]],
                 skipped: Mapping[str, str]) -> dict[str, float | None]:
    """The table's columns from a run's task results (None where a benchmark is missing)."""
    row: dict[str, float | None] = {}
    for col in COLUMNS + OPTIONAL_COLUMNS:
        value = None
        for task_name in by_bench.get(col.benchmark, ()):
            if not re.search(col.task, task_name, re.I):
                continue
            headline = results_tasks.get(task_name, {}).get("headline", {})
            keys = [k for k in headline if re.search(col.key, k, re.I)]
            if keys and headline[keys[0]] is not None:
                value = col.scale * float(headline[keys[0]])
                break
        row[col.label] = value
    return row


def format_table(rows: Mapping[str, Mapping[str, float | None]]) -> str:
    """Fixed-width text table: one line per scorer, the paper's columns (+ optional ones with values)."""
    labels = table_columns(rows)
    first = max(len("model"), *(len(r) for r in rows))
    widths = [max(len(lab), 6) for lab in labels]
    lines = ["  ".join(["model".ljust(first), *(lab.rjust(w) for lab, w in zip(labels, widths, strict=True))])]
    for name, row in rows.items():
        cells = ["–" if row.get(lab) is None else f"{row[lab]:.2f}" for lab in labels]
        lines.append("  ".join([name.ljust(first), *(c.rjust(w) for c, w in zip(cells, widths, strict=True))]))
    return "\n".join(lines)


def table_columns(rows: Mapping[str, Mapping[str, float | None]]) -> list[str]:
    optional = [c.label for c in OPTIONAL_COLUMNS if any(r.get(c.label) is not None for r in rows.values())]
    return [c.label for c in COLUMNS] + optional


def _run(tasks: list[Any], scorer: Any, out_dir: Path, seed: int, config: dict[str, Any], progress: bool):
    from ava.benchmarks.runner import run_tasks

    return run_tasks(tasks, scorer, out_dir, seed=seed, config=config, progress=progress)["tasks"]


def run_suite(
    name: str,
    scorer: Any,
    out_dir: str | Path,
    seed: int = 0,
    limit: int | None = None,
    settings: Mapping[str, Any] | None = None,
    progress: bool = True,
    config: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Run a suite with ``scorer`` and the uniform baseline; print and save the headline rows.

    The model's run directory is ``out_dir``; the baseline's is ``out_dir/baseline-uniform``.
    The rows are saved as ``paper_table.json`` and ``paper_table.csv`` in ``out_dir``.
    """
    from ava.io import write_json
    from ava.models.scorer import UniformScorer

    out_dir = Path(out_dir)
    t0 = time.perf_counter()
    by_bench_tasks, skipped = build_suite_tasks(name, seed=seed, limit=limit, settings=settings)
    for bench, reason in skipped.items():
        print(f"{_pretty(bench)} skipped: {reason}")
    tasks = [t for ts in by_bench_tasks.values() for t in ts]
    by_bench = {b: [t.name for t in ts] for b, ts in by_bench_tasks.items()}
    run_config = {**dict(config or {"settings": dict(settings or {})}), "suite": name}
    rows: dict[str, dict[str, float | None]] = {}
    if tasks:
        model_results = _run(tasks, scorer, out_dir, seed, run_config, progress)
        rows[str(run_config.get("model", scorer.identity))] = headline_row(model_results, by_bench, skipped)
        baseline = UniformScorer()
        if scorer.identity != baseline.identity:
            uniform_results = _run(tasks, baseline, out_dir / "baseline-uniform", seed,
                                   {"suite": name, "model": "uniform"}, False)
            rows["uniform"] = headline_row(uniform_results, by_bench, skipped)
    wall = time.perf_counter() - t0
    table = format_table(rows)
    print(f"\n{name} suite ({'samples' if name == 'quick' else 'full benchmarks'}; x100; GOQA Skew: lower is "
          f"better; GOQA similarity = 1 - Jensen-Shannon distance)")
    print(table)
    for bench, reason in skipped.items():
        print(f"  – {_pretty(bench)}: skipped ({reason})")
    print(f"wall time {wall:.0f} s; run directory {out_dir}")
    if "uniform" in rows and len(rows) > 1:
        print(f"compare in HTML: ava report {out_dir} {out_dir / 'baseline-uniform'}")
    summary = {
        "suite": name,
        "seed": seed,
        "limit": limit,
        "columns": table_columns(rows),
        "rows": rows,
        "skipped": skipped,
        "benchmarks": by_bench,
        "wall_s": round(wall, 1),
    }
    if out_dir.exists():
        write_json(out_dir / "paper_table.json", summary)
        from ava.benchmarks.runner import write_table

        columns = table_columns(rows)
        table_rows = [{"model": m, **{c: r.get(c) for c in columns}} for m, r in rows.items()]
        write_table(out_dir / "paper_table.csv", table_rows)
    return summary


def _pretty(bench: str) -> str:
    return {
        "opinionqa-xl": "OpinionQA-XL",
        "opinionqa": "OpinionQA",
        "globalopinionqa": "GlobalOpinionQA",
        "culturebank": "CultureBank",
        "culturenli": "CultureNLI",
    }.get(bench, bench)
