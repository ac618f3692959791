"""``ava train``: fine-tune a model on the behaviour instructions (see docs/training.md)."""

from __future__ import annotations

from pathlib import Path

import typer


def train(
    data: Path = typer.Option(
        ..., "--data", help="output folder of ava data build-ads (data/<split>-*.parquet, manifest.json)"
    ),
    model: str = typer.Option("smollm2", "--model", "-m", help="built-in name, HF id or local path"),
    out: Path = typer.Option(..., "--out", "-o", help="output folder (checkpoints, adapter, training card)"),
    lora: bool = typer.Option(True, "--lora/--full", help="train a LoRA adapter (default) or all weights"),
    mix: Path | None = typer.Option(None, "--mix", exists=True, dir_okay=False, help="chat JSONL to mix in"),
    mix_ratio: float | None = typer.Option(None, help="share of chat examples in the mixture [0, 1)"),
    config: Path | None = typer.Option(None, "--config", exists=True, dir_okay=False,
                                       help="YAML replacing the default recipe"),
    limit: int | None = typer.Option(None, min=1, help="use at most this many instruction samples (seeded)"),
    seed: int | None = typer.Option(None, help="seed for sampling, shuffling, initialisation"),
    max_steps: int | None = typer.Option(None, min=-1, help="stop after this many optimiser steps"),
    epochs: float | None = typer.Option(None, min=0, help="num_train_epochs"),
    lr: float | None = typer.Option(None, min=0, help="learning_rate"),
    batch_size: int | None = typer.Option(None, min=1, help="per_device_train_batch_size"),
    max_length: int | None = typer.Option(None, min=8, help="fit each pair into this many tokens"),
    save_steps: int | None = typer.Option(None, min=1, help="checkpoint every N steps"),
    report_to: str | None = typer.Option(None, "--report-to", help="log to tensorboard, wandb or none"),
    sft_arg: list[str] = typer.Option([], "--sft-arg", help="any trl.SFTConfig field, key=value (repeatable)"),
    resume: bool = typer.Option(False, help="continue an unfinished run in --out from its latest checkpoint"),
    merge: bool = typer.Option(False, help="also save the base model with the adapter merged in"),
) -> None:
    """Fine-tune with TRL's SFT trainer, loss on responses only; writes a training card.

    Flags are "not given" unless passed: the recipe's value then stays, an ``--sft-arg`` for the
    same field is refused, and where each setting came from is printed and recorded in the card.
    """
    from ava.models.loading import ModelError
    from ava.training.config import ConfigError, load_config
    from ava.training.data import TrainingDataError
    from ava.training.guard import NonFiniteLossError
    from ava.training.outdir import OutputError
    from ava.training.trainer import train as run_training

    def say(message: str) -> None:
        typer.echo(message, err=True)

    try:
        if mix_ratio is not None and mix is None:
            raise ConfigError("--mix-ratio needs --mix FILE (the chat data to mix in)")
        flags = {"max_steps": max_steps, "num_train_epochs": epochs, "learning_rate": lr,
                 "per_device_train_batch_size": batch_size, "max_length": max_length, "save_steps": save_steps,
                 "report_to": report_to}
        cfg = load_config(
            model, data, out, config_file=config, method="lora" if lora else "full",
            overrides={"seed": seed, "limit": limit, "mix": str(mix) if mix else None, "mix_ratio": mix_ratio},
            sft_overrides=flags, sft_args=sft_arg,
        )
        given = [f"{k}={cfg.sft[k]!r} ({src})" for k, src in cfg.sources.items() if src.startswith("--")]
        say(f"settings: {cfg.method}, seed {cfg.seed}, limit {cfg.limit}; from the command line: "
            f"{', '.join(given) or 'none'} (all settings: {out / 'train_config.json'})")
        outcome = run_training(cfg, resume=resume, merge=merge, log=say)
    except (ModelError, ConfigError, TrainingDataError, OutputError) as exc:
        say(f"error: {exc}")
        raise typer.Exit(2) from exc
    except NonFiniteLossError as exc:
        say(f"\nerror: {exc}")  # on a line of its own, after the interrupted progress bar
        raise typer.Exit(1) from exc
    result = outcome.card.get("result", {})
    typer.echo(
        f"trained {cfg.model} ({cfg.method}) for {result.get('global_step')} steps, "
        f"train loss {result.get('train_loss')}; card: {out / 'training_card.json'}"
    )
