"""The backend options ``ava score`` and ``ava eval`` share, spelled and explained once.

A command declares them with the annotated types below and hands the values to
:func:`backend_settings`, which checks them (a :class:`~ava.models.loading.ModelError` names
the bad flag) before anything slow happens.
"""

from __future__ import annotations

from typing import Annotated

import typer

from ava.models.backends.settings import BackendSettings

_PANEL = "Backend (where the model runs)"

BackendOption = Annotated[str, typer.Option(
    "--backend", rich_help_panel=_PANEL,
    help="transformers (this process, the default), vllm (vLLM's engine in this process) or openai "
         "(an OpenAI-compatible server: --base-url)")]
ModeOption = Annotated[str, typer.Option(
    "--mode", rich_help_panel=_PANEL,
    help="vllm/openai: exact (each letter's own log-probability, equal to transformers) or topk (the next "
         "token's top-k only; missing letters filled by the OpinionQA rule and counted)")]
BaseUrlOption = Annotated[str | None, typer.Option(
    "--base-url", rich_help_panel=_PANEL, help="openai: the server's API root, e.g. http://127.0.0.1:8000/v1")]
ServedModelOption = Annotated[str | None, typer.Option(
    "--served-model", rich_help_panel=_PANEL,
    help="openai: the model's name on the server (default: the --model value); --model names its tokenizer")]
ApiKeyEnvOption = Annotated[str | None, typer.Option(
    "--api-key-env", rich_help_panel=_PANEL,
    help="openai: the environment variable holding the API key (never written to any output)")]
TopKOption = Annotated[int, typer.Option(
    "--top-k", rich_help_panel=_PANEL,
    help="top-k log-probabilities asked per prompt (topk mode; exact mode on servers without chosen-token "
         "log-probabilities: letters outside it are echoed, 0 echoes all)")]
MinCoverageOption = Annotated[float, typer.Option(
    "--min-coverage", rich_help_panel=_PANEL,
    help="topk mode: the run fails when the share of option letters found in the top-k falls below this")]
ConcurrencyOption = Annotated[int, typer.Option(
    "--concurrency", rich_help_panel=_PANEL, help="openai: requests in flight at most")]
RequestTimeoutOption = Annotated[float, typer.Option(
    "--request-timeout", rich_help_panel=_PANEL, help="openai: seconds to wait for one reply")]
RetriesOption = Annotated[int, typer.Option(
    "--retries", rich_help_panel=_PANEL,
    help="openai: retries of a request on 429, 5xx, a timeout or a dropped connection (backoff 0.5 s doubling)")]


def backend_settings(model: str, backend: str = "transformers", mode: str = "exact", base_url: str | None = None,
                     served_model: str | None = None, api_key_env: str | None = None, top_k: int = 20,
                     min_coverage: float = 0.95, concurrency: int = 16, request_timeout: float = 300.0,
                     retries: int = 5) -> BackendSettings:
    """Checked settings; the served model defaults to ``--model``'s value for a server."""
    if backend == "openai" and served_model is None:
        served_model = model
    return BackendSettings(backend, mode, base_url, served_model, api_key_env, top_k, min_coverage, concurrency,
                           request_timeout, retries)
