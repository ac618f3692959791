"""Fine-tune a model on the instruction data with TRL's SFT trainer (LoRA via PEFT, or full).

Output folder (``--out``), one run (:mod:`ava.runs`):

* ``run.json`` -- the run record: written first as ``running`` with the binding (model identity,
  a hash of the data's manifest and the mix file, every setting that changes the weights) and all
  settings (``info.config``); last as ``complete``, ``interrupted`` (Ctrl-C, ``kill``) or
  ``failed`` with the reason (e.g. the step and loss where it became NaN). A rerun of the same
  command resumes from the latest checkpoint; one with other settings is refused naming what
  differs; ``--restart`` starts over; ``.lock`` keeps a second ``ava train`` out;
* ``checkpoints/checkpoint-N`` -- Trainer checkpoints; TensorBoard logs, when asked for, under
  ``checkpoints/runs/``;
* ``adapter/`` (LoRA) or ``model/`` (full) -- the result, with the tokenizer;
* ``merged/`` -- with ``--merge``, the base model with the adapter folded in;
* ``training_card.json`` -- what was trained on what, how, and the outcome (written when complete).

Everything that can be checked without the model is checked first (settings, output folder,
data, mix file), so a bad input fails in seconds, not after loading weights.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import math
import random
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from ava.instructions.dataset import manifest_sha256, open_split
from ava.instructions.selection import stratified_indices
from ava.io import file_sha256, write_json
from ava.models.loading import (
    ModelSpec,
    hub_commit,
    model_identity,
    quiet_peft,
    resolve_dtype,
    resolve_model,
    weights_dir,
)
from ava.runs import Binding, Output, check_writable, start_run
from ava.training import encode
from ava.training.config import ConfigError, TrainConfig
from ava.training.guard import NonFiniteLossError, StopOnNonFiniteLoss
from ava.training.mix import TrainingDataError, read_chat_jsonl

CARD_VERSION = 2
KIND = "train"
CARD = "training_card.json"
OWNED = ("checkpoints", "adapter", "model", "merged", CARD, ".adapter.tmp", ".model.tmp", ".merged.tmp")
"""What a run writes in ``--out`` besides ``run.json``: refused without a record, removed by ``--restart``."""
LIBRARIES = ("torch", "transformers", "trl", "peft", "datasets", "accelerate", "align-via-actions")
EXTRAS = {"tensorboard": ("tensorboard", "tensorboardX"), "wandb": ("wandb",)}


@dataclass
class TrainOutcome:
    card: dict[str, Any]
    model: Any  # the trained model (a PeftModel for LoRA), in eval mode
    tokenizer: Any
    log_history: list[dict[str, Any]]
    metrics: dict[str, Any]  # the Trainer's run metrics (runtime, samples/s): not in the card


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

    @property
    def binding(self) -> Binding:
        """The model identity, a hash of the data and mix file, and every setting that changes the weights."""
        inputs = hashlib.sha256(json.dumps([self.data_sha256, self.mix_sha256]).encode()).hexdigest()[:16]
        return Binding(model=self.identity, inputs=inputs, options=self.options)


def portable_model_name(spec: ModelSpec) -> str:
    """The base model as another machine can find it: built-in name, hub id, or the user's folder.

    Never the cache folder a built-in model was converted into (``~/.cache/ava/models/...``).
    """
    if spec.kind == "builtin" or not Path(spec.path).is_absolute():
        return spec.name
    return spec.path


def sft_config(cfg: TrainConfig, out: Path) -> Any:
    """The ``trl.SFTConfig`` of a run (built before anything loads, so bad values fail early)."""
    import torch
    from trl import SFTConfig

    kwargs = dict(cfg.sft)
    kwargs.setdefault("seed", cfg.seed)
    kwargs.setdefault("data_seed", cfg.seed)
    kwargs["logging_nan_inf_filter"] = False  # a NaN loss must reach StopOnNonFiniteLoss
    if not torch.cuda.is_available():
        kwargs.setdefault("bf16", False)  # TRL's default bf16 needs a GPU unless asked for on CPU
        kwargs.setdefault("dataloader_pin_memory", False)  # nothing to pin to; avoids a warning
    # Rows arrive tokenised and already fitted to max_length (ava.training.encode); TRL only needs
    # the length to pack, and refuses it with padding_free alone.
    if not kwargs.get("packing"):
        kwargs["max_length"] = None
    if kwargs.get("train_sampling_strategy") in ("group_by_length", "batch_rebalance"):
        kwargs.setdefault("remove_unused_columns", False)  # keep the "length" column for the sampler
    try:
        return SFTConfig(output_dir=str(out / "checkpoints"), **kwargs)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"invalid training settings: {str(exc).splitlines()[0]}") from exc


def _check_reporter(cfg: TrainConfig) -> None:
    target = cfg.sft.get("report_to") or "none"
    if target in EXTRAS and not any(importlib.util.find_spec(m) for m in EXTRAS[target]):
        raise ConfigError(f"--report-to {target} needs the {target} package: "
                          f"pip install 'align-via-actions[{target}]'")


def train_dtype(name: str, device: str) -> Any:
    """The dtype weights are loaded in for training: ``auto`` is bf16 on a GPU that has it natively,
    else fp32 (fp16 weights do not train without loss scaling); others as for scoring."""
    import torch

    if name == "auto":
        return torch.bfloat16 if device.startswith("cuda") and torch.cuda.is_bf16_supported() else torch.float32
    return resolve_dtype(name, device)


def open_inputs(cfg: TrainConfig) -> Inputs:
    """Resolve the model (at its revision), open and check the data and mix file, and the run's binding."""
    from ava.models.loading import default_device

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
                  file_sha256(cfg.mix) if cfg.mix else None, cfg.binding())


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
        chosen = sorted(random.Random(cfg.seed).sample(range(len(inputs.conversations)), n_mix))
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


