"""``ava eval``: score a model on a benchmark (or a suite of them) into a run directory."""

from __future__ import annotations

import re
import signal
import sys
from pathlib import Path
from typing import Any

import typer


def parse_settings(pairs: list[str] | None) -> dict[str, str]:
    """``--set key=value`` pairs -> dict (values stay strings; each task parses its own)."""
    settings: dict[str, str] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise typer.BadParameter(f"--set {pair!r}: expected key=value")
        settings[key.strip()] = value.strip()
    return settings


def default_out(name: str, model: str, adapter: str | None) -> Path:
    stem = Path(adapter).name if adapter else Path(model).name
    return Path("runs") / re.sub(r"[^A-Za-z0-9._-]+", "_", f"{name}-{stem}")


def _fail(message: str, code: int = 2) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


def eval_command(
    model: str = typer.Option("smollm2", "--model", "-m", help="built-in name, HF id or local path"),
    adapter: str | None = typer.Option(None, help="PEFT adapter folder"),
    benchmark: str | None = typer.Option(None, "--benchmark", "-b", help="e.g. opinionqa, opinionqa-xl"),
    suite: str | None = typer.Option(None, help="a suite of benchmarks: quick or paper"),
    steer: bool = typer.Option(False, help="also evaluate steering with group personas"),
    limit: int | None = typer.Option(None, min=1, help="first N questions of each task"),
    out: Path | None = typer.Option(None, "--out", "-o", help="run directory (default runs/<benchmark>-<model>)"),
    seed: int = typer.Option(0, help="seed for bootstrap resampling and any sampling"),
    chat: bool = typer.Option(False, help="wrap prompts in the model's chat template"),
    data: str | None = typer.Option(None, help="path to the benchmark's data (passed to the benchmark)"),
    set_: list[str] | None = typer.Option(None, "--set", help="benchmark setting key=value (repeatable)"),
    progress: bool = typer.Option(True, help="show progress bars"),
) -> None:
    """Evaluate a model; re-running the same command resumes (scored prompts are cached)."""
    from ava.benchmarks import registry

    if (benchmark is None) == (suite is None):
        raise _fail("give exactly one of --benchmark NAME or --suite NAME")
    settings = parse_settings(set_)
    name = benchmark or f"suite-{suite}"
    out_dir = out or default_out(name, model, adapter)
    config: dict[str, Any] = {
        "model": model,
        "adapter": adapter,
        "benchmark": benchmark,
        "suite": suite,
        "steer": steer,
        "chat": chat,
        "data": data,
        "settings": settings,
        "argv": sys.argv[1:],
    }
    if benchmark == "ava-tasks":
        from ava.benchmarks.ava_tasks import evaluate

        result = evaluate(model=model, adapter=adapter, data=data, out=out_dir, limit=limit, seed=seed)
        _print_results(result, out_dir)
        return

    factory = None
    if benchmark is not None:
        try:
            factory = registry.get(benchmark)
        except registry.UnknownBenchmark as exc:
            raise _fail(str(exc)) from None
    tasks = None
    if factory is not None:
        try:
            tasks = factory(limit=limit, steer=steer, seed=seed, data=data, **settings)
        except (FileNotFoundError, ValueError) as exc:
            raise _fail(str(exc)) from None

    from ava.benchmarks.runner import RunDirMismatch, check_run_dir
    from ava.models import ModelError, load_scorer

    signal.signal(signal.SIGTERM, _terminate)  # `kill` marks the run interrupted, like Ctrl-C

    try:
        scorer = load_scorer(model, adapter=adapter, chat=chat)
    except (ModelError, FileNotFoundError, ValueError) as exc:
        raise _fail(str(exc)) from None
    try:
        if tasks is not None:
            check_run_dir(out_dir, scorer.identity)  # before any work
            from ava.benchmarks.runner import run_tasks

            results = run_tasks(tasks, scorer, out_dir, limit=limit, seed=seed, config=config, progress=progress)
        else:
            from ava.benchmarks.suites import run_suite

            results = run_suite(
                str(suite), scorer=scorer, out_dir=out_dir, seed=seed, limit=limit, settings=settings,
                progress=progress, config=config,
            )
    except RunDirMismatch as exc:
        raise _fail(str(exc)) from None
    except KeyboardInterrupt:
        raise _fail(f"interrupted; nothing scored is lost: re-run the same command to resume ({out_dir})",
                    130) from None
    _print_results(results, out_dir)


def _terminate(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def _print_results(results: Any, out_dir: Path) -> None:
    from ava.reports.tables import print_headline

    if isinstance(results, dict) and "tasks" in results:
        print_headline(results)
    typer.echo(f"run directory: {out_dir}")
