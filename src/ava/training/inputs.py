"""What a training run reads, opened and checked before any model is loaded.

The model (resolved at its revision: the identity the run is bound to), the instruction data's
train split (memory-mapped) with its ``--limit`` sample, and the chat data to mix in; then, once
the tokenizer is loaded, the tokenised rows and what went into them (the card's ``data``).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ava.instructions.dataset import DatasetLayout, manifest_sha256, open_split
from ava.instructions.selection import stratified_indices
from ava.io import file_sha256
from ava.models.devices import resolve_dtype
from ava.models.loading import ModelSpec, hub_commit, model_identity, resolve_model
from ava.runs import Binding, read_run
from ava.subsets import seeded_subset
from ava.training import encode
from ava.training.config import ConfigError, TrainConfig
from ava.training.mix import TrainingDataError, read_chat_jsonl


@dataclass
class Inputs:
    """What a run reads, opened and checked before any model is loaded."""

    spec: ModelSpec
    commit: str | None  # the hub commit the model's revision resolves to (None: not a hub model)
    identity: str  # the model identity (weights and dtype) the run is bound to
    split: Any  # the train split, a memory-mapped datasets.Dataset
    indices: list[int] | None  # the --limit sample, or None for all rows
    conversations: list[list[dict[str, str]]]
    data_sha256: str  # of the build's manifest.json
    mix_sha256: str | None
    options: dict[str, Any] = field(default_factory=dict)  # TrainConfig.binding(): settings that change weights
    data_files: list[list[str]] = field(default_factory=list)  # [name, sha256] of each train part read

    @property
    def binding(self) -> Binding:
        """The model identity, a hash of the data and mix file, and every setting that changes the weights."""
        inputs = hashlib.sha256(json.dumps([self.data_sha256, self.mix_sha256]).encode()).hexdigest()[:16]
        return Binding(model=self.identity, inputs=inputs, options=self.options)



def train_dtype(name: str, device: str) -> Any:
    """The dtype weights are loaded in for training: ``auto`` is bf16 on a GPU that has it natively,
    else fp32 (fp16 weights do not train without loss scaling); others as for scoring."""
    import torch

    if name == "auto":
        return torch.bfloat16 if device.startswith("cuda") and torch.cuda.is_bf16_supported() else torch.float32
    return resolve_dtype(name, device)



def open_inputs(cfg: TrainConfig) -> Inputs:
    """Resolve the model (at its revision), open and check the data and mix file, and the run's binding."""
    from ava.models.devices import default_device

    spec = resolve_model(cfg.model, cfg.revision)
    if spec.kind == "uniform":
        raise ConfigError("the 'uniform' baseline has no weights to train; pass a model")
    commit = hub_commit(spec.path, spec.revision) if spec.on_hub else None
    identity = model_identity(spec, dtype=train_dtype(cfg.dtype, default_device()))
    split = open_split(cfg.data, "train")
    if len(split) == 0:
        raise TrainingDataError(f"{cfg.data}: the train split has no samples; nothing to train on")
    indices = None
    if cfg.limit is not None:
        indices = stratified_indices(split.with_format("arrow")["task"], cfg.limit, cfg.seed)
    conversations = read_chat_jsonl(cfg.mix) if cfg.mix else []
    return Inputs(spec, commit, identity, split, indices, conversations, manifest_sha256(cfg.data),
                  file_sha256(cfg.mix) if cfg.mix else None, cfg.binding(), train_part_hashes(cfg.data))


def train_part_hashes(build: str | Path) -> list[list[str]]:
    """``[name, sha256]`` of every Parquet part of the build's train split: the rows a run reads.
    The binding holds the manifest's hash, which names the build's settings and inputs but not its
    rows; a part edited or replaced in place is caught by comparing these on resume
    (:func:`check_same_rows`), without changing the binding of runs made before."""
    layout = DatasetLayout(Path(build))
    return [[part.relative_to(layout.root).as_posix(), file_sha256(part)] for part in layout.parts("train")]


def check_same_rows(out: str | Path, build: str | Path, binding: Binding, files: list[list[str]],
                    restart: bool) -> None:
    """Refuse to resume a run in ``out`` bound to the same build manifest whose first run read other
    train parts than ``files`` (recorded in its run record's ``data_files``), naming what changed.
    Another binding (another build, model or setting) is ``start_run``'s to refuse, with its own
    message; records from before this check carry no parts and are not refused."""
    if restart:
        return
    try:
        previous = read_run(out)
    except (OSError, ValueError):
        return
    if previous is None or previous.binding.differences(binding):
        return
    before = dict(map(tuple, previous.info.get("data_files") or []))
    now = dict(map(tuple, files))
    if not before or before == now:
        return
    changed = sorted(name for name in before.keys() | now.keys() if before.get(name) != now.get(name))
    raise TrainingDataError(f"{out} was trained on other rows of {build}: {', '.join(changed[:3])} changed since "
                            "(edited, added or removed in place); pass --restart to train again on the build as it is, "
                            "or give the build it was trained on")



def build_dataset(cfg: TrainConfig, inputs: Inputs, tokenizer: Any) -> tuple[Any, dict[str, Any]]:
    """Tokenised training rows (instruction pairs plus mixed-in chat) and what went into them."""
    from datasets import concatenate_datasets

    split = inputs.split if inputs.indices is None else inputs.split.select(inputs.indices)
    max_length = cfg.sft.get("max_length")
    num_proc = cfg.sft.get("dataset_num_proc")
    pairs = encode.encode_pairs(split.select_columns(["prompt", "response"]), tokenizer, max_length, num_proc)
    info: dict[str, Any] = {
        "dir": str(Path(cfg.data).resolve()),
        "manifest_sha256": inputs.data_sha256,
        "split": "train",
        "limit": cfg.limit,
        "n_samples": len(pairs),
        "by_task": _task_counts(split),
        "length_rule": {"max_length": max_length, **encode.cut_counts(pairs)},
        "mix": None,
    }
    parts = [pairs]
    if cfg.mix:
        wanted = round(len(pairs) * cfg.mix_ratio / (1.0 - cfg.mix_ratio))
        n_mix = min(wanted, len(inputs.conversations))
        chosen = seeded_subset(len(inputs.conversations), n_mix, cfg.seed, "python") if n_mix else []
        chats = encode.encode_chats([inputs.conversations[i] for i in chosen], tokenizer, max_length)
        parts.append(chats)
        info["mix"] = {
            "file": str(Path(cfg.mix).resolve()),
            "sha256": inputs.mix_sha256,
            "n_lines": len(inputs.conversations),
            "ratio_requested": cfg.mix_ratio,
            "n_wanted": wanted,
            "n_used": n_mix,
            "ratio_achieved": round(n_mix / (len(pairs) + n_mix), 6),
            "length_rule": encode.cut_counts(chats),
        }
    dataset = concatenate_datasets(parts) if len(parts) > 1 else pairs
    # The Trainer's seeded sampler orders the rows; the count columns were for the card only.
    return dataset.remove_columns(list(encode.COUNT_COLUMNS)), info


def _task_counts(split: Any) -> dict[str, int]:
    import pyarrow.compute as pc

    counts = pc.value_counts(split.with_format("arrow")["task"]).to_pylist()
    return dict(sorted((c["values"], int(c["counts"])) for c in counts))