def _versions() -> dict[str, str]:
    found = {}
    for name in LIBRARIES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "not installed"
    return found


def _save_dir(save: Callable[[Path], None], target: Path) -> None:
    """Save into a temporary folder, then rename: a half-saved model never looks complete."""
    tmp = target.with_name(f".{target.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    save(tmp)
    shutil.rmtree(target, ignore_errors=True)
    tmp.rename(target)


def merge_adapter(inputs: Inputs, adapter: Path, target: Path) -> None:
    """Fold a LoRA adapter into a fresh copy of its base model (at the run's commit) and save it as a plain model."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    base = AutoModelForCausalLM.from_pretrained(weights_dir(inputs.spec), revision=inputs.commit)
    with quiet_peft():
        merged = PeftModel.from_pretrained(base, str(adapter)).merge_and_unload()
    tokenizer = AutoTokenizer.from_pretrained(str(adapter))

    def save(path: Path) -> None:
        merged.save_pretrained(path, safe_serialization=True)
        tokenizer.save_pretrained(path)

    _save_dir(save, target)


def _make_trainer(cfg: TrainConfig, inputs: Inputs, args: Any, dataset: Any, tokenizer: Any) -> Any:
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM
    from trl import SFTTrainer

    from ava.models.loading import default_device

    kwargs: dict[str, Any] = {"dtype": train_dtype(cfg.dtype, default_device()), "revision": inputs.commit}
    if cfg.device_map is not None:
        kwargs["device_map"] = cfg.device_map
    model = AutoModelForCausalLM.from_pretrained(weights_dir(inputs.spec), **kwargs)
    with quiet_peft():
        return SFTTrainer(
            model=model,
            args=args,
            train_dataset=dataset,
            processing_class=tokenizer,
            peft_config=LoraConfig(**cfg.lora) if cfg.method == "lora" else None,
            callbacks=[StopOnNonFiniteLoss()],
        )


def _save_outputs(cfg: TrainConfig, inputs: Inputs, trainer: Any, tokenizer: Any, merge: bool) -> dict[str, Any]:
    out = Path(cfg.out)
    outputs: dict[str, Any] = {"adapter": None, "model": None, "merged": None}
    name = "adapter" if cfg.method == "lora" else "model"
    model = trainer.model
    if cfg.method == "lora":  # PEFT records model.config's name, a cache folder for built-in models
        for peft_config in model.peft_config.values():
            peft_config.base_model_name_or_path = portable_model_name(inputs.spec)
            peft_config.revision = inputs.commit  # a hub base loads at the commit it was trained on

    def save(path: Path) -> None:
        if cfg.method == "lora":  # LoRA never resizes the embeddings: no need to probe the base's vocabulary
            model.save_pretrained(path, safe_serialization=True, save_embedding_layers=False)
        else:
            model.save_pretrained(path, safe_serialization=True)
        tokenizer.save_pretrained(path)

    _save_dir(save, out / name)
    outputs[name] = name
    if cfg.method == "lora":
        saved = json.loads((out / name / "adapter_config.json").read_text(encoding="utf-8"))
        outputs["adapter_base_model"] = saved.get("base_model_name_or_path")
    if merge and cfg.method == "lora":
        merge_adapter(inputs, out / "adapter", out / "merged")
        outputs["merged"] = "merged"
    return outputs


def train(
    cfg: TrainConfig, resume: bool = True, merge: bool = False, log: Callable[[str], None] | None = None, *,
    restart: bool = False,
) -> TrainOutcome:
    """Run one training job (or resume it from its latest checkpoint) and write its outputs and card.

    ``resume`` is kept for callers of the old signature and changes nothing: a run always resumes
    its own unfinished work; ``restart`` (keyword only, so no positional ``True`` can mean it)
    discards what ``--out`` holds first.

    ``--out`` is opened with :func:`ava.runs.start_run` after the inputs are checked (a refusal
    leaves no folder): one writer, bound to the model, data and settings, ``restart`` starts over.
    A run that finished before returns its card without training (``model`` is then None).
    Under ``accelerate launch`` only the main process checks, locks and binds the folder and
    writes the record and outputs; the others read the same inputs once it has tokenised them
    (shared cache).
    """
    from accelerate import PartialState
    from transformers import AutoTokenizer, set_seed

    say = log or (lambda _msg: None)
    out = Path(cfg.out)
    args = sft_config(cfg, out)
    _check_reporter(cfg)
    state = PartialState()
    if cfg.device_map is not None and state.num_processes > 1:
        raise ConfigError("--device-map spreads one model over the GPUs of one process; under accelerate launch "
                          "every process trains its own copy: drop one of them")
    if state.is_main_process:
        check_writable(Output(out, folder=True))
    with contextlib.ExitStack() as stack:
        with state.main_process_first():
            inputs = open_inputs(cfg)
            if state.is_main_process:
                stack.enter_context(start_run(Output(out, folder=True), KIND, inputs.binding, restart=restart,
                                              owned=OWNED, info={"config": cfg.to_dict()}))
            finished = (out / CARD).is_file()  # this very run finished before: nothing to do
            if not finished:
                set_seed(cfg.seed)
                tokenizer = AutoTokenizer.from_pretrained(weights_dir(inputs.spec), revision=inputs.commit)
                dataset, data_info = build_dataset(cfg, inputs, tokenizer)
        if finished:
            say(f"already trained with these settings: {out / CARD} (--restart trains again)")
            outcome = TrainOutcome(json.loads((out / CARD).read_text(encoding="utf-8")), None, None, [], {})
        else:
            say(describe_data(data_info))
            outcome = _fit(cfg, inputs, args, dataset, data_info, tokenizer, merge)
    return outcome


def _fit(cfg: TrainConfig, inputs: Inputs, args: Any, dataset: Any, data_info: dict[str, Any], tokenizer: Any,
         merge: bool) -> TrainOutcome:
    """Train (from the latest checkpoint if the run has one), save the result and write the card."""
    out = Path(cfg.out)
    trainer = _make_trainer(cfg, inputs, args, dataset, tokenizer)
    # A checkpoint here belongs to this run: start_run refused or removed any other one.
    latest = latest_checkpoint(out / "checkpoints", remove_incomplete=trainer.is_world_process_zero())
    resumed = latest is not None
    result = trainer.train(resume_from_checkpoint=str(latest) if latest else None)
    if not math.isfinite(result.training_loss):  # a non-finite step after the last log
        raise NonFiniteLossError(trainer.state.global_step, result.training_loss, "mean training loss")
    trainer.model.eval()
    card: dict[str, Any] = {}
    if trainer.is_world_process_zero():
        outputs = _save_outputs(cfg, inputs, trainer, tokenizer, merge)
        card = _card(cfg, inputs, encode.describe_format(tokenizer), data_info, trainer, result, outputs, resumed)
        write_json(out / CARD, card)
    return TrainOutcome(card, trainer.model, tokenizer, list(trainer.state.log_history), dict(result.metrics))


def latest_checkpoint(folder: Path, remove_incomplete: bool = True) -> Path | None:
    """The newest checkpoint the Trainer finished writing; any it did not are skipped (and removed
    by the one process that writes, ``remove_incomplete``).

    Why not the Trainer's own ``resume_from_checkpoint=True``: it takes the highest-numbered
    folder, and a run killed while saving leaves one without its optimizer or state files, so the
    rerun would fail on a missing file. ``trainer_state.json`` is the last file the Trainer writes
    into a checkpoint: a folder whose state file is missing or unreadable is incomplete.
    """
    found = []
    for path in folder.glob("checkpoint-*") if folder.is_dir() else []:
        step = path.name.removeprefix("checkpoint-")
        if not (path.is_dir() and step.isdigit()):
            continue
        try:
            json.loads((path / "trainer_state.json").read_text(encoding="utf-8"))
            found.append((int(step), path))
        except (OSError, ValueError):
            if remove_incomplete:  # half-written by a killed run: redone from the previous checkpoint
                shutil.rmtree(path, ignore_errors=True)
    return max(found)[1] if found else None


def _card(
    cfg: TrainConfig, inputs: Inputs, prompt_format: str, data_info: dict[str, Any], trainer: Any, result: Any,
    outputs: dict[str, Any], resumed: bool,
) -> dict[str, Any]:
    """The training card: what was trained on what, how, and the outcome (no timings: same inputs, same card)."""
    return {
        "card_version": CARD_VERSION,
        "model": cfg.model,
        "base_model": portable_model_name(inputs.spec),
        "model_identity": inputs.identity,
        "method": cfg.method,
        "prompt_format": prompt_format,
        "seed": cfg.seed,
        "data": data_info,
        "hyperparameters": {"sft": cfg.sft, "sources": cfg.sources, "lora": cfg.lora, "limit": cfg.limit,
                            "mix_ratio": cfg.mix_ratio},
        "result": {
            "global_step": trainer.state.global_step,
            "train_loss": round(float(result.training_loss), 6),
            "resumed": bool(resumed),
            "world_size": trainer.args.world_size,
        },
        "outputs": outputs,
        "libraries": _versions(),
    }


def describe_data(info: dict[str, Any]) -> str:
    """One line on what the run trains on, including every pair the length rule touched."""
    rule = info["length_rule"]
    text = (f"data: {info['n_samples']} instruction pairs ({len(info['by_task'])} tasks, {rule['n_tokens']} tokens); "
            f"max_length {rule['max_length']}: {rule['n_prompt_truncated']} prompt(s) cut in the middle "
            f"({rule['prompt_tokens_removed']} tokens), {rule['n_response_truncated']} response(s) cut at the end "
            f"({rule['response_tokens_removed']} tokens), 0 dropped")
    if info.get("mix"):
        mix = info["mix"]
        text += (f"; chat mix: {mix['n_used']} of {mix['n_lines']} conversations "
                 f"(ratio {mix['ratio_achieved']}, asked {mix['ratio_requested']})")
    return text
