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
import importlib.util
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ava.io import write_json
from ava.models.errors import ModelError
from ava.models.loading import quiet_peft, weights_dir
from ava.runs import Output, check_writable, start_run
from ava.training import encode
from ava.training.config import ConfigError, TrainConfig
from ava.training.guard import NonFiniteLossError, StopOnNonFiniteLoss
from ava.training.inputs import Inputs, build_dataset, check_same_rows, open_inputs, train_dtype
from ava.training.output import TrainingOutput, latest_checkpoint, save_outputs, training_card
from ava.training.running_loss import RunningLoss, run_mean_loss

KIND = "train"
EXTRAS = {"tensorboard": ("tensorboard", "tensorboardX"), "wandb": ("wandb",)}


@dataclass
class TrainOutcome:
    card: dict[str, Any]
    model: Any  # the trained model (a PeftModel for LoRA), in eval mode
    tokenizer: Any
    log_history: list[dict[str, Any]]
    metrics: dict[str, Any]  # the Trainer's run metrics (runtime, samples/s): not in the card
    resumed_from: str | None = None  # the checkpoint this process resumed from: in run.json, not in the card


def sft_config(cfg: TrainConfig, out: Path) -> Any:
    """The ``trl.SFTConfig`` of a run (built before anything loads, so bad values fail early)."""
    import torch
    from trl import SFTConfig

    kwargs = dict(cfg.sft)
    kwargs.setdefault("seed", cfg.seed)
    kwargs.setdefault("data_seed", cfg.seed)
    kwargs["logging_nan_inf_filter"] = False  # a NaN loss must reach StopOnNonFiniteLoss
    # the budget actually spent, in the card (non-padding input tokens; restored on resume)
    kwargs.setdefault("include_num_input_tokens_seen", "non_padding")
    if not torch.cuda.is_available():
        kwargs.setdefault("bf16", False)  # TRL's default bf16 needs a GPU unless asked for on CPU
        kwargs.setdefault("dataloader_pin_memory", False)  # nothing to pin to; avoids a warning
    # Rows arrive tokenised and already fitted to max_length (ava.training.encode); TRL only needs
    # the length to pack, and refuses it with padding_free alone.
    if not kwargs.get("packing"):
        kwargs["max_length"] = None
    if kwargs.get("restore_callback_states_from_checkpoint"):
        # ava's only stateful callback (RunningLoss) restores itself; the Trainer's way would replace
        # it by a copy that no longer knows the Trainer.
        raise ConfigError("restore_callback_states_from_checkpoint is not supported: ava train's callbacks "
                          "restore their own state on resume; drop the setting")
    if kwargs.get("train_sampling_strategy") in ("group_by_length", "batch_rebalance"):
        kwargs.setdefault("remove_unused_columns", False)  # keep the "length" column for the sampler
    try:
        return SFTConfig(output_dir=str(TrainingOutput(out).checkpoints), **kwargs)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"invalid training settings: {str(exc).splitlines()[0]}") from exc


def _check_reporter(cfg: TrainConfig) -> None:
    target = cfg.sft.get("report_to") or "none"
    if target in EXTRAS and not any(importlib.util.find_spec(m) for m in EXTRAS[target]):
        raise ConfigError(f"--report-to {target} needs the {target} package: "
                          f"pip install 'align-via-actions[{target}]'")


def _make_trainer(cfg: TrainConfig, inputs: Inputs, args: Any, dataset: Any, tokenizer: Any,
                  running_loss: RunningLoss) -> Any:
    from peft import LoraConfig
    from trl import SFTTrainer

    from ava.models.devices import default_device

    kwargs: dict[str, Any] = {"dtype": train_dtype(cfg.dtype, default_device()), "revision": inputs.commit}
    if cfg.device_map is not None:
        kwargs["device_map"] = cfg.device_map
    model = _load_base(weights_dir(inputs.spec), kwargs)
    with quiet_peft():
        trainer = SFTTrainer(
            model=model,
            args=args,
            train_dataset=dataset,
            processing_class=tokenizer,
            peft_config=LoraConfig(**cfg.lora) if cfg.method == "lora" else None,
            callbacks=[StopOnNonFiniteLoss(), running_loss],
        )
    running_loss.trainer = trainer
    return trainer


