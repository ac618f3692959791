"""An OpenAI-compatible ``/v1/completions`` server as a :class:`~.source.LogprobSource`.

Prompts are sent as token ids (the canonical tokens made here), so the server reads exactly
what the in-process engine reads; the server's tokenizer is only compared with ours, once,
on a real prompt's text (its token count, ``usage.prompt_tokens``, and the echoed ids where it
echoes), and a mismatch is refused before anything is scored. vLLM's extension fields are sent
where they help (``return_tokens_as_token_ids``: tokens named by id; ``logprob_token_ids``: the
exact log-probabilities of chosen tokens at the next position, one cheap request per prompt);
other servers ignore them, and :meth:`OpenAISource.check` finds out which a server honours.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from ava.models.backends import replies
from ava.models.backends.http import Call, ServerError, Transport
from ava.models.backends.source import TokenPrompt

COMPLETIONS = "/completions"


@dataclass
class OpenAISource:
    """``served_model`` on the server ``transport`` talks to."""

    transport: Transport
    served_model: str
    chosen_ids: bool = False  # the server honours logprob_token_ids (found by check)
    max_model_len: int | None = None  # the context the server reports (GET /models), if any

    def where(self) -> str:
        return self.transport.where()

    def _payload(self, ids: Sequence[int], **fields: Any) -> dict[str, Any]:
        return {"model": self.served_model, "prompt": list(ids), "max_tokens": 1, "temperature": 0.0,
                "return_tokens_as_token_ids": True, **fields}

    def _fail(self, rid: str, why: str, what: str) -> ServerError:
        return ServerError(f"{self.where()}: request {rid}: {why}; {what}")

    # -- checks ------------------------------------------------------------------------------
    def check(self, text: str, ids: Sequence[int], add_special_tokens: bool, mode: str, top_k: int) -> None:
        """See :meth:`~.source.LogprobSource.check`; also learns whether the server honours
        ``logprob_token_ids`` (the cheap exact route)."""
        try:
            self._check(text, ids, add_special_tokens, mode, top_k)
        except replies.ReplyError as exc:  # a broken probe reply (NaN, a wrong type)
            raise self._fail("probe (the first request's text)", str(exc), "the server's reply is broken: check "
                             "its version and logs") from None

    def _check(self, text: str, ids: Sequence[int], add_special_tokens: bool, mode: str, top_k: int) -> None:
        self._check_model()
        rid = "probe (the first request's text)"
        fields: dict[str, Any] = {"echo": True, "logprobs": max(1, top_k)}
        if not add_special_tokens:
            fields["add_special_tokens"] = False
        payload = {**self._payload([]), "prompt": text, **fields}
        reply = self.transport.post(Call(COMPLETIONS, payload, rid))
        served = replies.prompt_tokens(reply)
        if served is not None and served != len(ids):
            raise self._fail(rid, f"the server reads the prompt as {served} tokens, ava's tokenizer as {len(ids)}: "
                                  "it serves a model with another tokenizer",
                             "pass the served model's own name or folder as --model (its tokenizer renders and "
                             "tokenises every prompt)")
        try:
            tokens, values = replies.echoed(reply, len(ids))
        except replies.NotGiven as exc:
            tokens, values = [], []
            if mode == "exact":
                self._exact_by_top_k(rid, ids, top_k, exc)
        ours = [t for t in tokens if isinstance(t, int)]
        if len(ours) == len(tokens) and tokens and list(ours) != list(ids):
            first = next(i for i, (a, b) in enumerate(zip(ours, ids, strict=False)) if a != b)
            raise self._fail(rid, f"the server's tokens differ from ava's at position {first} "
                                  f"({ours[first]} vs {ids[first]}): it serves a model with another tokenizer",
                             "pass the served model's own name or folder as --model")
        if top_k > 0 or mode == "topk":
            try:
                replies.top_logprobs(self.transport.post(Call(COMPLETIONS, self._payload(ids, logprobs=top_k), rid)))
            except replies.NotGiven as exc:
                raise self._fail(rid, f"{exc}", "serve the model with log-probabilities enabled "
                                               "(vLLM: --max-logprobs >= --top-k)") from None
        if mode == "exact":
            self.chosen_ids = self._honours_chosen_ids(ids, values)

    def _exact_by_top_k(self, rid: str, ids: Sequence[int], top_k: int, exc: Exception) -> None:
        raise self._fail(rid, f"exact scores need the prompt's echoed log-probabilities, and {exc}",
                         "use --mode topk (the next token's top-k log-probabilities, letters outside it "
                         "filled by the OpinionQA rule and counted)")

    def _honours_chosen_ids(self, ids: Sequence[int], values: Sequence[float | None]) -> bool:
        """Whether the server returns exactly the asked tokens' log-probabilities at the next
        position (vLLM's ``logprob_token_ids``): asked for the prompt's own last two token ids
        after all but them, it must give both, and the last one's must equal its echo."""
        if len(ids) < 3 or values[-1] is None:
            return False
        probe = list(ids[-2:])
        reply = self.transport.post(Call(COMPLETIONS, self._payload(ids[:-1], logprobs=1, logprob_token_ids=probe),
                                         "probe (chosen token ids)"))
        try:
            top = replies.top_logprobs(reply)
        except replies.NotGiven:
            return False
        return all(t in top for t in probe) and abs(top[ids[-1]] - float(values[-1])) < 1e-3

    def _check_model(self) -> None:
        """The server serves ``served_model`` (GET /models), and how long a context it takes."""
        try:
            listing = self.transport.get("/models")
        except ServerError as exc:
            if "HTTP 404" in str(exc):  # a server without a model list: the probe will tell
                return
            raise
        data = listing.get("data") if isinstance(listing, dict) else None
        if not isinstance(data, list):
            return
        names = [m.get("id") for m in data if isinstance(m, dict)]
        if self.served_model not in names:
            raise ServerError(f"{self.where()}: serves {', '.join(map(str, names)) or 'no model'}, not "
                              f"{self.served_model!r}; pass --served-model with one of those names")
        entry = data[names.index(self.served_model)]
        if isinstance(entry.get("max_model_len"), int):
            self.max_model_len = entry["max_model_len"]

    # -- reading -------------------------------------------------------------------------------
    def top_logprobs(self, prompts: Sequence[TokenPrompt], k: int) -> list[dict[int | str, float]]:
        calls = [Call(COMPLETIONS, self._payload(p.ids, logprobs=k), p.rid) for p in prompts]
        return self.transport.run(calls, self._read(lambda call, reply: replies.top_logprobs(reply)))

    def chosen_logprobs(self, prompts: Sequence[TokenPrompt], chosen: Sequence[Sequence[int]]) -> list[dict]:
        """The log-probabilities of exactly ``chosen`` tokens at each prompt's next position."""
        calls = [Call(COMPLETIONS, self._payload(p.ids, logprobs=1, logprob_token_ids=list(c)), p.rid)
                 for p, c in zip(prompts, chosen, strict=True)]
        return self.transport.run(calls, self._read(lambda call, reply: replies.top_logprobs(reply)))

    def echo_logprobs(self, prompts: Sequence[TokenPrompt]) -> list[float]:
        calls = [Call(COMPLETIONS, self._payload(p.ids, echo=True, logprobs=1), p.rid) for p in prompts]

        def last(call: Call, reply: Any) -> float:
            tokens, values = replies.echoed(reply, len(call.payload["prompt"]))
            want = call.payload["prompt"][-1]
            if isinstance(tokens[-1], int) and tokens[-1] != want:
                raise replies.ReplyError(f"the echoed last token is {tokens[-1]}, not the {want} sent")
            value = values[-1]
            if value is None:
                raise replies.ReplyError("the echoed last token has no log-probability")
            return value

        return self.transport.run(calls, self._read(last))

    def generate(self, prompts: Sequence[TokenPrompt], max_new_tokens: int, temperature: float, n: int,
                 seeds: Sequence[int]) -> list[list[str]]:
        calls = [Call(COMPLETIONS, {"model": self.served_model, "prompt": list(p.ids), "max_tokens": max_new_tokens,
                                    "temperature": temperature, "n": n, "seed": seed}, p.rid)
                 for p, seed in zip(prompts, seeds, strict=True)]
        return self.transport.run(calls, self._read(lambda call, reply: replies.texts(reply, n)))

    def _read(self, parse: Callable[[Call, Any], Any]) -> Callable[[Call, Any], Any]:
        """``parse(call, reply)``; a reply it cannot read fails naming the server and the request."""
        def read(call: Call, reply: Any) -> Any:
            try:
                return parse(call, reply)
            except replies.ReplyError as exc:
                raise self._fail(call.rid, str(exc), "the server's reply is broken: check its version and logs, "
                                                     "then rerun the same command to resume") from None
        return read
