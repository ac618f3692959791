"""Fine-tune a model on the instruction data with TRL's SFT trainer (LoRA via PEFT, or full).

Output folder (``--out``):

* ``train_config.json`` -- the settings, written first; a resumed run must match it exactly;
* ``checkpoints/checkpoint-N`` -- Trainer checkpoints (``--resume`` continues from the latest);
* ``adapter/`` (LoRA) or ``model/`` (full) -- the result, with the tokenizer;
* ``merged/`` -- with ``--merge``, the base model with the adapter folded in;
* ``training_card.json`` -- written last: its presence marks a finished run.
"""

from __future__ import annotations

import random
import shutil
from collections import Counter
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from ava.io import file_sha256, write_json
from ava.models.loading import model_identity, resolve_model, weights_dir
from ava.training.config import TrainConfig
from ava.training.data import (
    TrainingDataError,
    manifest_sha256,
    read_chat_jsonl,
    read_split,
    stratified_sample,
)
from ava.training.format import has_chat_template, messages_record, training_record

CARD_VERSION = 1
LIBRARIES = ("torch", "transformers", "trl", "peft", "datasets", "accelerate", "align-via-actions")


@dataclass
class TrainOutcome:
    card: dict[str, Any]
    model: Any  # the trained model (a PeftModel for LoRA), in eval mode
    tokenizer: Any
    log_history: list[dict[str, Any]]
    metrics: dict[str, Any]  # the Trainer's run metrics (runtime, samples/s): not in the card


def build_dataset(cfg: TrainConfig, tokenizer: Any) -> tuple[Any, dict[str, Any]]:
    """Training rows (instruction pairs plus mixed-in chat data) and what went into them."""
    from datasets import Dataset

    samples = stratified_sample(read_split(Path(cfg.data), "train"), cfg.limit, cfg.seed)
    if not samples:
        raise TrainingDataError(f"{cfg.data}: the train split is empty")
    rows = [training_record(tokenizer, s.prompt, s.response) for s in samples]
    info: dict[str, Any] = {
        "dir": str(Path(cfg.data).resolve()),
        "manifest_sha256": manifest_sha256(Path(cfg.data)),
        "split": "train",
        "limit": cfg.limit,
        "n_samples": len(samples),
        "by_task": dict(sorted(Counter(s.task for s in samples).items())),
    }
    mix_info = None
    if cfg.mix:
        conversations = read_chat_jsonl(Path(cfg.mix))
        wanted = round(len(rows) * cfg.mix_ratio / (1.0 - cfg.mix_ratio))
        n_mix = min(wanted, len(conversations))
        rng = random.Random(cfg.seed)
        chosen = sorted(rng.sample(range(len(conversations)), n_mix))
        rows += [messages_record(tokenizer, conversations[i]) for i in chosen]
        mix_info = {
            "file": str(Path(cfg.mix).resolve()),
            "sha256": file_sha256(Path(cfg.mix)),
            "ratio_requested": cfg.mix_ratio,
            "n_wanted": wanted,
            "n_used": n_mix,
            "ratio_achieved": round(n_mix / len(rows), 6),
        }
    random.Random(cfg.seed).shuffle(rows)
    info["mix"] = mix_info
    return Dataset.from_list(rows), info


def _check_out_dir(cfg: TrainConfig, out: Path, resume: bool) -> None:
    from ava.io import write_json as _write

    if (out / "training_card.json").exists():
        raise FileExistsError(f"{out} holds a finished training run (training_card.json); choose a new --out")
    saved = out / "train_config.json"
    if saved.exists():
        import json

        previous = json.loads(saved.read_text(encoding="utf-8"))
        if previous != cfg.to_dict():
            changed = sorted(k for k in set(previous) | set(cfg.to_dict()) if previous.get(k) != cfg.to_dict().get(k))
            raise ValueError(
                f"{saved}: an earlier run used different settings ({', '.join(changed)}); "
                "use a new --out or the same settings"
            )
        if not resume:
            raise FileExistsError(f"{out} holds an unfinished run: pass --resume to continue it, or a new --out")
    _write(saved, cfg.to_dict())