def _load_base(folder: str | Path, kwargs: dict[str, Any]) -> Any:
    """The base model's weights; a truncated or non-safetensors weights file is one ModelError naming
    the file (safetensors' own error names none, and surfaces from deep inside transformers)."""
    from safetensors import SafetensorError
    from transformers import AutoModelForCausalLM

    try:
        return AutoModelForCausalLM.from_pretrained(folder, **kwargs)
    except SafetensorError as exc:
        raise ModelError(_unreadable_weights(Path(folder), exc)) from None


def _unreadable_weights(folder: Path, exc: Exception) -> str:
    """Which ``*.safetensors`` file of ``folder`` cannot be opened, and what to do (reading each
    header only: cheap even for a 70B model's shards)."""
    from safetensors import SafetensorError, safe_open

    for path in sorted(folder.glob("*.safetensors")) if folder.is_dir() else []:
        try:
            with safe_open(str(path), framework="pt"):
                pass
        except (SafetensorError, OSError) as bad:
            why = str(bad).strip().splitlines()[0] if str(bad).strip() else type(bad).__name__
            return (f"{path}: not a readable safetensors file ({why}): it is truncated or not in safetensors format; "
                    "download or copy the model folder again")
    why = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return f"{folder}: its weights cannot be read ({why}); download or copy the model folder again"


def train(
    cfg: TrainConfig, merge: bool = False, log: Callable[[str], None] | None = None, *, restart: bool = False,
) -> TrainOutcome:
    """Run one training job (or resume it from its latest checkpoint) and write its outputs and card.

    A run always resumes its own unfinished work in ``--out`` (from the newest finished
    checkpoint); ``restart`` (keyword only, so no positional ``True`` can mean it) discards what
    ``--out`` holds first.

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
    folder = TrainingOutput(out)
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
            run = None
            if state.is_main_process:
                check_same_rows(out, cfg.data, inputs.binding, inputs.data_files, restart)
                run = stack.enter_context(start_run(Output(out, folder=True), KIND, inputs.binding, restart=restart,
                                              owned=TrainingOutput.OWNED,
                                              info={"config": cfg.to_dict(), "data_files": inputs.data_files}))
            finished = folder.card.is_file()  # this very run finished before: nothing to do
            if not finished:
                set_seed(cfg.seed)
                tokenizer = AutoTokenizer.from_pretrained(weights_dir(inputs.spec), revision=inputs.commit)
                dataset, data_info = build_dataset(cfg, inputs, tokenizer)
        if finished:
            say(f"already trained with these settings: {folder.card} (--restart trains again)")
            outcome = TrainOutcome(folder.read_card(), None, None, [], {})
        else:
            say(describe_data(data_info))
            outcome = _fit(cfg, inputs, args, dataset, data_info, tokenizer, merge)
            if run is not None:  # how this run got here: a fact about the process, kept out of the card
                run.update_info({"resumed_from": outcome.resumed_from})
    return outcome


def _fit(cfg: TrainConfig, inputs: Inputs, args: Any, dataset: Any, data_info: dict[str, Any], tokenizer: Any,
         merge: bool) -> TrainOutcome:
    """Train (from the latest checkpoint if the run has one), save the result and write the card."""
    folder = TrainingOutput(cfg.out)
    running_loss = RunningLoss()
    trainer = _make_trainer(cfg, inputs, args, dataset, tokenizer, running_loss)
    # A checkpoint here belongs to this run: start_run refused or removed any other one.
    latest = latest_checkpoint(folder.checkpoints, remove_incomplete=trainer.is_world_process_zero())
    result = trainer.train(resume_from_checkpoint=str(latest) if latest else None)
    mean_loss = run_mean_loss(trainer, running_loss, result)  # every step of the run, resumed or not
    if not math.isfinite(mean_loss):  # a non-finite step after the last log
        raise NonFiniteLossError(trainer.state.global_step, mean_loss, "mean training loss")
    trainer.model.eval()
    card: dict[str, Any] = {}
    if trainer.is_world_process_zero():
        outputs = save_outputs(cfg, inputs, trainer, tokenizer, merge)
        card = training_card(cfg, inputs, encode.describe_format(tokenizer), data_info, trainer, mean_loss, outputs)
        write_json(folder.card, card)
    return TrainOutcome(card, trainer.model, tokenizer, list(trainer.state.log_history), dict(result.metrics),
                        latest.name if latest else None)


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
