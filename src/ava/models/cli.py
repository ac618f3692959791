"""``ava score``: option-letter distributions for a JSONL file of requests."""

from __future__ import annotations

import shutil
from pathlib import Path

import typer

from ava.models.engine import EngineConfig
from ava.models.loading import ModelError
from ava.models.requests_io import finish, partial_path, read_done_ids, read_requests, scored_to_json


def score(
    model: str = typer.Option("smollm2", "--model", "-m", help="built-in name, HF id or local path"),
    input: Path = typer.Option(..., "--input", "-i", exists=True, dir_okay=False, help="requests JSONL"),
    output: Path = typer.Option(..., "--output", "-o", help="scores JSONL (written when complete)"),
    adapter: str | None = typer.Option(None, help="PEFT adapter folder"),
    chat: bool = typer.Option(False, help="wrap prompts in the model's chat template"),
    skip_bad: bool = typer.Option(False, help="skip malformed lines instead of stopping"),
    batch_tokens: int | None = typer.Option(None, help="token budget per batch (default: by device)"),
    chunk: int = typer.Option(512, help="requests scored and saved per step"),
) -> None:
    """Score each request's option letters; resumes an interrupted run."""
    requests, bad = read_requests(input)
    for b in bad[:20]:
        typer.echo(f"{input}: {b}", err=True)
    if bad:
        more = f" (and {len(bad) - 20} more)" if len(bad) > 20 else ""
        if not skip_bad:
            typer.echo(f"error: {len(bad)} malformed line(s){more}; fix them or pass --skip-bad", err=True)
            raise typer.Exit(2)
        typer.echo(f"skipping {len(bad)} malformed line(s){more}", err=True)
    partial = partial_path(output)
    if output.exists() and not partial.exists():
        shutil.copyfile(output, partial)  # extending a finished run: start from its results
    done = set(read_done_ids(partial))
    todo = [r for r in requests if r.id not in done]
    if not todo:
        if partial.exists():
            finish(output)
        typer.echo(f"all {len(requests)} requests already scored in {output}")
        return
    if done:
        typer.echo(f"resuming: {len(done)} already scored, {len(todo)} to go", err=True)
    from ava.models.scorer import load_scorer

    try:
        scorer = load_scorer(model, adapter=adapter, chat=chat, config=EngineConfig(max_batch_tokens=batch_tokens))
        from tqdm.auto import tqdm

        output.parent.mkdir(parents=True, exist_ok=True)
        with open(partial, "a", encoding="utf-8") as fh, tqdm(total=len(todo), unit="prompt", desc="scoring") as bar:
            for start in range(0, len(todo), chunk):
                part = todo[start : start + chunk]
                for item in scorer.score(part):
                    fh.write(scored_to_json(item) + "\n")
                fh.flush()
                bar.update(len(part))
    except (ModelError, ValueError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    finish(output)
    typer.echo(f"wrote {len(requests)} scores to {output}")