def _sft_config(cfg: TrainConfig, out: Path) -> Any:
    import torch
    from trl import SFTConfig

    kwargs = dict(cfg.sft)
    kwargs.setdefault("seed", cfg.seed)
    kwargs.setdefault("data_seed", cfg.seed)
    if not torch.cuda.is_available():  # TRL defaults to bf16, which needs a GPU
        kwargs.setdefault("bf16", False)
    return SFTConfig(output_dir=str(out / "checkpoints"), **kwargs)


def _versions() -> dict[str, str]:
    found = {}
    for name in LIBRARIES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "not installed"
    return found


def _save_dir(save: Any, target: Path) -> None:
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
    merged = PeftModel.from_pretrained(base, str(adapter)).merge_and_unload()
    tokenizer = AutoTokenizer.from_pretrained(str(adapter))

    def save(path: Path) -> None:
        merged.save_pretrained(path, safe_serialization=True)
        tokenizer.save_pretrained(path)

    _save_dir(save, target)


def train(cfg: TrainConfig, resume: bool = False, merge: bool = False) -> TrainOutcome:
    """Run (or resume) one training job and write its outputs and training card."""
    import torch
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer, set_seed
    from trl import SFTTrainer

    out = Path(cfg.out)
    spec = resolve_model(cfg.model)
    if spec.kind == "uniform":
        raise ValueError("the 'uniform' baseline has no weights to train")
    _check_out_dir(cfg, out, resume)
    set_seed(cfg.seed)
    source = weights_dir(spec)
    tokenizer = AutoTokenizer.from_pretrained(source)
    dataset, data_info = build_dataset(cfg, tokenizer)
    dtype = torch.bfloat16 if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else torch.float32
    model = AutoModelForCausalLM.from_pretrained(source, dtype=dtype)
    args = _sft_config(cfg, out)
    trainer = SFTTrainer(
        model=model,
        args=args,
        train_dataset=dataset,
        processing_class=tokenizer,
        peft_config=LoraConfig(**cfg.lora) if cfg.method == "lora" else None,
    )
    has_checkpoint = any((out / "checkpoints").glob("checkpoint-*"))
    result = trainer.train(resume_from_checkpoint=True if resume and has_checkpoint else None)
    trainer.model.eval()
    outputs: dict[str, str | None] = {"adapter": None, "model": None, "merged": None}
    if trainer.is_world_process_zero():
        name = "adapter" if cfg.method == "lora" else "model"

        def save(path: Path) -> None:
            trainer.model.save_pretrained(path, safe_serialization=True)
            tokenizer.save_pretrained(path)

        _save_dir(save, out / name)
        outputs[name] = name
        if merge and cfg.method == "lora":
            merge_adapter(cfg.model, out / "adapter", out / "merged")
            outputs["merged"] = "merged"
        card = {
            "card_version": CARD_VERSION,
            "model": cfg.model,
            "model_identity": model_identity(spec),
            "method": cfg.method,
            "prompt_format": "chat-template" if has_chat_template(tokenizer) else "plain: prompt\\n\\nresponse",
            "seed": cfg.seed,
            "data": data_info,
            "hyperparameters": {"sft": cfg.sft, "lora": cfg.lora, "limit": cfg.limit, "mix_ratio": cfg.mix_ratio},
            "result": {
                "global_step": trainer.state.global_step,
                "train_loss": round(float(result.training_loss), 6),
                "resumed": bool(resume and has_checkpoint),
                "world_size": args.world_size,
            },
            "outputs": outputs,
            "libraries": _versions(),
        }
        write_json(out / "training_card.json", card)
    else:
        card = {}
    return TrainOutcome(card, trainer.model, tokenizer, list(trainer.state.log_history), dict(result.metrics))
