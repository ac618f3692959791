"""The ``ava`` command: one sub-command per stage of the data's journey."""

from __future__ import annotations

import typer

from ava.models.cli import score

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


if __name__ == "__main__":
    app()
