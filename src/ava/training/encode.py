"""Token ids and loss labels for prompt/completion rows, exactly as TRL makes them, with a stated cut.

TRL's SFT trainer tokenises a prompt-completion row as the prompt alone and the prompt plus the
completion (chat template or plain text with EOS appended), masks the common prefix from the loss,
then cuts every sequence to ``max_length`` from the right and silently drops the rows left with no
response token. On this data that is most rows at small lengths (``--max-length 128`` kept 4 of
16 pairs). ``ava train`` therefore tokenises itself -- the same ids and labels as TRL, tested -- and
fits a long pair into ``max_length`` by this rule, counting every row it touches:

* the response is what the loss is on, so it is kept whole when it fits with the prompt still
  holding at least half of the window;
* the prompt loses its middle: its head (system header and the task's question) and its tail
  (the end of the ad, "Answer:" and the assistant header that the response continues) are kept,
  split evenly; the middle is ad text, the part whose loss costs the pair least;
* a response longer than that loses its end (its end-of-turn token with it).

Nothing is dropped unless it has no response token at all, and that is counted too.
The rows go through ``datasets.map`` into the ``datasets`` cache (int32 columns), so a 25 M-pair
build is tokenised once, out of RAM, and reused by every run with the same tokenizer and length.
"""

from __future__ import annotations

import json
from typing import Any

from ava.instructions.prompt_format import has_chat_template, messages_record, training_record

COUNT_COLUMNS = ("prompt_cut", "response_cut")


def fit(n_prompt: int, n_completion: int, max_length: int | None) -> tuple[int, int, int]:
    """(prompt head, prompt tail, completion tokens) kept of a pair under ``max_length``."""
    if max_length is None or n_prompt + n_completion <= max_length:
        return n_prompt, 0, n_completion
    keep_prompt = min(n_prompt, max(max_length - n_completion, max_length // 2))
    head = (keep_prompt + 1) // 2
    return head, keep_prompt - head, max_length - keep_prompt


def tokenize_record(tokenizer: Any, record: dict[str, Any]) -> tuple[list[int], int]:
    """(prompt+completion ids, prompt length) for one TRL prompt-completion row, as TRL computes them."""
    prompt, completion = record["prompt"], record["completion"]
    if isinstance(prompt, list):  # conversational: the chat template writes its own special tokens
        prompt_ids = tokenizer.apply_chat_template(prompt, tokenize=True, return_dict=True, add_generation_prompt=True)
        full_ids = tokenizer.apply_chat_template(prompt + completion, tokenize=True, return_dict=True)
        prompt_ids, full_ids = prompt_ids["input_ids"], full_ids["input_ids"]
    else:
        eos = tokenizer.eos_token
        if not completion.endswith(eos):
            completion = completion + eos
        prompt_ids = tokenizer(text=prompt)["input_ids"]
        full_ids = tokenizer(text=prompt + completion)["input_ids"]
    n = 0  # the completion starts where the two diverge (TRL's common_prefix_length)
    for a, b in zip(prompt_ids, full_ids, strict=False):
        if a != b:
            break
        n += 1
    return list(full_ids), n


def encode_record(tokenizer: Any, record: dict[str, Any], max_length: int | None) -> dict[str, Any]:
    """input_ids, labels (-100 on the prompt), length, and how many tokens the cut removed."""
    ids, n_prompt = tokenize_record(tokenizer, record)
    n_completion = len(ids) - n_prompt
    head, tail, keep = fit(n_prompt, n_completion, max_length)
    prompt = ids[:head] + ids[n_prompt - tail : n_prompt]
    completion = ids[n_prompt : n_prompt + keep]
    return {
        "input_ids": prompt + completion,
        "labels": [-100] * len(prompt) + completion,
        "length": len(prompt) + len(completion),
        "prompt_cut": n_prompt - len(prompt),
        "response_cut": n_completion - len(completion),
    }


def _features() -> Any:
    from datasets import Features, List, Value

    return Features(
        {
            "input_ids": List(Value("int32")),
            "labels": List(Value("int32")),
            "length": Value("int32"),
            "prompt_cut": Value("int32"),
            "response_cut": Value("int32"),
        }
    )


def _encode_pairs(batch: dict[str, list], tokenizer: Any, max_length: int | None) -> dict[str, list]:
    rows = [
        encode_record(tokenizer, training_record(tokenizer, p, r), max_length)
        for p, r in zip(batch["prompt"], batch["response"], strict=True)
    ]
    return {k: [row[k] for row in rows] for k in _features()}


def _encode_chats(batch: dict[str, list], tokenizer: Any, max_length: int | None) -> dict[str, list]:
    rows = [encode_record(tokenizer, messages_record(tokenizer, json.loads(m)), max_length) for m in batch["messages"]]
    return {k: [row[k] for row in rows] for k in _features()}


def encode_pairs(dataset: Any, tokenizer: Any, max_length: int | None, num_proc: int | None = None) -> Any:
    """The instruction rows (columns prompt, response) as training rows, cached by ``datasets``."""
    return dataset.map(
        _encode_pairs,
        batched=True,
        batch_size=512,
        remove_columns=dataset.column_names,
        features=_features(),
        fn_kwargs={"tokenizer": tokenizer, "max_length": max_length},
        num_proc=num_proc,
        desc="Tokenizing instruction pairs",
    )


def encode_chats(conversations: list[list[dict[str, str]]], tokenizer: Any, max_length: int | None) -> Any:
    """Mixed-in chat conversations as training rows (held in memory: chat mixes are small)."""
    from datasets import Dataset

    source = Dataset.from_dict({"messages": [json.dumps(c, ensure_ascii=False) for c in conversations]})
    return source.map(
        _encode_chats,
        batched=True,
        remove_columns=["messages"],
        features=_features(),
        fn_kwargs={"tokenizer": tokenizer, "max_length": max_length},
        desc="Tokenizing chat mix",
    )


def cut_counts(dataset: Any) -> dict[str, int]:
    """How many rows the length rule touched, and how many tokens it removed (for the card)."""
    import pyarrow.compute as pc

    def count(name: str) -> int:
        return int(pc.sum(pc.greater(dataset.data.column(name), 0)).as_py() or 0)

    def total(name: str) -> int:
        return int(pc.sum(dataset.data.column(name)).as_py() or 0)

    return {
        "n_rows": len(dataset),
        "n_prompt_truncated": count("prompt_cut"),
        "n_response_truncated": count("response_cut"),
        "prompt_tokens_removed": total("prompt_cut"),
        "response_tokens_removed": total("response_cut"),
        "n_tokens": total("length"),
        "max_length_seen": int(pc.max(dataset.data.column("length")).as_py() or 0),
    }


def describe_format(tokenizer: Any) -> str:
    return "chat-template" if has_chat_template(tokenizer) else "plain: prompt\\n\\nresponse</s>"
