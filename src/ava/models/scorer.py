"""A scorer turns requests into scored items; ``load_scorer`` makes one from a model name."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Protocol

from ava.contracts.scoring import ScoredItem, ScoreRequest
from ava.models.engine import EngineConfig, LetterEngine
from ava.models.loading import ModelSpec, hub_commit, load_model, model_identity, resolve_model


class Scorer(Protocol):
    """Anything that reads option-letter distributions; ``identity`` keys result caches."""

    identity: str
    backend: str

    def score(self, requests: Sequence[ScoreRequest], progress: bool = False) -> list[ScoredItem]: ...


class UniformScorer:
    """The baseline that puts equal probability on every option (letter mass 1)."""

    identity = "uniform"
    backend = "uniform"

    def score(self, requests: Sequence[ScoreRequest], progress: bool = False) -> list[ScoredItem]:
        return [ScoredItem(r.id, tuple([-math.log(len(r.options))] * len(r.options))) for r in requests]


class LMScorer:
    """A causal LM read through :class:`LetterEngine`."""

    backend = "transformers"

    def __init__(self, engine: LetterEngine, identity: str) -> None:
        self.engine = engine
        self.identity = identity

    def score(self, requests: Sequence[ScoreRequest], progress: bool = False) -> list[ScoredItem]:
        return self.engine.score(requests, progress=progress)


def load_scorer(
    model: str,
    adapter: str | None = None,
    device: str | None = None,
    chat: bool = False,
    config: EngineConfig | None = None,
    dtype: Any = None,
    device_map: str | dict[str, Any] | None = None,
    revision: str | None = None,
) -> Scorer:
    """A scorer for a built-in name, Hugging Face id, local folder or PEFT adapter folder (plus
    optional adapter); loading options as :func:`~ava.models.loading.load_model`.

    A hub model is pinned to the commit its revision resolves to now, so the identity (the key
    of every cached result) names exactly the weights that were loaded.
    """
    spec = resolve_model(model, revision)
    if spec.kind == "uniform":
        return UniformScorer()
    if spec.on_hub:
        revision = hub_commit(spec.path, spec.revision)
        spec = resolve_model(model, revision)
    lm, tokenizer = load_model(
        model, adapter=adapter, device=device, dtype=dtype, device_map=device_map, revision=revision
    )
    cfg = config or EngineConfig()
    if chat != cfg.chat:
        cfg = EngineConfig(**{**cfg.__dict__, "chat": chat})
    return LMScorer(LetterEngine(lm, tokenizer, cfg), scorer_identity(spec, adapter, lm.dtype, chat))


def scorer_identity(spec: ModelSpec, adapter: str | None, dtype: Any, chat: bool) -> str:
    """The identity of a scorer (the key of every cached score): the weights (:func:`model_identity`,
    dtype included) and the framing. The one definition: :func:`load_scorer` names what it loaded
    with it, :meth:`ava.models.options.ModelOptions.identity` what it will load."""
    if spec.kind == "uniform":
        return "uniform"
    return model_identity(spec, adapter, dtype=dtype) + (":chat" if chat else "")
