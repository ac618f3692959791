"""The canonical tokens of a request: its prompt as one string, tokenised whole.

A model reads the prompt exactly as every other tool hands it over: the segments joined into
one string (with a chat template: rendered, then tokenised), encoded by one ``tokenizer(text)``
call. Tokenising segments one by one would change the tokens at every boundary (SmolLM2 reads
``"...\\n\\n" + "Question"`` as ``ĊĊ``, ``Question`` by segments but ``Ċ``, ``Ċ``, ``Question``
whole) and move probabilities by up to 0.2 on real persona prompts: a different input, not an
optimisation. Sharing is found afterwards, on the token sequences (:mod:`ava.models.prefix_tree`).

The option letter is the one token the tokenizer appends to the canonical prompt: a spelling
(``"A"`` or ``" A"``) counts for a request only if ``tokenizer(text + spelling)`` is the
prompt's tokens plus exactly one token, so the letter is read from one forward pass at the
prompt's last position, in the tokens the model would see had the text gone on with it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ava.contracts.scoring import ScoreRequest

TRUNCATE_CHOICES = (None, "left")


def spellings(letter: str) -> tuple[str, str]:
    """How a letter may follow the cue: glued (``"A"``) or after a space (``" A"``)."""
    return (letter, " " + letter)

_TOKENIZE_BATCH = 512  # texts per tokenizer call (one Rust call amortises Python overhead)


class PromptError(ValueError):
    """A request that cannot be scored as given; the message names the request and the fix."""


@dataclass(frozen=True)
class Encoded:
    """A request's canonical prompt tokens and, per option, the tokens that spell its letter
    right after them (one to two spellings, combined with logsumexp)."""

    ids: tuple[int, ...]
    letters: tuple[tuple[int, ...], ...]


class PromptEncoder:
    """Turns requests into canonical tokens, refusing what cannot be read faithfully.

    ``chat`` renders each prompt with the tokenizer's chat template (all segments but the last
    as the user turn, the last one, the answer cue, prefilled as the start of the assistant
    turn) and tokenises the rendered string with ``add_special_tokens=False``, exactly what
    ``apply_chat_template(tokenize=True)`` and TRL's training do: the template writes its own
    special tokens. Plain prompts get the tokenizer's default special tokens (e.g. Llama's BOS),
    as ``tokenizer(text)`` and lm-eval do, except that a text already starting with the BOS
    string gets no second one.
    """

    def __init__(self, tokenizer: Any, chat: bool = False, max_length: int | None = None, truncate: str | None = None):
        if truncate not in TRUNCATE_CHOICES:
            raise ValueError(f"truncate must be one of {TRUNCATE_CHOICES}, not {truncate!r}")
        if chat and not getattr(tokenizer, "chat_template", None):
            from ava.models.loading import ModelError

            raise ModelError("this model has no chat template; score without --chat")
        self.tokenizer = tokenizer
        self.chat = chat
        self.max_length = max_length
        self.truncate = truncate
        self._bos = getattr(tokenizer, "bos_token", None) or None

    def text(self, request: ScoreRequest) -> str:
        """The exact string the model reads (chat template applied when asked)."""
        if not self.chat:
            return request.prompt
        *body, cue = request.segments
        if not body:
            messages, kwargs = [{"role": "user", "content": cue}], {"add_generation_prompt": True}
        else:
            messages = [{"role": "user", "content": "".join(body)}, {"role": "assistant", "content": cue}]
            kwargs = {"continue_final_message": True}
        return self.tokenizer.apply_chat_template(messages, tokenize=False, **kwargs)

    def generation_text(self, prompt: str) -> str:
        """The string a model continues for a generation prompt: the prompt as it is, or in chat
        framing the prompt as the user turn followed by the template's generation prompt (a
        one-segment request's rendering, see :meth:`text`)."""
        if not self.chat:
            return prompt
        return self.tokenizer.apply_chat_template([{"role": "user", "content": prompt}], tokenize=False,
                                                  add_generation_prompt=True)

    def add_special_tokens(self, text: str) -> bool:
        """Whether ``tokenizer(text)`` should add the tokenizer's special tokens to this text."""
        return not self.chat and not (self._bos and text.startswith(self._bos))

    def tokenize(self, texts: Sequence[str]) -> list[list[int]]:
        """``tokenizer(text).input_ids`` for each text, with :meth:`add_special_tokens`'s rule."""
        out: list[list[int]] = [[] for _ in texts]
        for add in (True, False):
            idx = [i for i, t in enumerate(texts) if self.add_special_tokens(t) is add]
            for start in range(0, len(idx), _TOKENIZE_BATCH):
                part = idx[start : start + _TOKENIZE_BATCH]
                ids = self.tokenizer([texts[i] for i in part], add_special_tokens=add).input_ids
                for i, seq in zip(part, ids, strict=True):
                    out[i] = list(seq)
        return out

    def encode(self, requests: Sequence[ScoreRequest]) -> list[Encoded]:
        """Canonical tokens and letter tokens of each request, or a :class:`PromptError`."""
        texts = [self.text(r) for r in requests]
        for request, text in zip(requests, texts, strict=True):
            if text[-1:] in (" ", "\t"):
                raise PromptError(
                    f"request {request.id!r}: the prompt ends in a space; end it at the answer cue "
                    f"(e.g. 'Answer:'): the space belongs to the letter (' A'), as lm-eval splits it too"
                )
        spelled = [t + s for t, r in zip(texts, requests, strict=True) for x in r.options for s in spellings(x)]
        prompt_ids = self.tokenize(texts)
        extended = iter(self.tokenize(spelled))
        out = []
        for request, ids in zip(requests, prompt_ids, strict=True):
            letters = tuple(_appended(request, ids, x, [next(extended), next(extended)]) for x in request.options)
            out.append(Encoded(self._fit(request, ids), letters))
        return out

    def _fit(self, request: ScoreRequest, ids: list[int]) -> tuple[int, ...]:
        """The prompt's tokens within the model's context window (left-truncated only if asked)."""
        if not ids:
            raise PromptError(f"request {request.id!r}: the prompt encodes to no tokens; give it some text")
        if self.max_length is not None and len(ids) > self.max_length:
            if self.truncate != "left":
                raise PromptError(
                    f"request {request.id!r}: the prompt is {len(ids)} tokens, longer than the model's context "
                    f"window of {self.max_length}; shorten it or truncate from the left (ava score --truncate left)"
                )
            ids = ids[-self.max_length :]
        return tuple(ids)


def _appended(request: ScoreRequest, ids: list[int], letter: str, extended: list[list[int]]) -> tuple[int, ...]:
    """The tokens that spell ``letter`` right after ``ids`` (the prompt plus exactly one token)."""
    n = len(ids)
    found: list[int] = []
    for seq in extended:
        if len(seq) == n + 1 and seq[:n] == ids and seq[n] not in found:
            found.append(seq[n])
    if not found:
        raise PromptError(
            f"request {request.id!r}: option {letter!r} cannot be read as one token after the prompt: neither "
            f"{letter!r} nor {' ' + letter!r} adds exactly one token to its tokens when appended; "
            "use single-character letters and end the prompt at a cue such as 'Answer:' or '('"
        )
    return tuple(found)


def context_window(model: Any) -> int | None:
    """The number of positions the model was built for (``max_position_embeddings``), if it says."""
    config = getattr(model, "config", None)
    for name in ("max_position_embeddings", "n_positions", "max_sequence_length"):
        value = getattr(config, name, None)
        if isinstance(value, int) and value > 0:
            return value
    return None
