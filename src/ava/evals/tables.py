"""Headline tables from results dicts: rows for the terminal (rich) and for HTML."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any


def fmt_number(value: Any, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    if isinstance(value, int):
        return str(value)
    return f"{value:.{digits}f}"


def _finite(x: Any) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)


def fmt_interval(ci: Mapping[str, Any] | None, digits: int = 3) -> str:
    """``[low, high]``; a number without a real interval gets none, never ``[x, x]`` (which reads
    as certainty): ``not resampled`` (zero resamples, or one unit so every resample is the same
    data), ``no spread`` (every resample equals the point), ``no valid CI`` (the point falls
    outside every method's interval; the reason is in ``results.json``), or nothing at all."""
    if not ci:
        return ""
    low, high, reason = ci.get("low"), ci.get("high"), str(ci.get("reason") or "")
    if _finite(low) and _finite(high) and not (low == high == ci.get("value")):
        return f"[{fmt_number(low, digits)}, {fmt_number(high, digits)}]"
    if reason.startswith("not resampled") or ci.get("n_resamples") == 0:
        return "not resampled"
    if reason.startswith("no spread") or (_finite(low) and low == high):
        return "no spread"
    if reason and reason != "no point estimate":
        return "no valid CI"
    return ""


def headline_rows(results: Mapping[str, Any]) -> list[dict[str, str]]:
    """One row per (task, headline number): value, 95% CI, and how many units it is over."""
    rows = []
    for task, metrics in results.get("tasks", {}).items():
        intervals = metrics.get("intervals") or {}
        n = f"{metrics.get('units', '')} {metrics.get('unit', '')}".strip()
        for name, value in metrics.get("headline", {}).items():
            rows.append({"task": task, "metric": name, "value": fmt_number(value),
                         "ci95": fmt_interval(intervals.get(name)), "n": n})
    return rows


def print_headline(results: Mapping[str, Any], title: str = "") -> None:
    """The headline numbers as a rich table, with each task's letter-mass diagnostic."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title or None)
    for col, justify in (("task", "left"), ("metric", "left"), ("value", "right"), ("95% CI", "right"),
                         ("over", "right")):
        table.add_column(col, justify=justify)  # type: ignore[arg-type]
    for row in headline_rows(results):
        table.add_row(row["task"], row["metric"], row["value"], row["ci95"], row["n"])
    console = Console()
    if not console.is_terminal:
        console = Console(width=120)  # logs and pipes: never truncate metric names
    console.print(table)
    for task, metrics in results.get("tasks", {}).items():
        info, diag = metrics.get("task_info", {}), metrics.get("diagnostics") or {}
        rate = info.get("prompts_per_s")
        summary = (metrics.get("details") or {}).get("summary")
        if isinstance(summary, str):
            console.print(summary, highlight=False)
        console.print(
            f"{task}: {info.get('n_items', '?')} items ({info.get('n_cached', 0)} cached"
            + (f", {rate} per s" if rate else "")
            + (f"), letter mass {fmt_number(diag.get('letter_mass_mean'))}" if diag else ")")
        )
