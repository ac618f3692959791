"""Fine-tune a model on the instruction data with TRL's SFT trainer (LoRA via PEFT, or full).

Output folder (``--out``):

* ``train_config.json`` -- the settings, data and model, written first; a resumed run must match;
* ``checkpoints/checkpoint-N`` -- Trainer checkpoints (``--resume`` continues from the latest);
  TensorBoard logs, when asked for, under ``checkpoints/runs/``;
* ``adapter/`` (LoRA) or ``model/`` (full) -- the result, with the tokenizer;
* ``merged/`` -- with ``--merge``, the base model with the adapter folded in;
* ``training_card.json`` -- written last: its presence marks a finished run;
* ``training_failed.json`` -- instead of the card when the loss became NaN/inf (step and loss).

Everything that can be checked without the model is checked first (settings, output folder,
data, mix file), so a bad input fails in seconds, not after loading weights.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import math
import random
import shutil
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from ava.io import file_sha256, write_json
from ava.models.loading import ModelSpec, model_identity, resolve_model, weights_dir
from ava.training import encode, outdir
from ava.training.config import ConfigError, TrainConfig
from ava.training.data import TrainingDataError, manifest_sha256, open_split, stratified_indices
from ava.training.guard import NonFiniteLossError, StopOnNonFiniteLoss
from ava.training.mix import read_chat_jsonl

CARD_VERSION = 2
LIBRARIES = ("torch", "transformers", "trl", "peft", "datasets", "accelerate", "align-via-actions")
# peft 0.21 reads transformers 5's deprecated `is_gradient_checkpointing`: nothing a user can act on.
GC_WARNING = ".*is_gradient_checkpointing"
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
    split: Any  # the train split, a memory-mapped datasets.Dataset
    indices: list[int] | None  # the --limit sample, or None for all rows
    conversations: list[list[dict[str, str]]]
    binding: dict[str, Any]


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


def open_inputs(cfg: TrainConfig) -> Inputs:
    """Resolve the model, open and check the data and mix file, and the run's binding."""
    spec = resolve_model(cfg.model)
    if spec.kind == "uniform":
        raise ConfigError("the 'uniform' baseline has no weights to train; pass a model")
    split = open_split(cfg.data, "train")
    if len(split) == 0:
        raise TrainingDataError(f"{cfg.data}: the train split has no samples; nothing to train on")
    indices = None
    if cfg.limit is not None:
        indices = stratified_indices(split.with_format("arrow")["task"], cfg.limit, cfg.seed)
    conversations = read_chat_jsonl(cfg.mix) if cfg.mix else []
    binding = {
        **cfg.binding(),
        "data_manifest_sha256": manifest_sha256(cfg.data),
        "mix_sha256": file_sha256(cfg.mix) if cfg.mix else None,
        "model_identity": model_identity(spec),
    }
    return Inputs(spec, split, indices, conversations, binding)


