"""How a prompt is put to the model: ``plain`` text, or ``chat`` (the model's chat template).

The same question read two ways gives two different distributions, and an instruction-tuned
model answers with option letters mostly when it is addressed the way it was tuned: SmolLM2-135M-
Instruct puts 17% of its probability on the letters of the quick suite's OpinionQA-XL prompts
given as plain text and most of it in chat framing (the numbers are in docs/evaluation.md). So
``auto`` (the default) picks chat for a model that is instruction-tuned -- a built-in marked
``instruction_tuned`` in ``data/models.yaml``, or a Hugging Face model whose tokenizer has a chat
template -- and plain otherwise; ``--framing plain`` (or ``chat``) overrides it. Which framing a
run used is printed, recorded in its results (``run.config.framing``) and part of the scorer's
identity (``...:chat``), so cached scores of one framing are never read as the other's.

In chat framing the engine renders every segment but the last as the user turn and the last one,
the answer cue, as the start of the assistant turn (:mod:`ava.models.engine`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

FRAMINGS = ("auto", "chat", "plain")


class FramingError(ValueError):
    """A framing that cannot be used with this model; the message says what to do."""


@dataclass(frozen=True)
class Framing:
    """The framing a run uses (``chat`` or ``plain``; ``none`` for a scorer that reads no text)
    and why: ``asked`` is what the command line said (auto, chat or plain)."""

    name: str
    asked: str
    reason: str

    @property
    def chat(self) -> bool:
        return self.name == "chat"

    def describe(self) -> str:
        """One line for the output: the framing, why, and the flag for the other one."""
        if self.name == "none":
            return f"framing: none ({self.reason})"
        other = "plain" if self.chat else "chat"
        return f"framing: {self.name} ({self.reason}; --framing {other} for the {other} framing)"

    def to_config(self) -> dict[str, str]:
        return {"framing": self.name, "framing_asked": self.asked, "framing_reason": self.reason}


def resolve_framing(model: str, asked: str = "auto") -> Framing:
    """The framing for ``model`` (a built-in name, HF id or local folder), without loading it.

    ``asked`` ``chat`` for a model without a chat template is refused here, before anything
    slow; ``auto`` never fails on that (it picks plain).
    """
    from ava.models.loading import builtin_models, resolve_model

    if asked not in FRAMINGS:
        raise FramingError(f"--framing {asked!r}: expected one of {', '.join(FRAMINGS)}")
    spec = resolve_model(model)
    if spec.kind == "uniform":
        return Framing("none", asked, "the uniform baseline reads no text")
    if spec.kind == "builtin":
        entry = builtin_models()[spec.name]
        tuned = has_template = bool(entry.get("instruction_tuned", False))
        why_auto = (f"{spec.name} is instruction-tuned" if tuned
                    else f"{spec.name} is not instruction-tuned")
    else:
        has_template = has_chat_template(spec.path)
        tuned = has_template
        why_auto = f"{model} {'has' if has_template else 'has no'} chat template"
    if asked == "chat" and not has_template:
        raise FramingError(f"--framing chat: model {model!r} has no chat template; use --framing plain (or auto)")
    if asked == "auto":
        return Framing("chat" if tuned else "plain", asked, f"auto: {why_auto}")
    return Framing(asked, asked, f"--framing {asked}")


def has_chat_template(path_or_id: str) -> bool:
    """Whether a Hugging Face model's tokenizer has a chat template.

    A local folder is read directly (``chat_template.jinja`` / ``chat_template.json`` beside the
    tokenizer, or ``chat_template`` in ``tokenizer_config.json``: where transformers keeps it);
    a hub id is answered by loading its tokenizer (from the local cache when offline).
    """
    folder = Path(path_or_id).expanduser()
    if folder.is_dir():
        if (folder / "chat_template.jinja").is_file() or (folder / "chat_template.json").is_file():
            return True
        config = folder / "tokenizer_config.json"
        if config.is_file():
            try:
                return bool(json.loads(config.read_text(encoding="utf-8")).get("chat_template"))
            except (ValueError, UnicodeDecodeError):
                return False
        return False
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(path_or_id)
    except (OSError, ValueError):
        return False  # loading the model will fail with its own, clearer error
    return bool(getattr(tokenizer, "chat_template", None))
