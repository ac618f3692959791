"""A scorer that loads its model only when something must be scored (or generated).

Why: a command checks its output (preflight, lock, binding) before anything slow happens, and
a rerun that finds every item cached never loads the model at all. The identity a run is
bound to is known without loading (it is computed from the model's files, as
:func:`ava.models.scorer.load_scorer` computes it, and checked against the loaded scorer).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ava.contracts.scoring import ScoredItem, ScoreRequest
from ava.models.backends.factory import backend_identity, load_backend_scorer
from ava.models.backends.settings import BackendSettings
from ava.models.backends.source import Seeds
from ava.models.engine import EngineConfig
from ava.models.loading import ModelError, resolve_model
from ava.models.options import ModelOptions
from ava.models.scorer import Scorer


class LazyScorer:
    """:class:`~ava.models.scorer.Scorer` for ``options`` (model, adapter, dtype, device map,
    revision) on the backend ``settings`` names (default: transformers in this process) that
    loads on the first ``score`` or ``generate`` call; its identity is
    :func:`~ava.models.backends.factory.backend_identity` (for the default backend
    :meth:`ModelOptions.identity <ava.models.options.ModelOptions.identity>`)."""

    def __init__(self, options: ModelOptions, chat: bool = False, config: EngineConfig | None = None,
                 settings: BackendSettings | None = None) -> None:
        self.options, self.chat, self.config = options, chat, config
        self.settings = settings or BackendSettings()
        self.model = options.model
        self.identity = backend_identity(options, self.settings, chat)
        uniform = resolve_model(options.model, options.revision).kind == "uniform"
        self.backend = "uniform" if uniform else self.settings.backend
        self._scorer: Scorer | None = None
        self._generator: tuple[Any, Any] | None = None

    @property
    def loaded(self) -> bool:
        return self._scorer is not None or self._generator is not None

    def _loaded(self) -> Scorer:
        if self._scorer is None:
            scorer = load_backend_scorer(self.options, self.settings, chat=self.chat, config=self.config)
            if scorer.identity != self.identity:
                raise ModelError(f"model {self.model!r} loaded as {scorer.identity!r}, not {self.identity!r}: "
                                 "its files changed while the run started; rerun")
            self._scorer = scorer
        return self._scorer

    def score(self, requests: Sequence[ScoreRequest], progress: bool = False) -> list[ScoredItem]:
        return self._loaded().score(requests, progress=progress)

    def generate(self, prompts: Sequence[str], *, max_new_tokens: int, temperature: float = 0.0, n: int = 1,
                 seed: Seeds = 0, progress: bool = False) -> list[list[str]]:
        """See :meth:`ava.models.scorer.Scorer.generate`."""
        return self._loaded().generate(prompts, max_new_tokens=max_new_tokens, temperature=temperature, n=n,
                                       seed=seed, progress=progress)

    def generation_model(self) -> tuple[Any, Any]:
        """(model, tokenizer) for free-text generation, with a padding token (loaded once)."""
        if self.backend == "uniform":
            raise ModelError("the 'uniform' baseline cannot generate text; give a language model with --model")
        if not self.settings.is_default:
            raise ModelError(f"this task needs the model's weights in this process (it also measures perplexities): "
                             f"use --backend transformers, not {self.settings.backend}")
        if self._generator is None:
            lm, tokenizer = self.options.load_model()
            if tokenizer.pad_token_id is None:
                tokenizer.pad_token = tokenizer.eos_token
            self._generator = (lm, tokenizer)
        return self._generator
