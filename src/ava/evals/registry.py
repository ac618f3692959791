"""Benchmark names -> their task factory, the ``--set`` settings they take, what they support.

Adding a benchmark is one module in :mod:`ava.evals.tasks` (with ``make_tasks(options)`` and a
``SETTINGS`` dict) plus one line here. Factories are imported lazily: a benchmark's
dependencies are loaded only when it is evaluated.
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Benchmark:
    """``module``: where ``make_tasks`` and ``SETTINGS`` live; ``steer``: has steering tasks
    (``--steer``); ``generates``: its items are answered in free text (needs a language model,
    its own prompt format: no ``--chat``)."""

    name: str
    module: str
    steer: bool = False
    generates: bool = False

    def factory(self) -> Callable[..., list[Any]]:
        return importlib.import_module(self.module).make_tasks

    def settings(self) -> Mapping[str, str]:
        return importlib.import_module(self.module).SETTINGS


BENCHMARKS: dict[str, Benchmark] = {b.name: b for b in (
    Benchmark("opinionqa", "ava.evals.tasks.opinionqa", steer=True),
    Benchmark("opinionqa-xl", "ava.evals.tasks.opinionqa_xl", steer=True),
    Benchmark("globalopinionqa", "ava.evals.tasks.globalopinionqa"),
    Benchmark("culturenli", "ava.evals.tasks.culturenli"),
    Benchmark("culturebank", "ava.evals.tasks.culturebank"),
    Benchmark("ava-tasks", "ava.evals.tasks.ava_tasks", generates=True),
)}


class UnknownName(ValueError):
    """A benchmark, suite or setting name that does not exist; the message lists the known ones."""


def unknown(kind: str, name: str, known: Iterable[str]) -> UnknownName:
    """The error for an unknown name: the known names, and the closest ones."""
    known = sorted(known)
    close = difflib.get_close_matches(name, known, n=3)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    return UnknownName(f"unknown {kind} {name!r} (known: {', '.join(known)}){hint}")


def get(name: str) -> Benchmark:
    """A benchmark by name, or an error naming the closest known benchmarks."""
    if name not in BENCHMARKS:
        raise unknown("benchmark", name, BENCHMARKS)
    return BENCHMARKS[name]


def check_settings(settings: Mapping[str, str], benchmarks: Iterable[Benchmark]) -> None:
    """Refuse a ``--set`` key that none of ``benchmarks`` takes (it would be ignored silently)."""
    known: dict[str, str] = {}
    for bench in benchmarks:
        known.update(bench.settings())
    for key in settings:
        if key not in known:
            raise unknown("setting", key, known)
