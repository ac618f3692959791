"""What ``ava train --out`` holds, and the one way each part is written.

:class:`TrainingOutput` names every path of the folder (readers such as ``ava experiment`` go
through it): ``checkpoints/`` (the Trainer's), ``adapter/`` (LoRA) or ``model/`` (full),
``merged/`` (``--merge``) and ``training_card.json`` (what was trained on what, how, and the
outcome; written last, so its presence means the run finished). A model folder is saved into a
temporary folder and renamed, so a half-saved model never looks complete.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from ava.models.loading import ModelSpec, quiet_peft, weights_dir
from ava.training.config import TrainConfig
from ava.training.inputs import Inputs

CARD_VERSION = 3  # 3: result.resumed moved to run.json (info.resumed_from); train_loss over the whole run
LIBRARIES = ("torch", "transformers", "trl", "peft", "datasets", "accelerate", "align-via-actions")


@dataclass(frozen=True)
class TrainingOutput:
    """The paths of a training run's folder."""

    root: Path

    OWNED = ("checkpoints", "adapter", "model", "merged", "training_card.json", ".adapter.tmp", ".model.tmp",
             ".merged.tmp")
    """What a run writes besides ``run.json``: refused without a record, removed by ``--restart``."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root))

    @property
    def card(self) -> Path:
        return self.root / "training_card.json"

    @property
    def checkpoints(self) -> Path:
        return self.root / "checkpoints"

    def weights(self, method: str) -> Path:
        """The trained result: ``adapter/`` for LoRA, ``model/`` for full fine-tuning."""
        return self.root / ("adapter" if method == "lora" else "model")

    @property
    def merged(self) -> Path:
        return self.root / "merged"

    def read_card(self) -> dict[str, Any]:
        return json.loads(self.card.read_text(encoding="utf-8"))


def portable_model_name(spec: ModelSpec) -> str:
    """The base model as another machine can find it: built-in name, hub id, or the user's folder.

    Never the cache folder a built-in model was converted into (``~/.cache/ava/models/...``).
    """
    if spec.kind == "builtin" or not Path(spec.path).is_absolute():
        return spec.name
    return spec.path



def library_versions() -> dict[str, str]:
    found = {}
    for name in LIBRARIES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "not installed"
    return found



def save_dir(save: Callable[[Path], None], target: Path) -> None:
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

    save_dir(save, target)



def save_outputs(cfg: TrainConfig, inputs: Inputs, trainer: Any, tokenizer: Any, merge: bool) -> dict[str, Any]:
    """Save the trained adapter (LoRA) or model (full), and with ``merge`` the merged model; their names."""
    folder = TrainingOutput(cfg.out)
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

    save_dir(save, folder.weights(cfg.method))
    outputs[name] = name
    if cfg.method == "lora":
        saved = json.loads((folder.weights("lora") / "adapter_config.json").read_text(encoding="utf-8"))
        outputs["adapter_base_model"] = saved.get("base_model_name_or_path")
    if merge and cfg.method == "lora":
        merge_adapter(inputs, folder.weights("lora"), folder.merged)
        outputs["merged"] = "merged"
    return outputs



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



def training_card(
    cfg: TrainConfig, inputs: Inputs, prompt_format: str | None, data_info: dict[str, Any], trainer: Any,
    train_loss: float, outputs: dict[str, Any],
) -> dict[str, Any]:
    """The training card: what was trained on what, how, and the outcome.

    Same inputs, same card: no timings, and nothing about how the process got there (whether it
    resumed from a checkpoint is in ``run.json``'s ``info.resumed_from``), so a resumed run's card
    equals an uninterrupted one's. ``train_loss`` is the mean over every step of the run
    (:func:`ava.training.running_loss.run_mean_loss`).
    """
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
            "train_loss": round(float(train_loss), 6),
            "world_size": trainer.args.world_size,
            "num_input_tokens_seen": int(trainer.state.num_input_tokens_seen),
        },
        "outputs": outputs,
        "libraries": library_versions(),
    }
