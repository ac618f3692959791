"""Option-letter distributions read through a :class:`~.source.LogprobSource` (a server, vLLM).

Two modes (``../shared/docs/benchmarks.md``, "Scoring through a server"):

* **exact**: every letter spelling's own log-probability after the prompt. Where the backend
  returns chosen tokens' log-probabilities at the next position (vLLM's ``logprob_token_ids``)
  that is one request per prompt, which the prefix cache serves cheaply. Elsewhere the
  spelling is read from the next token's top-k when it is there, and otherwise by echoing the
  prompt plus the spelling and reading that last token's log-probability, as lm-eval's
  ``local-completions`` does (``top_k=0``: echo every spelling). All of these are the
  full-vocabulary log-softmax at the prompt's last position, so the scores equal the
  in-process engine's.
* **topk**: only the next token's top-k; letters outside it are filled by the OpinionQA rule
  (:mod:`.topk`), each item keeps its covered mass and missing-letter count, and a run whose
  share of letters found falls below ``min_coverage`` fails.

The backend is checked once, on the first request, before anything is scored.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ava.contracts.scoring import ScoredItem, ScoreRequest
from ava.models.backends.http import ServerError
from ava.models.backends.source import LogprobSource, Seeds, TokenPrompt, prompt_seeds
from ava.models.backends.topk import logsumexp, read_topk
from ava.models.encoding import Encoded, PromptEncoder
from ava.models.loading import ModelError


class CoverageError(ModelError):
    """A top-k run that showed too few of the option letters to be a reading of the model."""


class LogprobScorer:
    """:class:`~ava.models.scorer.Scorer` over a log-probability source."""

    def __init__(self, source: LogprobSource, encoder: PromptEncoder, tokenizer: Any, *, identity: str, backend: str,
                 mode: str = "exact", top_k: int = 20, min_coverage: float = 0.95) -> None:
        self.source, self.encoder, self.tokenizer = source, encoder, tokenizer
        self.identity, self.backend = identity, backend
        self.mode, self.top_k, self.min_coverage = mode, top_k, min_coverage
        self.letters_seen = self.letters_missing = 0
        self._checked = False
        self._token_of_text: dict[str, int] = {}

    # -- checks --------------------------------------------------------------------------
    def check(self, request: ScoreRequest) -> None:
        """Probe the backend with a real prompt's text (once): see :meth:`LogprobSource.check`."""
        if self._checked:
            return
        text = self.encoder.text(request)
        ids = self.encoder.tokenize([text])[0]
        self.source.check(text, ids, self.encoder.add_special_tokens(text), self.mode, self.top_k)
        served = getattr(self.source, "max_model_len", None)
        if served:  # the server's context (its --max-model-len), less the one token each request generates
            self.encoder.max_length = min(self.encoder.max_length or served, served - 2)
        self._checked = True

    # -- scoring -------------------------------------------------------------------------
    def score(self, requests: Sequence[ScoreRequest], progress: bool = False) -> list[ScoredItem]:
        """Scores in input order; a :class:`ServerError` carries the items finished before it."""
        if not requests:
            return []
        self.check(requests[0])  # first: it may lower the context window to the server's
        encoded = self.encoder.encode(requests)
        prompts = [TokenPrompt(r.id, e.ids) for r, e in zip(requests, encoded, strict=True)]
        if self.mode == "topk":
            return self._topk(prompts, encoded)
        return self._exact(prompts, encoded)

    def _topk(self, prompts: list[TokenPrompt], encoded: list[Encoded]) -> list[ScoredItem]:
        try:
            tops = [self._by_id(top) for top in self.source.top_logprobs(prompts, self.top_k)]
        except ServerError as exc:
            exc.scored = [read_topk(prompts[i].rid, self._by_id(top), encoded[i].letters)
                          for i, top in exc.partial.items()]
            raise
        items = [read_topk(p.rid, top, e.letters) for p, top, e in zip(prompts, tops, encoded, strict=True)]
        self.letters_seen += sum(len(e.letters) for e in encoded)
        self.letters_missing += sum(i.letters_missing for i in items)
        found = 1 - self.letters_missing / self.letters_seen
        if found < self.min_coverage:
            raise CoverageError(
                f"{self.source.where()}: the top-{self.top_k} log-probabilities showed only {found:.1%} of the option "
                f"letters so far ({self.letters_missing} of {self.letters_seen} filled by the OpinionQA rule; "
                f"--min-coverage {self.min_coverage:g}); raise --top-k (and the server's limit, vLLM "
                "--max-logprobs), use --mode exact, or lower --min-coverage"
            )
        return list(items)

    def _exact(self, prompts: list[TokenPrompt], encoded: list[Encoded]) -> list[ScoredItem]:
        """The letters' own log-probabilities where the backend gives chosen tokens' (one request
        per prompt), else the top-k (``top_k`` > 0); then one echo per spelling still unknown."""
        known: list[dict[int, float]] = [{} for _ in prompts]
        fetch = None
        if getattr(self.source, "chosen_ids", False):
            chosen = [sorted({t for spellings in e.letters for t in spellings}) for e in encoded]
            fetch = lambda: self.source.chosen_logprobs(prompts, chosen)  # noqa: E731
        elif self.top_k > 0:
            fetch = lambda: self.source.top_logprobs(prompts, self.top_k)  # noqa: E731
        if fetch is not None:
            try:
                known = [self._by_id(top) for top in fetch()]
            except ServerError as exc:
                for i, top in exc.partial.items():
                    known[i] = self._by_id(top)
                exc.scored = _complete(prompts, encoded, known)
                raise
        todo = [(i, t) for i, e in enumerate(encoded) for spellings in e.letters for t in spellings
                if t not in known[i]]
        try:
            values = self.source.echo_logprobs([TokenPrompt(prompts[i].rid, (*prompts[i].ids, t)) for i, t in todo])
        except ServerError as exc:
            for j, value in exc.partial.items():
                known[todo[j][0]][todo[j][1]] = value
            exc.scored = _complete(prompts, encoded, known)
            raise
        for (i, t), value in zip(todo, values, strict=True):
            known[i][t] = value
        return _complete(prompts, encoded, known)

    def _by_id(self, top: dict[int | str, float]) -> dict[int, float]:
        """A top-k reply keyed by token id (a server that names tokens by text: the letters'
        tokens are looked up by their text, the rest only count for the covered mass)."""
        out: dict[int, float] = {}
        for key, value in top.items():
            if isinstance(key, int):
                out[key] = value
            else:
                out[self._token_id(key, len(out))] = value
        return out

    def _token_id(self, text: str, n: int) -> int:
        if not self._token_of_text:
            vocab = self.tokenizer.get_vocab()
            self._token_of_text = {self.tokenizer.convert_tokens_to_string([tok]): i for tok, i in vocab.items()}
        return self._token_of_text.get(text, -1 - n)  # unknown text: a distinct id no letter has

    # -- generation ----------------------------------------------------------------------
    def generate(self, prompts: Sequence[str], *, max_new_tokens: int, temperature: float = 0.0, n: int = 1,
                 seed: Seeds = 0, progress: bool = False) -> list[list[str]]:
        """See :meth:`ava.models.scorer.Scorer.generate`."""
        texts = [self.encoder.generation_text(p) for p in prompts]
        ids = self.encoder.tokenize(texts)
        batch = [TokenPrompt(f"generate/{i}", tuple(x)) for i, x in enumerate(ids)]
        return self.source.generate(batch, max_new_tokens, temperature, n, prompt_seeds(seed, len(batch)))


def _complete(prompts: list[TokenPrompt], encoded: list[Encoded], known: list[dict[int, float]]) -> list[ScoredItem]:
    """The items every spelling of which has its exact value, in order (each letter: the
    logsumexp of its spellings, as the engine combines them)."""
    return [ScoredItem(p.rid, tuple(logsumexp([top[t] for t in spellings]) for spellings in e.letters))
            for p, e, top in zip(prompts, encoded, known, strict=True)
            if all(t in top for spellings in e.letters for t in spellings)]
