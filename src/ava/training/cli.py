"""``ava train``: fine-tune a model on the behaviour instructions (see docs/training.md)."""

from __future__ import annotations

from pathlib import Path

import typer


def train(
    data: Path = typer.Option(..., "--data", help="output folder of ava build (data/<split>/, manifest.json)"),
    model: str = typer.Option("smollm2", "--model", "-m", help="built-in name, HF id or local path"),
    out: Path = typer.Option(..., "--out", "-o", help="output folder (checkpoints, adapter, training card)"),
    lora: bool = typer.Option(True, "--lora/--full", help="train a LoRA adapter (default) or all weights"),
    mix: Path | None = typer.Option(None, "--mix", exists=True, dir_okay=False, help="chat JSONL to mix in"),
    mix_ratio: float | None = typer.Option(None, help="share of chat examples in the mixture [0, 1)"),
    config: Path | None = typer.Option(None, "--config", exists=True, help="YAML replacing the default recipe"),
    limit: int | None = typer.Option(None, help="use at most this many instruction samples (seeded)"),
    seed: int | None = typer.Option(None, help="seed for sampling, shuffling, initialisation"),
    max_steps: int | None = typer.Option(None, help="stop after this many optimiser steps"),
    epochs: float | None = typer.Option(None, help="num_train_epochs"),
    lr: float | None = typer.Option(None, help="learning_rate"),
    batch_size: int | None = typer.Option(None, help="per_device_train_batch_size"),
    max_length: int | None = typer.Option(None, help="truncate sequences to this many tokens"),
    save_steps: int | None = typer.Option(None, help="checkpoint every N steps"),
    sft_arg: list[str] = typer.Option([], "--sft-arg", help="any trl.SFTConfig field, key=value (repeatable)"),
    resume: bool = typer.Option(False, help="continue an unfinished run in --out from its latest checkpoint"),
    merge: bool = typer.Option(False, help="also save the base model with the adapter merged in"),
) -> None:
    """Fine-tune with TRL's SFT trainer, loss on responses only; writes a training card."""
    from ava.models.loading import ModelError
    from ava.training.config import load_config, parse_assignments
    from ava.training.data import TrainingDataError
    from ava.training.trainer import train as run_training

    try:
        sft = parse_assignments(sft_arg)
        sft.update(
            {
                "max_steps": max_steps,
                "num_train_epochs": epochs,
                "learning_rate": lr,
                "per_device_train_batch_size": batch_size,
                "max_length": max_length,
                "save_steps": save_steps,
            }
        )
        cfg = load_config(
            model,
            data,
            out,
            config_file=config,
            method="lora" if lora else "full",
            overrides={"seed": seed, "limit": limit, "mix": str(mix) if mix else None, "mix_ratio": mix_ratio},
            sft_overrides=sft,
        )
        outcome = run_training(cfg, resume=resume, merge=merge)
    except (ModelError, TrainingDataError, FileExistsError, ValueError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    result = outcome.card.get("result", {})
    typer.echo(
        f"trained {cfg.model} ({cfg.method}) for {result.get('global_step')} steps, "
        f"train loss {result.get('train_loss')}; card: {out / 'training_card.json'}"
    )
