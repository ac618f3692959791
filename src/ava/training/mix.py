"""General chat data to mix into training (``--mix``): read strictly, every line checked.

Each line holds ``{"messages": [{"role", "content"}, ...]}`` (ending with the assistant's turn)
or ``{"prompt": str, "completion": str}``. Any bad line stops the run with ``file:line: reason``:
silently training on less data than asked for would make the mixing ratio a lie, and a role the
chat template does not know ("wizard") or a non-string content would be rendered as nonsense.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

ROLES = ("system", "user", "assistant")


class TrainingDataError(ValueError):
    """Training input that cannot be used (a bad ``--mix`` line, an empty train split); the message
    names the file and what to do. A build that cannot be read is :class:`~ava.instructions.dataset.DatasetError`."""


def read_chat_jsonl(path: str | Path) -> list[list[dict[str, str]]]:
    """Conversations (lists of ``{"role", "content"}``) ending with the assistant's turn."""
    path = Path(path)
    conversations: list[list[dict[str, str]]] = []
    errors: list[str] = []
    try:
        with open(path, "rb") as fh:
            for lineno, raw in enumerate(fh, 1):
                try:
                    line = raw.decode("utf-8")
                    if not line.strip():
                        continue
                    conversations.append(conversation(json.loads(line)))
                except UnicodeDecodeError as exc:
                    errors.append(f"{path}:{lineno}: not UTF-8 text (byte {exc.start} of the line)")
                except json.JSONDecodeError as exc:
                    errors.append(f"{path}:{lineno}: not a JSON line ({exc.msg}, column {exc.colno})")
                except ValueError as exc:
                    errors.append(f"{path}:{lineno}: {exc}")
    except OSError as exc:
        raise TrainingDataError(f"{path}: cannot read the --mix file ({exc.strerror or exc})") from exc
    if errors:
        more = f" (and {len(errors) - 1} more bad line(s))" if len(errors) > 1 else ""
        raise TrainingDataError(
            f"{errors[0]}{more}; each --mix line must be "
            '{"messages": [{"role": "user"|"assistant"|"system", "content": str}, ...]} '
            'or {"prompt": str, "completion": str}'
        )
    if not conversations:
        raise TrainingDataError(f"{path}: no conversations in the --mix file (it is empty)")
    return conversations


def conversation(obj: Any) -> list[dict[str, str]]:
    """One JSON line as a conversation, or ValueError saying what is wrong with it."""
    if not isinstance(obj, dict):
        raise ValueError(f"expected a JSON object, got {type(obj).__name__}")
    if "messages" in obj:
        messages = obj["messages"]
        if not isinstance(messages, list):
            raise ValueError(f'"messages" must be a list, got {type(messages).__name__}')
        out = [_message(m, k) for k, m in enumerate(messages)]
    elif "prompt" in obj and "completion" in obj:
        for key in ("prompt", "completion"):
            if not isinstance(obj[key], str):
                raise ValueError(f'"{key}" must be a string, got {type(obj[key]).__name__}')
        out = [{"role": "user", "content": obj["prompt"]}, {"role": "assistant", "content": obj["completion"]}]
    else:
        raise ValueError(f'needs "messages" or "prompt" and "completion" (keys found: {", ".join(sorted(obj))})')
    if len(out) < 2 or out[-1]["role"] != "assistant":
        raise ValueError("a conversation needs at least two turns and must end with the assistant's")
    return out


def _message(message: Any, k: int) -> dict[str, str]:
    if not isinstance(message, dict):
        raise ValueError(f"messages[{k}] must be an object, got {type(message).__name__}")
    role, content = message.get("role"), message.get("content")
    if role not in ROLES:
        raise ValueError(f"messages[{k}]: role {role!r} is not one of {', '.join(ROLES)}")
    if not isinstance(content, str):
        raise ValueError(f"messages[{k}]: content must be a string, got {type(content).__name__}")
    return {"role": role, "content": content}
