"""A scorer turns requests into scored items; ``load_scorer`` makes one from a model name."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Protocol

from ava.contracts.scoring import ScoredItem, ScoreRequest
from ava.models.engine import EngineConfig, LetterEngine
from ava.models.loading import load_model, model_identity, resolve_model


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
) -> Scorer:
    """A scorer for a built-in name, Hugging Face id or local path (plus optional PEFT adapter)."""
    spec = resolve_model(model)
    if spec.kind == "uniform":
        return UniformScorer()
    lm, tokenizer = load_model(model, adapter=adapter, device=device)
    cfg = config or EngineConfig()
    if chat != cfg.chat:
        cfg = EngineConfig(**{**cfg.__dict__, "chat": chat})
    identity = model_identity(spec, adapter) + (":chat" if chat else "")
    return LMScorer(LetterEngine(lm, tokenizer, cfg), identity)
