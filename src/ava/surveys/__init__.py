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
from ava.surveys.errors import SurveyDataError, SurveyInputError

BENCHMARK_NAMES = ("opinionqa", "opinionqa-xl")

__all__ = [
    "BENCHMARK_NAMES", "OVERALL", "GroupDistribution", "SurveyDataError", "SurveyInputError", "SurveyQuestion",
    "build_surveys", "bundled_dir", "load_benchmark",
]


def bundled_dir() -> Path:
    """Where the package keeps its compact build of both benchmarks."""
    return bundled("surveys", "bundle")


@lru_cache(maxsize=8)
def _load(directory: str, name: str, stamp: int) -> tuple[SurveyQuestion, ...]:
    """``stamp``: the manifest's mtime, so a directory rebuilt in place is read again."""
    from ava.surveys.store import check_groups, read_benchmark

    questions = tuple(read_benchmark(Path(directory) / name))
    check_groups(name, Path(directory), list(questions))
    return questions


def load_benchmark(name: str, path: str | Path | None = None) -> list[SurveyQuestion]:
    """The questions of benchmark ``name`` ("opinionqa" or "opinionqa-xl"), in build order.

    ``path``: a build directory from ``ava data build-surveys`` (default: the bundled copy).
    Questions of OpinionQA's steering set carry the tag "steer500"; coarse / fine OpinionQA topics
    are tags "cg:<topic>" / "fg:<topic>"; unweighted waves are tagged "unweighted".

    A build directory is finished when its run record (``run.json``) says complete, as for every
    output (:func:`ava.runs.is_complete`). The bundled copy is recognised by its place (the package's
    ``bundled_dir()``, given or by default) and has no run record: it is a release, not a run, and
    a record would hold the times of the build that made it. What stands for "complete" there is its
    ``manifest.json`` (``complete: true``, no errors), which ``tests/test_surveys_real.py`` checks
    byte for byte against a fresh build from the raw files.

    Raises ``FileNotFoundError`` when ``path`` is not a survey build (neither a run record nor a
    manifest) or does not hold this benchmark, and ``SurveyDataError`` (a ``ValueError``) for a build
    that must not be scored: unfinished (its run record says running, interrupted or failed, or it
    has none), its manifest says ``complete: false`` or lists errors, it has no questions, or
    questions without any respondent in any demographic group. Each message says what to do.
    """
    from ava.surveys.store import SurveyBuild, finished_manifest

    if name not in BENCHMARK_NAMES:
        raise ValueError(f"unknown survey benchmark {name!r}; choose one of {', '.join(BENCHMARK_NAMES)}")
    directory = Path(path) if path is not None else bundled_dir()
    manifest = finished_manifest(directory, bundled=directory.resolve() == bundled_dir().resolve())
    folder = SurveyBuild(directory)
    if not folder.questions(name).is_file():
        why = " (built with --sav-only)" if manifest.get("sav_only") else " (see its manifest.json)"
        raise FileNotFoundError(f"{directory}: benchmark {name!r} was not built{why}")
    stamp = folder.manifest.stat().st_mtime_ns
    return list(_load(str(directory.resolve()), name, stamp))


def build_surveys(*args, **kwargs):
    """See :func:`ava.surveys.build.build_surveys` (imported lazily: it pulls in pyreadstat)."""
    from ava.surveys.build import build_surveys as _build

    return _build(*args, **kwargs)
