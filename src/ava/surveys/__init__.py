"""Survey benchmarks built from raw Pew ATP files: questions, groups, weighted distributions.

``load_benchmark("opinionqa")`` / ``load_benchmark("opinionqa-xl")`` read the compact copy shipped
in the package (works offline on a fresh install); pass ``path`` to read a directory made by
``ava data build-surveys`` instead. ``build_surveys`` is the builder's Python API.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from ava.contracts.surveys import OVERALL, GroupDistribution, SurveyQuestion
from ava.paths import bundled

BENCHMARK_NAMES = ("opinionqa", "opinionqa-xl")

__all__ = [
    "BENCHMARK_NAMES", "OVERALL", "GroupDistribution", "SurveyQuestion", "build_surveys", "bundled_dir",
    "load_benchmark",
]


def bundled_dir() -> Path:
    """Where the package keeps its compact build of both benchmarks."""
    return bundled("surveys", "bundle")


@lru_cache(maxsize=8)
def _load(directory: str, name: str) -> tuple[SurveyQuestion, ...]:
    from ava.surveys.store import read_benchmark

    return tuple(read_benchmark(Path(directory) / name))


def load_benchmark(name: str, path: str | Path | None = None) -> list[SurveyQuestion]:
    """The questions of benchmark ``name`` ("opinionqa" or "opinionqa-xl"), in build order.

    ``path``: a build directory from ``ava data build-surveys`` (default: the bundled copy).
    Questions of OpinionQA's steering set carry the tag "steer500"; coarse / fine OpinionQA topics
    are tags "cg:<topic>" / "fg:<topic>"; unweighted waves are tagged "unweighted".
    """
    if name not in BENCHMARK_NAMES:
        raise ValueError(f"unknown survey benchmark {name!r}; choose one of {', '.join(BENCHMARK_NAMES)}")
    directory = Path(path) if path is not None else bundled_dir()
    if not (directory / "manifest.json").is_file():
        raise FileNotFoundError(
            f"{directory}: no manifest.json, so not a finished survey build; run "
            "`ava data build-surveys --pew-dir DIR --out DIR` (or finish the interrupted one)")
    if not (directory / name / "questions.parquet").is_file():
        raise FileNotFoundError(f"{directory}: benchmark {name!r} was not built (see its manifest.json errors)")
    return list(_load(str(directory.resolve()), name))


def build_surveys(*args, **kwargs):
    """See :func:`ava.surveys.build.build_surveys` (imported lazily: it pulls in pyreadstat)."""
    from ava.surveys.build import build_surveys as _build

    return _build(*args, **kwargs)
