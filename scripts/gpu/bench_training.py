"""GPU check, training: LoRA tokens/s through ``ava``'s training code vs a plain TRL SFT run of the
same data and settings, on a randomly initialised Llama-2-7B-shaped model (bf16), fixed steps.

ava's trainer loads its model by name, so the random model is saved once (safetensors) and
``ava`` loads that folder; the plain TRL run gets the in-memory model, as a user's script would.
Both read the same rows (``ava build`` output of real ads, carried under .gpu/train-data) with
the same SFT and LoRA settings; tokens/s = non-padding tokens seen / the Trainer's train_runtime.
Writes the "training" section of $OUT/gpu-check.json (+ .md).
"""

from __future__ import annotations

import gc
import os
import tempfile
import time
from pathlib import Path

import gpu_common as g

SECTION = "training"


def main() -> None:
    budget = g.Budget(SECTION, 130)
    import torch
    from transformers import AutoTokenizer

    dev = g.device()
    steps = int(os.environ.get("GPU_CHECK_TRAIN_STEPS", 12 if g.SHAPE == "7b" else 3))
    batch = int(os.environ.get("GPU_CHECK_TRAIN_BATCH", 16 if g.SHAPE == "7b" else 4))
    data = Path(os.environ.get("GPU_CHECK_DATA", g.CARRIED / "train-data"))
    if not (data / "run.json").exists():
        raise SystemExit(f"{data}: no training data; run scripts/gpu-prepare.sh first")
    g.update(SECTION, {"status": "running", "shape": g.SHAPE, "device": dev, "steps": steps, "batch": batch})
    folder, label = g.tokenizer_dir()
    tokenizer = AutoTokenizer.from_pretrained(folder)
    dtype = torch.bfloat16 if dev == "cuda" else torch.float32  # what ava's trainer loads on each
    model = g.random_llama(len(tokenizer), tokenizer, dev, dtype)
    work = Path(tempfile.mkdtemp(prefix="ava-gpu-train-"))
    start = time.perf_counter()
    model.save_pretrained(work / "model", safe_serialization=True)
    tokenizer.save_pretrained(work / "model")
    g.update(SECTION, {"model": {"shape": g.SHAPES[g.SHAPE], "vocab_size": len(tokenizer), "tokenizer": label,
                                 "save_s": round(time.perf_counter() - start, 1)}})
    cfg = _config(work, data, steps, batch)
    _warm_up(model, len(tokenizer), dev)
    rows: dict[str, dict] = {}
    with g.step(SECTION, "ava-lora"):
        rows["ava train (LoRA)"] = _ava_run(cfg)
        g.update(SECTION, {"methods": rows})
    gc.collect()
    if dev == "cuda":
        torch.cuda.empty_cache()
    if budget.left() > 25:
        with g.step(SECTION, "trl-lora"):
            rows["plain TRL SFTTrainer (LoRA)"] = _trl_run(cfg, model, tokenizer, work)
            g.update(SECTION, {"methods": rows})
    g.update(SECTION, {"status": "done", "seconds_used": round(budget.total - budget.left(), 1)})


def _warm_up(model, vocab_size: int, dev: str) -> None:
    """One forward and backward (activation gradients only, as LoRA's frozen weights get), so
    library and kernel start-up costs are not charged to whichever run goes first."""
    import torch

    flags = [p.requires_grad for p in model.parameters()]
    for p in model.parameters():
        p.requires_grad_(False)
    ids = torch.randint(0, vocab_size, (2, 64), device=dev)
    embeds = model.get_input_embeddings()(ids).detach().requires_grad_()
    model(inputs_embeds=embeds, labels=ids).loss.backward()
    for p, flag in zip(model.parameters(), flags, strict=True):
        p.requires_grad_(flag)
    g.sync()


def _config(work: Path, data: Path, steps: int, batch: int):
    from ava.training.config import load_config

    return load_config(
        str(work / "model"), data, work / "ava-run", method="lora", overrides={"limit": steps * batch},
        sft_overrides={"max_steps": steps, "per_device_train_batch_size": batch, "gradient_accumulation_steps": 1,
                       "max_length": 512, "logging_steps": steps, "save_strategy": "no",
                       "include_num_input_tokens_seen": "non_padding", "disable_tqdm": True, "report_to": "none"},
    )


def _rate(log_history: list[dict], metrics: dict) -> dict:
    tokens = max([h.get("num_input_tokens_seen", 0) for h in log_history] + [metrics.get("num_input_tokens_seen", 0)])
    runtime = float(metrics["train_runtime"])
    return {"tokens": int(tokens), "train_runtime_s": round(runtime, 2), "tokens_per_s": round(tokens / runtime, 1),
            "train_loss": round(float(metrics.get("train_loss", float("nan"))), 4)}


def _ava_run(cfg) -> dict:
    from ava.training.trainer import train

    outcome = train(cfg)
    row = _rate(outcome.log_history, outcome.metrics)
    row["global_step"] = outcome.card.get("result", {}).get("global_step")
    del outcome
    return row


def _trl_run(cfg, model, tokenizer, work: Path) -> dict:
    """What a user would write with TRL alone: SFTTrainer on the same rows and settings."""
    import torch
    from peft import LoraConfig
    from trl import SFTConfig, SFTTrainer

    from ava.training.inputs import build_dataset, open_inputs

    dataset, _ = build_dataset(cfg, open_inputs(cfg), tokenizer)  # the same rows ava trained on
    kwargs = {"seed": cfg.seed, "data_seed": cfg.seed, **cfg.sft}
    if not torch.cuda.is_available():
        kwargs.setdefault("bf16", False)
    trainer = SFTTrainer(model=model, args=SFTConfig(output_dir=str(work / "trl-run"), **kwargs),
                         train_dataset=dataset, processing_class=tokenizer, peft_config=LoraConfig(**cfg.lora))
    result = trainer.train()
    row = _rate(trainer.state.log_history, result.metrics)
    row["global_step"] = trainer.state.global_step
    return row


if __name__ == "__main__":
    main()
