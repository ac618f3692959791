"""Read the instruction data that ``ava build`` writes, and the optional chat data to mix in.

Layout read here: ``DIR/data/<split>/part-*.parquet`` with one column per field of
:class:`~ava.contracts.instructions.InstructionSample`, and ``DIR/manifest.json``.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ava.contracts.instructions import SPLITS, InstructionSample

REQUIRED = ("id", "task", "family", "prompt", "response")


class TrainingDataError(ValueError):
    """Input data that cannot be used; the message names the file and what to do."""


def split_files(data_dir: Path, split: str) -> list[Path]:
    if split not in SPLITS:
        raise TrainingDataError(f"unknown split {split!r}: use one of {', '.join(SPLITS)}")
    folder = Path(data_dir) / "data" / split
    files = sorted(folder.glob("part-*.parquet"))
    if not files:
        raise TrainingDataError(
            f"{folder}: no part-*.parquet files; build the instruction data first (ava build --out {data_dir})"
        )
    return files


def read_split(data_dir: Path, split: str) -> list[InstructionSample]:
    """All samples of one split, in file order (the builder's order is already deterministic)."""
    import pyarrow.parquet as pq

    samples: list[InstructionSample] = []
    for path in split_files(data_dir, split):
        table = pq.read_table(path)
        missing = [c for c in REQUIRED if c not in table.column_names]
        if missing:
            raise TrainingDataError(f"{path}: missing column(s) {', '.join(missing)}; rebuild with ava build")
        for row in table.to_pylist():
            row.setdefault("split", split)
            row["ad_ids"] = tuple(row.get("ad_ids") or ())
            samples.append(
                InstructionSample(
                    id=row["id"],
                    task=row["task"],
                    family=row["family"],
                    split=row["split"],
                    prompt=row["prompt"],
                    response=row["response"],
                    advertiser=row.get("advertiser") or "",
                    ad_ids=row["ad_ids"],
                    template_version=row.get("template_version") or "",
                    label=row.get("label"),
                    source_text=row.get("source_text"),
                )
            )
    return samples


def manifest_sha256(data_dir: Path) -> str:
    """Hash of ``manifest.json``: names the exact dataset a model was trained or scored on."""
    path = Path(data_dir) / "manifest.json"
    if not path.exists():
        raise TrainingDataError(f"{path}: not found; is {data_dir} the output folder of ava build?")
    return hashlib.sha256(path.read_bytes()).hexdigest()


def stratified_sample(
    samples: Sequence[InstructionSample], limit: int | None, seed: int, per_task: bool = False
) -> list[InstructionSample]:
    """A seeded sample keeping every task: ``limit`` in total (split evenly), or per task.

    Output order is the input order, so the same inputs give the same list.
    """
    if limit is None:
        return list(samples)
    by_task: dict[str, list[int]] = defaultdict(list)
    for i, s in enumerate(samples):
        by_task[s.task].append(i)
    rng = random.Random(seed)
    keep: set[int] = set()
    tasks = sorted(by_task)
    for k, task in enumerate(tasks):
        quota = limit if per_task else limit // len(tasks) + (1 if k < limit % len(tasks) else 0)
        idx = by_task[task]
        keep.update(idx if len(idx) <= quota else rng.sample(idx, quota))
    return [s for i, s in enumerate(samples) if i in keep]


def read_chat_jsonl(path: Path) -> list[list[dict[str, str]]]:
    """General chat data as conversations ending with the assistant's turn.

    Each line holds ``{"messages": [{"role", "content"}, ...]}`` or ``{"prompt", "completion"}``
    strings. Any bad line stops the run with its location: silently training on less data than
    asked for would make the mixing ratio a lie.
    """
    conversations: list[list[dict[str, str]]] = []
    errors: list[str] = []
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                conversations.append(_conversation(json.loads(line)))
            except (json.JSONDecodeError, TypeError, KeyError, ValueError) as exc:
                errors.append(f"{path}:{lineno}: {exc}")
    if errors:
        shown = "\n".join(errors[:10])
        raise TrainingDataError(
            f"{len(errors)} bad line(s) in the --mix file; fix or remove them "
            '(each line: {"messages": [...]} or {"prompt": str, "completion": str}):\n' + shown
        )
    if not conversations:
        raise TrainingDataError(f"{path}: no conversations found")
    return conversations


def _conversation(obj: Any) -> list[dict[str, str]]:
    if not isinstance(obj, dict):
        raise ValueError("expected a JSON object")
    if "messages" in obj:
        messages = [{"role": str(m["role"]), "content": str(m["content"])} for m in obj["messages"]]
    elif "prompt" in obj and "completion" in obj:
        messages = [
            {"role": "user", "content": str(obj["prompt"])},
            {"role": "assistant", "content": str(obj["completion"])},
        ]
    else:
        raise ValueError('needs "messages" or "prompt" and "completion"')
    if len(messages) < 2 or messages[-1]["role"] != "assistant":
        raise ValueError("a conversation needs at least two turns and must end with the assistant's")
    return messages
