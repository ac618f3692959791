"""``ava export lm-eval DIR``: write ava's benchmarks as lm-evaluation-harness tasks."""

from __future__ import annotations

from pathlib import Path

import typer


def lm_eval_command(
    out: Path = typer.Argument(..., help="folder to write the task YAMLs, utils.py and README.md into"),
    benchmark: list[str] | None = typer.Option(None, "--benchmark", "-b",
                                               help="a letter-scored benchmark to export (repeatable; default all)"),
    data: str | None = typer.Option(None, help="the data of the one --benchmark (recorded as an absolute path)"),
    limit: int | None = typer.Option(None, min=1, help="units per task, as ava eval --limit (ava's selection)"),
    seed: int = typer.Option(0, help="seed of the selection, as ava eval --seed"),
    set_: list[str] | None = typer.Option(None, "--set", help="benchmark setting key=value, as ava eval (repeatable)"),
    restart: bool = typer.Option(False, "--restart", help="discard what DIR holds and write it anew"),
) -> None:
    """Tasks for `lm_eval --include_path DIR`: the prompts ava scores, ava's metrics (lm-eval 0.4.13)."""
    from ava.evals.cli import EvalUsageError, parse_settings
    from ava.evals.data import DataError
    from ava.evals.export.lm_eval import ExportError, plan_export, write_export
    from ava.evals.registry import UnknownName
    from ava.io import os_error_line
    from ava.runs import RunRefused, check_apart_each

    try:
        settings = parse_settings(set_)
        tasks, skipped = plan_export(benchmark, data, limit, seed, settings)
        check_apart_each(out, [("--data", data)], "DIR")  # before a file is written (data_root: see docs/cli.md)
        for bench, reason in skipped.items():
            typer.echo(f"{bench} skipped: {reason}")
        options = {"benchmarks": sorted(benchmark or []), "data": data, "limit": limit, "seed": seed,
                   "settings": settings}
        write_export(out, tasks, skipped, options=options, restart=restart)
    except KeyboardInterrupt:
        typer.echo(f"error: interrupted; rerun the same command to write {out}", err=True)
        raise typer.Exit(130) from None
    except (EvalUsageError, ExportError, UnknownName, RunRefused, DataError, ValueError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    except OSError as exc:  # a missing file, a full disk, a permission, a symlink loop: one line naming the file
        typer.echo(f"error: {os_error_line(exc, out)}", err=True)
        raise typer.Exit(2) from None
    for task in tasks:
        typer.echo(f"{task.name}: {task.spec['n_docs']} prompts; metrics {', '.join(task.metrics)}")
    names = ",".join(t.name for t in tasks)
    typer.echo(f"wrote {len(tasks)} task(s) to {out}; run: lm_eval --model hf --model_args pretrained=MODEL "
               f"--include_path {out} --tasks {names} [--apply_chat_template]")
