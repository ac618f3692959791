"""The ``ava`` command: one sub-command per stage of the data's journey.

The grammar (docs/cli.md): ``ava data build-ads|build-surveys`` make data sets, ``ava train``
fine-tunes, ``ava score`` reads letter distributions, ``ava eval`` runs benchmarks, ``ava
report`` compares runs, ``ava export lm-eval`` writes the benchmarks for lm-evaluation-harness,
``ava experiment run`` runs the whole loop from a recipe (build, eval, train, eval, compare).
``ava build`` is the old spelling of ``ava data build-ads``, kept hidden for one release.
"""

from __future__ import annotations

import typer

from ava.evals.cli import eval_command
from ava.evals.export.cli import lm_eval_command
from ava.experiments.cli import app as experiment_app
from ava.instructions.cli import build
from ava.models.cli import score
from ava.reports.cli import report_command
from ava.surveys.cli import build_surveys_cmd
from ava.training.cli import train

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


if __name__ == "__main__":
    app()
