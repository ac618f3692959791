"""Making the scorer a :class:`~.settings.BackendSettings` names, and naming it without loading.

The default backend is :func:`ava.models.scorer.load_scorer` unchanged. The others need only
the model's tokenizer here (to render and tokenise every prompt, and to find the letters'
tokens), never its weights: a 70B model behind a server is scored from a laptop.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from ava.models.backends.settings import BackendSettings
from ava.models.engine import EngineConfig
from ava.models.loading import (
    ModelError,
    default_device,
    dtype_name,
    hub_commit,
    resolve_dtype,
    resolve_model,
    weights_dir,
)
from ava.models.options import ModelOptions


def check_combination(options: ModelOptions, settings: BackendSettings) -> None:
    """Refuse flags that the backend would ignore (before anything slow)."""
    if settings.is_default:
        return
    spec = resolve_model(options.model, options.revision)
    if spec.kind == "uniform":
        raise ModelError(f"the uniform baseline reads no model: drop --backend {settings.backend}")
    if options.adapter or spec.adapter:
        raise ModelError(f"--backend {settings.backend} scores a base model: serve the adapter with the server "
                         "(vLLM: --enable-lora --lora-modules NAME=PATH) and pass --served-model NAME, or use "
                         "--backend transformers")
    if settings.backend == "openai" and (options.dtype != "auto" or options.device_map):
        raise ModelError("--dtype and --device-map place weights in this process; a server's are its own "
                         "(set them when serving it, e.g. vllm serve --dtype float32)")
    if settings.backend == "vllm" and options.device_map:
        raise ModelError("--device-map is transformers' placement; vLLM places weights itself "
                         "(its tensor_parallel_size: serve with vllm serve --tensor-parallel-size N)")


def backend_identity(options: ModelOptions, settings: BackendSettings, chat: bool) -> str:
    """The identity of the scorer :func:`load_backend_scorer` gives, without loading anything."""
    if settings.is_default:
        return options.identity(chat=chat)
    from ava.models.scorer import scorer_identity

    check_combination(options, settings)
    spec = resolve_model(options.model, options.revision)
    dtype = None if settings.backend == "openai" else resolve_dtype(options.dtype, default_device())
    return settings.identity(scorer_identity(spec, None, dtype, chat))


def load_tokenizer(options: ModelOptions) -> tuple[Any, int | None]:
    """The model's tokenizer and its context window, from its files (no weights are read)."""
    from transformers import AutoConfig, AutoTokenizer

    from ava.models.encoding import context_window

    spec = resolve_model(options.model, options.revision)
    commit = hub_commit(spec.path, spec.revision) if spec.on_hub else None
    source = weights_dir(spec)
    try:
        tokenizer = AutoTokenizer.from_pretrained(source, revision=commit)
        config = AutoConfig.from_pretrained(source, revision=commit)
    except OSError as exc:
        raise ModelError(f"cannot load the tokenizer of {options.model!r}: {str(exc).splitlines()[0]}") from exc
    return tokenizer, context_window(SimpleNamespace(config=config))


def load_backend_scorer(options: ModelOptions, settings: BackendSettings, chat: bool = False,
                        config: EngineConfig | None = None) -> Any:
    """A :class:`~ava.models.scorer.Scorer` on the backend ``settings`` names."""
    if settings.is_default:
        return options.load_scorer(chat=chat, config=config)
    from ava.models.backends.logprob_scorer import LogprobScorer
    from ava.models.encoding import PromptEncoder

    identity = backend_identity(options, settings, chat)
    tokenizer, window = load_tokenizer(options)
    if settings.backend == "openai":
        from ava.models.backends.http import Transport
        from ava.models.backends.openai_source import OpenAISource

        transport = Transport(str(settings.base_url).rstrip("/"), settings.api_key(), settings.concurrency,
                              settings.timeout_s, settings.retries)
        source: Any = OpenAISource(transport, settings.served_model or options.model)
    else:
        source = _vllm_source(options)
    encoder = PromptEncoder(tokenizer, chat, window, (config or EngineConfig()).truncate)
    return LogprobScorer(source, encoder, tokenizer, identity=identity, backend=settings.backend, mode=settings.mode,
                         top_k=settings.top_k, min_coverage=settings.min_coverage)


def _vllm_source(options: ModelOptions) -> Any:
    from ava.models.backends.vllm_source import VLLMSource, vllm_available

    if not vllm_available():
        raise ModelError("--backend vllm needs vLLM in this environment (pip install vllm, on a GPU machine); "
                         "or serve the model with vLLM and use --backend openai --base-url URL")
    spec = resolve_model(options.model, options.revision)
    commit = hub_commit(spec.path, spec.revision) if spec.on_hub else None
    dtype = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}[
        dtype_name(resolve_dtype(options.dtype, default_device()))]
    return VLLMSource(weights_dir(spec), dtype, revision=commit)
