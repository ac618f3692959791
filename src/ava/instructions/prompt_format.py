"""One place that decides how a prompt/response pair is shown to a model.

Training (TRL's prompt-completion format) and evaluation (generation, perplexity) must present
the prompt identically, or the evaluated model is asked something it was never trained on.
Models with a chat template get a one-turn conversation; models without one (the ``tiny`` test
model) fall back to plain text, ``"{prompt}\\n\\n{response}"``.

It lives in ``ava.instructions``, below both ``ava.training`` and ``ava.evals``: the format is part
of what an instruction sample is (its prompt as the model reads it), so the two users import it
from the package that makes the samples rather than one from the other. It needs only a
tokenizer, nothing of either user.
"""

from __future__ import annotations

from typing import Any

PLAIN_SEPARATOR = "\n\n"


def has_chat_template(tokenizer: Any) -> bool:
    return bool(getattr(tokenizer, "chat_template", None))


def training_record(tokenizer: Any, prompt: str, response: str) -> dict[str, Any]:
    """A TRL prompt-completion row: conversational when the model has a chat template.

    TRL masks the loss to the completion for both shapes and appends EOS to plain completions.
    """
    if has_chat_template(tokenizer):
        return {
            "prompt": [{"role": "user", "content": prompt}],
            "completion": [{"role": "assistant", "content": response}],
        }
    return {"prompt": prompt + PLAIN_SEPARATOR, "completion": response}


def messages_record(tokenizer: Any, messages: list[dict[str, str]]) -> dict[str, Any]:
    """A multi-turn chat (ending with the assistant's turn) as a prompt-completion row."""
    *context, last = messages
    if has_chat_template(tokenizer):
        return {"prompt": list(context), "completion": [last]}
    prompt = PLAIN_SEPARATOR.join(m["content"] for m in context)
    return {"prompt": prompt + PLAIN_SEPARATOR, "completion": last["content"]}


def generation_prefix(tokenizer: Any, prompt: str) -> str:
    """The exact text the model continues at evaluation (what TRL tokenised as the prompt)."""
    if has_chat_template(tokenizer):
        return tokenizer.apply_chat_template(
            [{"role": "user", "content": prompt}], add_generation_prompt=True, tokenize=False
        )
    return prompt + PLAIN_SEPARATOR


def encode_prefix(tokenizer: Any, texts: list[str]) -> list[list[int]]:
    """Token ids of generation prefixes, with special tokens exactly as TRL adds them.

    A chat template already writes its special tokens, so none are added; plain text gets the
    tokenizer's default (e.g. BOS), as ``tokenizer(text)`` does in TRL.
    """
    add = not has_chat_template(tokenizer)
    return [tokenizer(t, add_special_tokens=add)["input_ids"] for t in texts]
