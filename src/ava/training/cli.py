"""``ava train``: fine-tune a model on the behaviour instructions (see docs/training.md)."""

from __future__ import annotations

from pathlib import Path

import typer

from ava.models.options import DeviceMapOption, DTypeOption, RevisionOption


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
    dtype: DTypeOption = "auto",
    device_map: DeviceMapOption = None,
    revision: RevisionOption = None,
    restart: bool = typer.Option(False, "--restart", help="discard what --out holds and train from scratch"),
    resume: bool = typer.Option(False, "--resume", hidden=True,
                                help="old spelling: rerunning the same command resumes by default"),
    merge: bool = typer.Option(False, help="also save the base model with the adapter merged in"),
) -> None:
    """Fine-tune with TRL's SFT trainer, loss on responses only; writes a training card. Rerunning
    the same command resumes from the latest checkpoint.

    Flags are "not given" unless passed: the recipe's value then stays, an ``--sft-arg`` for the
    same field is refused, and where each setting came from is printed and recorded in the card.
    """
    from ava.instructions.dataset import DatasetError
    from ava.io import os_error_line
    from ava.models.loading import ModelError
    from ava.models.options import ModelOptions
    from ava.runs import RunRefused, check_apart_each, interrupt_on_sigterm
    from ava.training.config import ConfigError, load_config
    from ava.training.guard import NonFiniteLossError
    from ava.training.mix import TrainingDataError
    from ava.training.trainer import train as run_training

    def say(message: str) -> None:
        typer.echo(message, err=True)

    interrupt_on_sigterm()  # `kill` records the run as interrupted, like Ctrl-C
    try:
        if mix_ratio is not None and mix is None:
            raise ConfigError("--mix-ratio needs --mix FILE (the chat data to mix in)")
        ModelOptions(model, None, dtype, device_map, revision)  # a bad --dtype, --device-map or --revision: now
        # checkpoints written into the build, the model or the chat data: --restart would delete an input
        check_apart_each(out, [("--data", data), ("--model", model), ("--mix", mix), ("--config", config)])
        flags = {"max_steps": max_steps, "num_train_epochs": epochs, "learning_rate": lr,
                 "per_device_train_batch_size": batch_size, "max_length": max_length, "save_steps": save_steps,
                 "report_to": report_to}
        cfg = load_config(
            model, data, out, config_file=config, method="lora" if lora else "full",
            overrides={"seed": seed, "limit": limit, "mix": str(mix) if mix else None, "mix_ratio": mix_ratio,
                       "revision": revision, "dtype": dtype, "device_map": device_map},
            sft_overrides=flags, sft_args=sft_arg,
        )
        given = [f"{k}={cfg.sft[k]!r} ({src})" for k, src in cfg.sources.items() if src.startswith("--")]
        say(f"settings: {cfg.method}, seed {cfg.seed}, limit {cfg.limit}; from the command line: "
            f"{', '.join(given) or 'none'} (all settings: {out / 'run.json'})")
        outcome = run_training(cfg, restart=restart, merge=merge, log=say)
    except KeyboardInterrupt:
        say(f"\nerror: interrupted; checkpoints are kept: rerun the same command to resume ({out})")
        raise typer.Exit(130) from None
    except (ModelError, ConfigError, DatasetError, TrainingDataError, RunRefused) as exc:
        say(f"error: {exc}")
        raise typer.Exit(2) from None
    except NonFiniteLossError as exc:
        say(f"\nerror: {exc}")  # on a line of its own, after the interrupted progress bar
        raise typer.Exit(1) from None
    except OSError as exc:  # a full disk, a permission, a symlink loop: one line naming the file
        say(f"\nerror: {os_error_line(exc, out)}")
        raise typer.Exit(2) from None
    result = outcome.card.get("result", {})
    typer.echo(
        f"trained {cfg.model} ({cfg.method}) for {result.get('global_step')} steps, "
        f"train loss {result.get('train_loss')}; card: {out / 'training_card.json'}"
    )
