"""``ava score``: option-letter distributions for a JSONL file of requests.

The output is bound to the model, the requests and the options that change scores (its run
record ``<out>.run.json``); a rerun resumes, a rerun with other ones is refused with what
differs (``--restart`` starts over); one writer at a time; an empty input is an error.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import typer

from ava.contracts.scoring import ScoreRequest
from ava.models.backends.cli_options import (
    ApiKeyEnvOption,
    BackendOption,
    BaseUrlOption,
    ConcurrencyOption,
    MinCoverageOption,
    ModeOption,
    RequestTimeoutOption,
    RetriesOption,
    ServedModelOption,
    TopKOption,
    backend_settings,
)
from ava.models.backends.factory import check_combination
from ava.models.backends.settings import BackendSettings
from ava.models.engine import EngineConfig
from ava.models.loading import ModelError
from ava.models.options import DeviceMapOption, DTypeOption, ModelOptions, RevisionOption
from ava.models.requests_io import partial_path, read_requests, requests_hash, scored_row
from ava.models.threads import free_threads

OWNED = ("", ".partial")
"""Beside the run record: the output itself and its partial file (removed by ``--restart``)."""


class ScoreInputError(ValueError):
    """An input that cannot be scored as it is; the message names the file and what to do."""


def score(
    model: str = typer.Option("smollm2", "--model", "-m", help="built-in name, HF id or local path"),
    input: Path = typer.Option(..., "--input", "-i", exists=True, dir_okay=False, help="requests JSONL"),
    out: Path | None = typer.Option(None, "--out", "-o", help="scores JSONL (written when complete)"),
    output: Path | None = typer.Option(None, "--output", hidden=True, help="old spelling of --out"),
    adapter: str | None = typer.Option(None, help="PEFT adapter folder"),
    chat: bool = typer.Option(False, help="wrap prompts in the model's chat template"),
    skip_bad: bool = typer.Option(False, help="skip malformed lines instead of stopping"),
    batch_tokens: int | None = typer.Option(None, help="token budget per batch (default: by device)"),
    chunk: int = typer.Option(512, min=1, help="requests scored and saved per step"),
    threads: int | None = typer.Option(
        None, min=1, help="CPU threads (default: the cores free when the output starts, kept until it is complete, "
        "so a resumed output equals an uninterrupted one bit for bit)"),
    truncate: str | None = typer.Option(
        None, "--truncate", help="left: cut a prompt longer than the model's context window from the left "
        "(default: such a prompt is refused, naming its id, length and the limit)"),
    dtype: DTypeOption = "auto",
    device_map: DeviceMapOption = None,
    revision: RevisionOption = None,
    restart: bool = typer.Option(False, "--restart", help="discard what --out holds and start over"),
    progress: bool = typer.Option(True, help="show a progress bar"),
    backend: BackendOption = "transformers",
    mode: ModeOption = "exact",
    base_url: BaseUrlOption = None,
    served_model: ServedModelOption = None,
    api_key_env: ApiKeyEnvOption = None,
    top_k: TopKOption = 20,
    min_coverage: MinCoverageOption = 0.95,
    concurrency: ConcurrencyOption = 16,
    request_timeout: RequestTimeoutOption = 300.0,
    retries: RetriesOption = 5,
) -> None:
    """Score each request's option letters; rerunning the same command resumes."""
    from ava.io import os_error_line
    from ava.runs import Output, RunRefused, check_apart, check_apart_each, check_writable

    try:
        if truncate not in (None, "left"):
            raise ScoreInputError(f"--truncate {truncate!r}: the one choice is left (cut the prompt's start)")
        loading = ModelOptions(model, adapter, dtype, device_map, revision)
        settings = backend_settings(model, backend, mode, base_url, served_model, api_key_env, top_k, min_coverage,
                                    concurrency, request_timeout, retries)
        check_combination(loading, settings)
        target = _one_output(out, output)
        check_writable(Output(target, folder=False))  # the output's own place first (not under a file, ...)
        check_apart(target, [input], "--out", "--input")  # then: scores written over their requests lose them
        check_apart_each(target, [("--model", model), ("--adapter", adapter)])
        requests = _read(input, skip_bad)
        config = EngineConfig(max_batch_tokens=batch_tokens, truncate=truncate, threads=threads)
        n = _run(requests, target, loading, chat, config, chunk, restart, progress, settings)
    except KeyboardInterrupt:
        typer.echo("error: interrupted; every finished chunk is saved: rerun the same command to resume", err=True)
        raise typer.Exit(130) from None
    except (ScoreInputError, RunRefused, ModelError, ValueError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    except OSError as exc:
        typer.echo(f"error: {os_error_line(exc, out or output)}", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"wrote {n} scores to {target}")


def _settle_layout(run: Any, layout: dict[str, Any], scorer: Any, resuming: bool) -> int:
    """Fix the chunk size, batch token budget and CPU threads for the output's whole life (a resume
    keeps the ones it started with), note them in its record at once, hand them to the scorer;
    returns the chunk size."""
    from ava.runs import RunStatus

    if resuming and run.previous is not None:
        layout = _resumed_layout(run, layout)
    if layout["threads"] is None and scorer.backend == "transformers":
        layout["threads"] = free_threads()  # chosen once, kept until the output is complete
    run.update_info(layout)
    run.set_status(RunStatus.RUNNING)  # the record names them now: a SIGKILL must not lose them
    if scorer.config is not None:
        scorer.config = replace(scorer.config, max_batch_tokens=layout["batch_tokens"], threads=layout["threads"])
    return int(layout["chunk"])


def _resumed_layout(run: Any, layout: dict[str, Any]) -> dict[str, Any]:
    """The chunk size, batch token budget and CPU threads an interrupted output was started with,
    which its resume keeps whatever this command says: which prompts share a batch, and how many
    threads split each operator, move a model's scores in their last bits, and a resumed output
    equals an uninterrupted one bit for bit. Records from before these were noted lack them: the
    given ones are used."""
    kept = {k: run.previous.info.get(k, v) for k, v in layout.items()}
    if kept != layout:
        shown = " ".join(f"--{k.replace('_', '-')} {v}" for k, v in kept.items() if v is not None)
        typer.echo(f"note: resuming with {shown} as this output was started (other values would score the "
                   "remaining prompts in other batches or threads, a few bits apart)", err=True)
    return kept


def _one_output(out: Path | None, output: Path | None) -> Path:
    if out is not None and output is not None and out != output:
        raise ScoreInputError("give --out once (--output is its old spelling)")
    if out is None and output is None:
        raise ScoreInputError("give --out FILE: where the scores are written")
    return out or output  # type: ignore[return-value]


def _read(path: Path, skip_bad: bool) -> list[ScoreRequest]:
    """The valid requests; bad lines are printed with their numbers and stop the run unless skipped."""
    requests, bad = read_requests(path)
    for b in bad[:20]:
        typer.echo(f"{path}: {b}", err=True)
    more = f" (and {len(bad) - 20} more)" if len(bad) > 20 else ""
    if bad and not skip_bad:
        raise ScoreInputError(f"{path}: {len(bad)} malformed line(s){more}, the first {bad[0]}; fix them or pass "
                              "--skip-bad")
    if bad:
        typer.echo(f"skipping {len(bad)} malformed line(s){more}", err=True)
    if not requests:
        raise ScoreInputError(f"{path}: no requests to score (the file is empty or every line was skipped)")
    return requests


def _run(requests: list[ScoreRequest], out: Path, loading: ModelOptions, chat: bool, config: EngineConfig,
         chunk: int, restart: bool, progress: bool, settings: BackendSettings | None = None) -> int:
    """Score what the output does not hold yet (bound, locked, resumable); write it in input order.

    Bound to the weights (identity: resolved revision and dtype; for a server or vLLM also the
    backend, mode and served name), the requests, the framing and the truncation rule; where the
    weights are placed (``--device-map``, a server's URL) is recorded, not bound.
    """
    from ava.io import atomic_write
    from ava.models.backends.http import ServerError
    from ava.models.backends.partial import keep_finished
    from ava.models.lazy import LazyScorer
    from ava.runs import (
        Binding,
        ChunkPolicy,
        JsonlLog,
        Output,
        interrupt_on_sigterm,
        run_in_chunks,
        start_run,
        unfinished_chunks,
    )

    settings = settings or BackendSettings()
    scorer = LazyScorer(loading, chat=chat, config=config, settings=settings)
    binding = Binding(model=scorer.identity, inputs=requests_hash(requests),
                      options={"chat": chat, "truncate": config.truncate})
    layout = {"chunk": chunk, "batch_tokens": config.max_batch_tokens, "threads": config.threads}
    info = {**loading.to_config(), **({} if settings.is_default else settings.to_config()), "requests": len(requests),
            **layout}
    interrupt_on_sigterm()
    with start_run(Output(out, folder=False), "score", binding, info=info, restart=restart, owned=OWNED) as run:
        if run.previous is not None and run.previous.complete and out.is_file():
            typer.echo(f"all {len(requests)} requests already scored in {out}", err=True)
            return len(requests)
        log = JsonlLog(partial_path(out), key="id")
        log.load()
        chunk = _settle_layout(run, layout, scorer, resuming=bool(log.rows))
        if settings.is_default:  # a local model: a chunk is redone whole, in the company it had (bit for bit)
            todo = unfinished_chunks(requests, lambda r: r.id, log, chunk)
        else:  # a server batches as it likes: keep every answer it gave (models.backends.partial)
            todo = [r for r in requests if r.id not in log.rows]
        if len(todo) < len(requests):
            typer.echo(f"resuming: {len(requests) - len(todo)} already scored, {len(todo)} to go", err=True)
        def work(part: list[ScoreRequest]) -> list[dict]:
            try:
                return [scored_row(s) for s in scorer.score(part)]
            except ServerError as exc:  # a server died mid-chunk: keep what it answered
                keep_finished(log, [scored_row(s) for s in exc.scored])
                raise

        run_in_chunks(todo, work, log, policy=ChunkPolicy(chunk, chunk), desc="scoring", unit="prompt",
                      progress=progress)
        with atomic_write(out) as fh:
            for r in requests:
                fh.write(json.dumps(log.rows[r.id], ensure_ascii=False) + "\n")
        partial_path(out).unlink(missing_ok=True)
    return len(requests)
