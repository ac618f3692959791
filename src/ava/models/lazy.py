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
from ava.models.engine import EngineConfig
from ava.models.loading import ModelError, resolve_model
from ava.models.options import ModelOptions
from ava.models.scorer import Scorer


class LazyScorer:
    """:class:`~ava.models.scorer.Scorer` for ``options`` (model, adapter, dtype, device map,
    revision) that loads on the first ``score`` call; its identity is
    :meth:`ModelOptions.identity <ava.models.options.ModelOptions.identity>`."""

    def __init__(self, options: ModelOptions, chat: bool = False, config: EngineConfig | None = None) -> None:
        self.options, self.chat, self.config = options, chat, config
        self.model = options.model
        self.identity = options.identity(chat=chat)
        self.backend = "uniform" if resolve_model(options.model, options.revision).kind == "uniform" else "transformers"
        self._scorer: Scorer | None = None
        self._generator: tuple[Any, Any] | None = None

    @property
    def loaded(self) -> bool:
        return self._scorer is not None or self._generator is not None

    def score(self, requests: Sequence[ScoreRequest], progress: bool = False) -> list[ScoredItem]:
        if self._scorer is None:
            scorer = self.options.load_scorer(chat=self.chat, config=self.config)
            if scorer.identity != self.identity:
                raise ModelError(f"model {self.model!r} loaded as {scorer.identity!r}, not {self.identity!r}: "
                                 "its files changed while the run started; rerun")
            self._scorer = scorer
        return self._scorer.score(requests, progress=progress)

    def generation_model(self) -> tuple[Any, Any]:
        """(model, tokenizer) for free-text generation, with a padding token (loaded once)."""
        if self.backend == "uniform":
            raise ModelError("the 'uniform' baseline cannot generate text; give a language model with --model")
        if self._generator is None:
            lm, tokenizer = self.options.load_model()
            if tokenizer.pad_token_id is None:
                tokenizer.pad_token = tokenizer.eos_token
            self._generator = (lm, tokenizer)
        return self._generator
