"""Benchmark names -> the function that builds their tasks (imported lazily).

Each entry is "module:function". The function takes the options of ``ava eval`` it needs
as keyword arguments and returns a list of tasks.
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Callable
from typing import Any

BENCHMARKS: dict[str, str] = {
    # filled in by each benchmark module's owner, e.g.
    # "opinionqa": "ava.benchmarks.opinionqa:make_tasks",
    "globalopinionqa": "ava.benchmarks.globalopinionqa:make_tasks",
    "culturenli": "ava.benchmarks.culturenli:make_tasks",
    "culturebank": "ava.benchmarks.culturebank:make_tasks",
    "opinionqa": "ava.benchmarks.opinionqa:make_tasks", "opinionqa-xl": "ava.benchmarks.opinionqa_xl:make_tasks",
}


class UnknownBenchmark(ValueError):
    pass


def get(name: str) -> Callable[..., Any]:
    """The task factory of a benchmark, or an error naming the closest known benchmarks."""
    if name not in BENCHMARKS:
        close = difflib.get_close_matches(name, BENCHMARKS, n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise UnknownBenchmark(f"unknown benchmark {name!r} (known: {', '.join(sorted(BENCHMARKS))}){hint}")
    module, func = BENCHMARKS[name].split(":")
    return getattr(importlib.import_module(module), func)
