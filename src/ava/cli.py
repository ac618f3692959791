"""The ``ava`` command: one sub-command per stage of the data's journey.

The grammar (docs/cli.md): ``ava data build-ads|build-surveys`` make data sets, ``ava train``
fine-tunes, ``ava score`` reads letter distributions, ``ava eval`` runs benchmarks, ``ava
report`` compares runs, ``ava export lm-eval`` writes the benchmarks for lm-evaluation-harness,
``ava experiment run`` runs the whole loop from a recipe (build, eval, train, eval, compare).
``ava build`` is the old spelling of ``ava data build-ads``, kept hidden for one release.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import typer
from typer.core import TyperCommand

from ava.evals.cli import eval_command
from ava.evals.export.cli import lm_eval_command
from ava.experiments.cli import app as experiment_app
from ava.instructions.cli import build
from ava.models.cli import score
from ava.reports.cli import report_command
from ava.surveys.cli import build_surveys_cmd
from ava.training.cli import train


class OnceCommand(TyperCommand):
    """A command that refuses an option given twice, before anything runs.

    Why: click keeps the last value of a single-valued option and every value of a repeatable
    one, so ``--benchmark X --benchmark X`` ran X (and recorded the flag twice), ``--benchmark X
    --benchmark Y`` silently ran Y, and ``--wave W26 --wave W26`` listed a wave twice. A
    repeatable option may be given again with another value (``--ads a --ads b``), never the same.
    """

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        repeated = _given_twice(self.params, args)
        if repeated:
            typer.echo(f"error: {repeated}", err=True)
            raise typer.Exit(2)
        return super().parse_args(ctx, args)


def _given_twice(params: list[Any], args: list[str]) -> str | None:
    """'--flag VALUE given twice' (or '--flag given twice (A and B)') for the first option repeated.
    (Options are told by ``param_type_name``: typer ships its own copy of click's classes.)"""
    takes_value = {name: p for p in params
                   if p.param_type_name == "option" and not p.is_flag and not getattr(p, "count", False)
                   for name in [*p.opts, *p.secondary_opts]}
    seen: dict[str, list[str]] = {}
    i = 0
    while i < len(args) and args[i] != "--":
        name, eq, inline = args[i].partition("=")
        option = takes_value.get(name)
        if option is not None:
            value = inline if eq else (args[i + 1] if i + 1 < len(args) else "")
            i += 0 if eq else 1
            seen.setdefault(option.opts[0], []).append(value)
        i += 1
    for flag, values in seen.items():
        option = takes_value[flag]
        twice = [v for v, n in Counter(values).items() if n > 1]
        if twice:
            return f"{_longest(option)} {twice[0]} given twice: give it once"
        if len(values) > 1 and not option.multiple:
            return f"{_longest(option)} given twice ({' and '.join(values)}): it takes one value; give it once"
    return None


def _longest(option: Any) -> str:
    return max(option.opts, key=len)


def _once(*apps: Any) -> None:
    """Every command of these Typer apps refuses an option given twice (:class:`OnceCommand`)."""
    for sub in apps:
        for command in sub.registered_commands:
            if command.cls in (None, TyperCommand):
                command.cls = OnceCommand


app = typer.Typer(
    name="ava",
    help="align-via-actions: build behaviour instructions from ad libraries, fine-tune, and measure "
    "opinion and culture alignment.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)

data_app = typer.Typer(help="Build data sets: the AVA instruction dataset, the survey benchmarks.",
                       no_args_is_help=True)
data_app.command("build-ads", help="Build the AVA instruction dataset from ad-library files.")(build)
data_app.command("build-surveys", help="Build OpinionQA / OpinionQA-XL from raw Pew ATP files.")(build_surveys_cmd)

export_app = typer.Typer(help="Write ava's benchmarks for other evaluation harnesses.", no_args_is_help=True)
export_app.command("lm-eval", help="Task YAMLs + utils.py for lm-evaluation-harness (--include_path DIR).")(
    lm_eval_command)


@app.callback()
def main() -> None:
    """align-via-actions."""


app.add_typer(data_app, name="data")
app.command(help="Fine-tune a model on the behaviour instructions (TRL SFT, LoRA or full).")(train)
app.command(help="Option-letter distributions for a JSONL file of requests.")(score)
app.command("eval", help="Evaluate a model on a benchmark or suite (resumable run directory).")(eval_command)
app.command("report", help="One self-contained HTML page comparing run directories.")(report_command)
app.add_typer(export_app, name="export")
app.add_typer(experiment_app, name="experiment")
app.command("build", hidden=True, help="Old spelling of `ava data build-ads` (kept for one release).")(build)
_once(app, data_app, export_app, experiment_app)


if __name__ == "__main__":
    app()
