"""The ``ava`` command: one sub-command per stage of the data's journey."""

from __future__ import annotations

import typer

from ava.benchmarks.cli import eval_command
from ava.instructions.cli import build
from ava.models.cli import score
from ava.reports.cli import report_command
from ava.surveys.cli import data_app
from ava.training.cli import train

app = typer.Typer(
    name="ava",
    help="align-via-actions: build behaviour instructions from ad libraries, fine-tune, and measure "
    "opinion and culture alignment.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


@app.callback()
def main() -> None:
    """align-via-actions."""


app.command(help="Option-letter distributions for a JSONL file of requests.")(score)
app.add_typer(data_app, name="data")
app.command(help="Build the AVA instruction dataset from ad-library files.")(build)
app.command(help="Fine-tune a model on the behaviour instructions (TRL SFT, LoRA or full).")(train)
app.command("eval", help="Evaluate a model on a benchmark or suite (resumable run directory).")(eval_command)
app.command("report", help="One self-contained HTML page comparing run directories.")(report_command)


if __name__ == "__main__":
    app()
