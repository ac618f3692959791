"""Reading the log-probabilities out of a ``/v1/completions`` reply, in the schemas servers use.

* OpenAI's (legacy completions, vLLM, SGLang): ``choices[0].logprobs`` holds ``tokens``,
  ``token_logprobs`` and ``top_logprobs`` (a ``{token: logprob}`` dict per position). With
  vLLM's ``return_tokens_as_token_ids`` a token is written ``"token_id:123"``.
* llama.cpp's: ``choices[0].logprobs.content`` is a list of ``{id, token, logprob,
  top_logprobs: [{id, token, logprob}]}`` (the chat schema) and ``echo`` is ignored.

Every reader checks what it takes: a field that is missing, a list too short, a value that is
not a finite number (NaN, +inf) is a :class:`ReplyError` naming what is wrong, never a silently
skipped letter. -inf is a valid log-probability (probability 0).
"""

from __future__ import annotations

import math
from typing import Any

from ava.models.loading import ModelError

Token = int | str


class ReplyError(ModelError):
    """A reply that lacks what was asked for, or holds a value that is not a log-probability."""


class NotGiven(ReplyError):
    """A reply without the log-probabilities asked for: the server does not give them."""


def choices(reply: Any, n: int = 1) -> list[dict[str, Any]]:
    """The reply's ``n`` choices, in ``index`` order."""
    got = reply.get("choices") if isinstance(reply, dict) else None
    if not isinstance(got, list) or len(got) < n or not all(isinstance(c, dict) for c in got):
        raise ReplyError(f"the reply has no 'choices' list of {n} (got {str(reply)[:120]!r})")
    return sorted(got, key=lambda c: c.get("index", 0))


def token(key: Any) -> Token:
    """A token named in a reply: its id where the server gives one (``token_id:123``), else its text."""
    if isinstance(key, str) and key.startswith("token_id:") and key[9:].lstrip("-").isdigit():
        return int(key[9:])
    if isinstance(key, int) and not isinstance(key, bool):
        return key
    if isinstance(key, str):
        return key
    raise ReplyError(f"a token named {key!r} (not a string)")


def logprob(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ReplyError(f"{what} is {value!r}, not a number")
    value = float(value)
    if math.isnan(value) or value > 1e-4:  # a log-probability is <= 0 (a little rounding allowed)
        raise ReplyError(f"{what} is {value!r}, not a log-probability")
    return min(value, 0.0)


def top_logprobs(reply: Any) -> dict[Token, float]:
    """The first generated token's top log-probabilities (either schema)."""
    lp = choices(reply)[0].get("logprobs")
    if not isinstance(lp, dict):
        raise NotGiven("the reply has no 'logprobs' (the server ignored or disabled them)")
    if isinstance(lp.get("content"), list):  # llama.cpp / chat schema
        content = lp["content"]
        if not content or not isinstance(content[0], dict) or not isinstance(content[0].get("top_logprobs"), list):
            raise ReplyError("the reply's 'logprobs.content' has no 'top_logprobs' for the first token")
        out: dict[Token, float] = {}
        for entry in content[0]["top_logprobs"]:
            if not isinstance(entry, dict):
                raise ReplyError(f"a top_logprobs entry is {entry!r}")
            key = entry.get("id", entry.get("token"))
            out[token(key)] = logprob(entry.get("logprob"), f"the log-probability of token {key!r}")
        return out
    tops = lp.get("top_logprobs")
    if not isinstance(tops, list) or not tops or not isinstance(tops[-1], dict):
        raise NotGiven("the reply has no 'logprobs.top_logprobs' (the server ignored or disabled them)")
    return {token(k): logprob(v, f"the log-probability of token {k!r}") for k, v in tops[-1].items()}


def echoed(reply: Any, n_prompt: int) -> tuple[list[Token], list[float | None]]:
    """The prompt's echoed tokens and their log-probabilities (the first one has none), or a
    :class:`ReplyError` if the server did not echo the prompt's log-probabilities."""
    lp = choices(reply)[0].get("logprobs")
    if not isinstance(lp, dict):
        raise NotGiven("the reply has no 'logprobs' (the server ignored or disabled them)")
    if not isinstance(lp.get("token_logprobs"), list):
        raise NotGiven("the reply has no 'logprobs.token_logprobs': the server does not echo the prompt's "
                       "log-probabilities")
    values, tokens = lp["token_logprobs"], lp.get("tokens")
    if len(values) < n_prompt or not isinstance(tokens, list) or len(tokens) < n_prompt:
        raise NotGiven(f"the reply echoes {len(values)} log-probabilities for a prompt of {n_prompt} tokens: the "
                         "server does not echo the prompt (llama.cpp's ignores 'echo')")
    out = [None if i == 0 and v is None else logprob(v, f"the echoed log-probability at position {i}")
           for i, v in enumerate(values[:n_prompt])]
    return [token(t) for t in tokens[:n_prompt]], out


def texts(reply: Any, n: int) -> list[str]:
    """The ``n`` generated texts."""
    out = []
    for c in choices(reply, n)[:n]:
        if not isinstance(c.get("text"), str):
            raise ReplyError(f"a choice has no 'text' (got {str(c)[:80]!r})")
        out.append(c["text"])
    return out


def prompt_tokens(reply: Any) -> int | None:
    usage = reply.get("usage") if isinstance(reply, dict) else None
    value = usage.get("prompt_tokens") if isinstance(usage, dict) else None
    return value if isinstance(value, int) else None