def build_dataset(cfg: TrainConfig, inputs: Inputs, tokenizer: Any) -> tuple[Any, dict[str, Any]]:
    """Tokenised training rows (instruction pairs plus mixed-in chat) and what went into them."""
    from datasets import concatenate_datasets

    split = inputs.split if inputs.indices is None else inputs.split.select(inputs.indices)
    max_length = cfg.sft.get("max_length")
    num_proc = cfg.sft.get("dataset_num_proc")
    pairs = encode.encode_pairs(split.select_columns(["prompt", "response"]), tokenizer, max_length, num_proc)
    info: dict[str, Any] = {
        "dir": str(Path(cfg.data).resolve()),
        "manifest_sha256": inputs.binding["data_manifest_sha256"],
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
            "sha256": inputs.binding["mix_sha256"],
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


def merge_adapter(model_name: str, adapter: Path, target: Path) -> None:
    """Fold a LoRA adapter into a fresh copy of its base model and save it as a plain model."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    source = weights_dir(resolve_model(model_name))
    base = AutoModelForCausalLM.from_pretrained(source)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=GC_WARNING, category=FutureWarning)
        merged = PeftModel.from_pretrained(base, str(adapter)).merge_and_unload()
    tokenizer = AutoTokenizer.from_pretrained(str(adapter))

    def save(path: Path) -> None:
        merged.save_pretrained(path, safe_serialization=True)
        tokenizer.save_pretrained(path)

    _save_dir(save, target)


def _make_trainer(cfg: TrainConfig, inputs: Inputs, args: Any, dataset: Any, tokenizer: Any) -> Any:
    import torch
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM
    from trl import SFTTrainer

    dtype = torch.bfloat16 if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else torch.float32
    model = AutoModelForCausalLM.from_pretrained(weights_dir(inputs.spec), dtype=dtype)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=GC_WARNING, category=FutureWarning)
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
        merge_adapter(cfg.model, out / "adapter", out / "merged")
        outputs["merged"] = "merged"
    return outputs


def _preflight(cfg: TrainConfig, resume: bool) -> tuple[Inputs, bool]:
    """Open the inputs and bind the output folder (the caller holds its lock): refusals leave no folder."""
    out = Path(cfg.out)
    created = not out.exists()
    try:
        inputs = open_inputs(cfg)
        return inputs, outdir.bind(out, inputs.binding, {"config": cfg.to_dict()}, resume)
    except Exception:
        if created:  # refused before anything was written: leave no empty folder behind
            (out / outdir.LOCK).unlink(missing_ok=True)
            out.rmdir()
        raise


def train(
    cfg: TrainConfig, resume: bool = False, merge: bool = False, log: Callable[[str], None] | None = None
) -> TrainOutcome:
    """Run (or resume) one training job and write its outputs and training card.

    Under ``accelerate launch`` only the main process checks, locks and binds the folder and
    writes outputs; the others read the same inputs once it has tokenised them (shared cache).
    """
    from accelerate import PartialState
    from transformers import AutoTokenizer, set_seed

    say = log or (lambda _msg: None)
    out = Path(cfg.out)
    args = sft_config(cfg, out)
    _check_reporter(cfg)
    state = PartialState()
    if state.is_main_process:
        outdir.check_writable(out)
    with outdir.acquire(out) if state.is_main_process else contextlib.nullcontext():
        with state.main_process_first():
            if state.is_main_process:
                inputs, continuing = _preflight(cfg, resume)
            else:
                inputs, continuing = open_inputs(cfg), resume
            set_seed(cfg.seed)
            tokenizer = AutoTokenizer.from_pretrained(weights_dir(inputs.spec))
            dataset, data_info = build_dataset(cfg, inputs, tokenizer)
        say(describe_data(data_info))
        trainer = _make_trainer(cfg, inputs, args, dataset, tokenizer)
        has_checkpoint = any((out / "checkpoints").glob("checkpoint-*"))
        try:
            result = trainer.train(resume_from_checkpoint=True if continuing and has_checkpoint else None)
            if not math.isfinite(result.training_loss):  # a non-finite step after the last log
                raise NonFiniteLossError(trainer.state.global_step, result.training_loss, "mean training loss")
        except NonFiniteLossError as exc:
            write_json(out / outdir.FAILED, {"reason": "non-finite loss", "step": exc.step, "loss": str(exc.loss)})
            raise
        trainer.model.eval()
        card: dict[str, Any] = {}
        if trainer.is_world_process_zero():
            outputs = _save_outputs(cfg, inputs, trainer, tokenizer, merge)
            resumed = continuing and has_checkpoint
            card = _card(cfg, inputs, encode.describe_format(tokenizer), data_info, trainer, result, outputs, resumed)
            write_json(out / outdir.CARD, card)
    return TrainOutcome(card, trainer.model, tokenizer, list(trainer.state.log_history), dict(result.metrics))


def _card(
    cfg: TrainConfig, inputs: Inputs, prompt_format: str, data_info: dict[str, Any], trainer: Any, result: Any,
    outputs: dict[str, Any], resumed: bool,
) -> dict[str, Any]:
    """The training card: what was trained on what, how, and the outcome (no timings: same inputs, same card)."""
    return {
        "card_version": CARD_VERSION,
        "model": cfg.model,
        "base_model": portable_model_name(inputs.spec),
        "model_identity": inputs.binding["model_identity"],
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
