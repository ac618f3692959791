"""Benchmark suites: the paper's headline table (``--suite paper``) or a quick sample of it.

``run_suite`` builds every benchmark of the table from the registry, scores them with the
model and with the ``uniform`` baseline (free), and prints one row per scorer shaped like the
method's headline table. A benchmark that cannot be built (data missing, or broken) is
skipped with its reason printed and saved: the rest still runs.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ava.evals import registry
from ava.evals.data import DataError
from ava.evals.task import GenerationTask, TaskOptions, TextTask
from ava.models.scorer import Scorer
from ava.surveys.errors import SurveyDataError

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
    """A benchmark in a suite: whether it steers, and per-task unit limits (``TaskOptions.task_limits``)."""

    steer: bool = False
    task_limits: dict[str, int] = field(default_factory=dict)


SUITES: dict[str, dict[str, Entry]] = {
    # Units: survey questions (the first N; steering: questions x every persona), GOQA questions
    # (a seeded sample, each with its countries), CNLI pairs (x 2 cultures), CultureBank held-out
    # rows per source.
    "quick": {
        "opinionqa-xl": Entry(True, {"opinionqa-xl": 10, "opinionqa-xl-steer": 1}),
        "opinionqa": Entry(True, {"opinionqa": 10, "opinionqa-steer": 1}),
        "globalopinionqa": Entry(False, {"globalopinionqa": 20}),
        "culturebank": Entry(False, {"culturebank": 25}),
        "culturenli": Entry(False, {"culturenli": 25}),
    },
    "paper": {
        "opinionqa-xl": Entry(True),
        "opinionqa": Entry(True),
        "globalopinionqa": Entry(),
        "culturebank": Entry(),
        "culturenli": Entry(),
    },
}


def check_suite(name: str) -> dict[str, Entry]:
    if name not in SUITES:
        raise registry.unknown("suite", name, SUITES)
    return SUITES[name]


def suite_benchmarks(name: str) -> list[registry.Benchmark]:
    """The registered benchmarks of a suite (for checking ``--set`` keys against them)."""
    return [registry.BENCHMARKS[b] for b in check_suite(name) if b in registry.BENCHMARKS]


def build_suite_tasks(
    name: str, seed: int = 0, limit: int | None = None, settings: Mapping[str, str] | None = None
) -> tuple[dict[str, list[Any]], dict[str, str]]:
    """Tasks per benchmark, and the reason each benchmark that could not be built was skipped."""
    entries = check_suite(name)
    tasks: dict[str, list[Any]] = {}
    skipped: dict[str, str] = {}
    for bench, entry in entries.items():
        try:
            benchmark = registry.get(bench)
        except registry.UnknownName as exc:
            skipped[bench] = f"not available in this installation ({exc})"
            continue
        own = set(benchmark.settings())
        options = TaskOptions(limit=limit, steer=entry.steer, seed=seed, task_limits=entry.task_limits,
                              settings={k: v for k, v in (settings or {}).items() if k in own})
        try:
            tasks[bench] = list(benchmark.factory()(options))
        except (FileNotFoundError, DataError, SurveyDataError) as exc:  # the data's own reason, as it is
            skipped[bench] = str(exc)
        except Exception as exc:  # a suite reports a broken benchmark and runs the rest
            skipped[bench] = f"could not be built: {type(exc).__name__}: {exc}"
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


def run_suite(
    name: str,
    scorer: Scorer,
    out_dir: str | Path,
    seed: int = 0,
    limit: int | None = None,
    settings: Mapping[str, str] | None = None,
    progress: bool = True,
    config: Mapping[str, Any] | None = None,
    restart: bool = False,
    generation_model: Any = None,
) -> dict[str, Any]:
    """Run a suite with ``scorer`` and the uniform baseline; print and save the headline rows.

    The model's run directory is ``out_dir``; the baseline's is ``out_dir/baseline-uniform``
    (letter tasks only: the uniform model cannot generate; ``--expression verbalized|sampled``
    opinion tasks are not letter tasks). The rows are saved as
    ``paper_table.json`` and ``paper_table.csv`` in ``out_dir`` once both runs are complete.
    """
    from ava.evals.runner import run_tasks
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
    warnings: list[str] = []
    if tasks:
        results = run_tasks(tasks, scorer, out_dir, seed=seed, config=run_config, progress=progress,
                            restart=restart, generation_model=generation_model)
        rows[str(run_config.get("model", scorer.identity))] = headline_row(results["tasks"], by_bench, skipped)
        warnings = [w for t in results["tasks"].values()
                    if (w := ((t.get("details") or {}).get("expression") or {}).get("warning"))]
        baseline = UniformScorer()
        # letter tasks only: the uniform model writes no text (a text-read opinion task's result
        # carries the uniform distribution's numbers over its own parsed questions)
        letter_tasks = [t for t in tasks if not isinstance(t, GenerationTask | TextTask)]
        if scorer.identity != baseline.identity and letter_tasks:
            uniform = run_tasks(letter_tasks, baseline, out_dir / "baseline-uniform", seed=seed,
                                config={"suite": name, "model": "uniform"}, progress=False, restart=restart)
            rows["uniform"] = headline_row(uniform["tasks"], by_bench, skipped)
    summary = {
        "suite": name,
        "seed": seed,
        "limit": limit,
        "columns": table_columns(rows),
        "rows": rows,
        "skipped": skipped,
        "benchmarks": by_bench,
        "framing": run_config.get("framing"),
        "wall_s": round(time.perf_counter() - t0, 1),
        "warnings": warnings,
    }
    _print_summary(summary, out_dir)
    if out_dir.exists():
        _save_summary(summary, out_dir)
    return summary


def _print_summary(summary: Mapping[str, Any], out_dir: Path) -> None:
    name, rows = summary["suite"], summary["rows"]
    print(f"\n{name} suite ({'samples' if name == 'quick' else 'full benchmarks'}; x100; GOQA Skew: lower is "
          f"better; GOQA similarity = 1 - Jensen-Shannon distance)")
    print(format_table(rows))
    if summary.get("framing"):
        print(f"  {next(iter(rows), 'model')}: {summary['framing']} framing (--framing chat|plain to choose)")
    for bench, reason in summary["skipped"].items():
        print(f"  – {_pretty(bench)}: skipped ({reason})")
    print(f"wall time {summary['wall_s']:.0f} s; run directory {out_dir}")
    if "uniform" in rows and len(rows) > 1:
        print(f"compare in HTML: ava report {out_dir} {out_dir / 'baseline-uniform'}")


def _save_summary(summary: Mapping[str, Any], out_dir: Path) -> None:
    from ava.contracts.results import RunDirectory
    from ava.evals.rundir import write_table
    from ava.io import write_json

    run = RunDirectory(out_dir)
    write_json(run.paper_table_json, summary)
    columns = summary["columns"]
    write_table(run.paper_table_csv,
                [{"model": m, **{c: r.get(c) for c in columns}} for m, r in summary["rows"].items()])


def _pretty(bench: str) -> str:
    return {
        "opinionqa-xl": "OpinionQA-XL",
        "opinionqa": "OpinionQA",
        "globalopinionqa": "GlobalOpinionQA",
        "culturebank": "CultureBank",
        "culturenli": "CultureNLI",
    }.get(bench, bench)
