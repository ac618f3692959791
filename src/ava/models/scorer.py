"""A scorer turns requests into scored items; ``load_scorer`` makes one from a model name."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Protocol

from ava.contracts.scoring import ScoredItem, ScoreRequest
from ava.models.backends.source import Seeds
from ava.models.engine import EngineConfig, LetterEngine
from ava.models.loading import ModelError, ModelSpec, hub_commit, load_model, model_identity, resolve_model


class Scorer(Protocol):
    """Anything that reads option-letter distributions (and generates text); ``identity`` keys
    result caches; ``backend`` says where the model runs (``transformers``, ``vllm``, ``openai``;
    ``uniform`` for the baseline). Every backend reads the same canonical tokens."""

    identity: str
    backend: str

    def score(self, requests: Sequence[ScoreRequest], progress: bool = False) -> list[ScoredItem]:
        """One item per request, in order: each option letter's log-probability at the cue."""
        ...

    def generate(self, prompts: Sequence[str], *, max_new_tokens: int, temperature: float = 0.0, n: int = 1,
                 seed: Seeds = 0, progress: bool = False) -> list[list[str]]:
        """``n`` generated continuations of each prompt, in order (``out[i][j]``: prompt i, sample j).

        A prompt is framed as the scorer frames a one-segment request: the text as it is, or in
        chat framing the user turn followed by the template's generation prompt. At most
        ``max_new_tokens`` tokens each, stopping at the end-of-sequence token; ``temperature``
        0 is greedy decoding (the ``n`` texts are then identical), above 0 sampling from the
        full distribution at that temperature. ``seed``: one for every prompt or one per prompt;
        a prompt's samples depend on its text and its seed only (not on the other prompts of the
        call), reproducible on a given backend. Special tokens are not written out.
        """
        ...


class UniformScorer:
    """The baseline that puts equal probability on every option (letter mass 1)."""

    identity = "uniform"
    backend = "uniform"

    def score(self, requests: Sequence[ScoreRequest], progress: bool = False) -> list[ScoredItem]:
        return [ScoredItem(r.id, tuple([-math.log(len(r.options))] * len(r.options))) for r in requests]

    def generate(self, prompts: Sequence[str], **kwargs: Any) -> list[list[str]]:
        raise ModelError("the 'uniform' baseline cannot generate text; give a language model with --model")


class LMScorer:
    """A causal LM read through :class:`LetterEngine`."""

    backend = "transformers"

    def __init__(self, engine: LetterEngine, identity: str) -> None:
        self.engine = engine
        self.identity = identity

    def score(self, requests: Sequence[ScoreRequest], progress: bool = False) -> list[ScoredItem]:
        return self.engine.score(requests, progress=progress)

    def generate(self, prompts: Sequence[str], *, max_new_tokens: int, temperature: float = 0.0, n: int = 1,
                 seed: Seeds = 0, progress: bool = False) -> list[list[str]]:
        """See :meth:`Scorer.generate` (:mod:`ava.models.backends.transformers_generate`)."""
        from ava.models.backends.transformers_generate import generate

        return generate(self.engine.model, self.engine.encoder, prompts, max_new_tokens=max_new_tokens,
                        temperature=temperature, n=n, seed=seed)


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
