"""Training on survey supervision (the ``survey`` arm) or on behaviour and surveys (``mixed``).

Same output folder as ``ava train`` (:class:`~ava.training.output.TrainingOutput`: ``run.json``
bound to its inputs, resumable checkpoints, ``adapter/``, ``training_card.json``), same settings
(:class:`~ava.training.config.TrainConfig`: ``max_steps``, batch size, gradient accumulation,
``max_length``, learning rate, LoRA), so the tuned evaluation loads the result as it loads
``ava train``'s.

**Why a ``transformers.Trainer`` subclass, not a TRL trainer.** The survey loss is a soft target
over a handful of option-letter logits at one position; no TRL trainer has that objective (SFT is
token cross-entropy, GKD and the distillation trainers need a teacher model's full vocabulary).
The ``Trainer`` gives the rest unchanged (optimizer, schedule, checkpoints, resume, seeded data
order, gradient accumulation, accelerate), and ``compute_loss`` is its documented hook. The
behaviour steps of ``mixed`` go through ``Trainer.compute_loss`` itself, the loss TRL's
``SFTTrainer`` computes on the same rows (ids and labels from :mod:`ava.training.encode`).

**How ``mixed`` mixes: a seeded step schedule.** Each optimiser step is drawn from one source:
``round(steps * survey_share)`` of the steps are survey steps, placed by a seeded permutation
(:class:`StepSchedule`), and each source's rows come from its own seeded shuffle. Not a weighted
sum of two losses in one step: token cross-entropy (nats per response token) and the survey KL
(nats per question) are on different scales, so any weight would be an arbitrary exchange rate;
with one source per step each step optimises one well-defined loss, the ratio is exact in
optimiser steps (the budget unit the experiment compares), and a survey step runs the cheap
one-position forward. The card records the schedule's counts.

Budget: the card's ``result`` has ``global_step`` (optimiser steps) and ``num_input_tokens_seen``
(non-padding input tokens of every step, the Trainer's own count, restored on resume).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from transformers import Trainer

from ava.io import write_json
from ava.models.loading import hub_commit, model_identity, quiet_peft, resolve_model, weights_dir
from ava.runs import Binding, Output, check_writable, start_run
from ava.training import encode
from ava.training.config import ConfigError, TrainConfig
from ava.training.guard import NonFiniteLossError, StopOnNonFiniteLoss
from ava.training.inputs import Inputs, build_dataset, check_same_rows, open_inputs, train_dtype
from ava.training.output import (
    TrainingOutput,
    latest_checkpoint,
    save_outputs,
    training_card,
)
from ava.training.running_loss import RunningLoss, run_mean_loss
from ava.training.survey_batches import StepSchedule, TwoSources, collate
from ava.training.survey_data import SurveyExample, SurveySplit
from ava.training.survey_loss import encode_examples, survey_loss
from ava.training.trainer import KIND, TrainOutcome, _load_base, sft_config

UNSUPPORTED = ("packing", "padding_free")  # SFTTrainer's batching; this trainer pads per source


class SurveyTrainer(Trainer):
    """A ``Trainer`` whose survey batches are scored by the forward KL on the option letters."""

    def __init__(self, *args: Any, schedule: StepSchedule, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.schedule = schedule

    def _get_train_sampler(self, train_dataset: Any = None) -> Any:
        return self.schedule

    def compute_loss(self, model: Any, inputs: dict[str, Any], return_outputs: bool = False,
                     num_items_in_batch: Any = None) -> Any:
        if "target" in inputs:
            # a mean over the micro-batch's prompts: the Trainer divides it by the accumulation steps
            self.loss_is_scaled_for_ga = False
            loss = survey_loss(model, inputs)
            return (loss, None) if return_outputs else loss
        self.loss_is_scaled_for_ga = None  # the Trainer's own rule for its own loss
        return super().compute_loss(model, inputs, return_outputs=return_outputs,
                                    num_items_in_batch=num_items_in_batch)


@dataclass
class SurveyRun:
    """What a survey or mixed run reads besides its settings."""

    examples: Sequence[SurveyExample]
    split: SurveySplit
    chat: bool  # the framing the tuned model is evaluated in (ava.evals.framing): prompts are encoded in it
    survey_share: float = 1.0  # share of optimiser steps on survey data; 1.0: the survey arm, else mixed

    @property
    def objective(self) -> str:
        return "survey" if self.survey_share == 1.0 else "mixed"

    def sha256(self) -> str:
        """Of every example's id, prompt segments, letters and target: what the run trains on."""
        h = hashlib.sha256()
        for ex in self.examples:
            h.update(json.dumps([ex.id, list(ex.request.segments), list(ex.request.options), list(ex.target)],
                                ensure_ascii=False).encode())
        return h.hexdigest()


def _check(cfg: TrainConfig, survey: SurveyRun) -> None:
    if not 0.0 < survey.survey_share <= 1.0:
        raise ConfigError(f"survey share must be in (0, 1] (1: survey only), got {survey.survey_share}")
    if not survey.examples:
        raise ConfigError("no survey examples to train on; check the survey split (survey_examples)")
    bad = [k for k in UNSUPPORTED if cfg.sft.get(k)]
    if bad or cfg.sft.get("train_sampling_strategy") not in (None, "random"):
        raise ConfigError(f"{', '.join(bad) or 'train_sampling_strategy'} is not supported by survey training "
                          "(each step is one source's padded batch); drop the setting")


def _open(cfg: TrainConfig, survey: SurveyRun) -> Inputs:
    """The run's inputs: ``ava train``'s for a mixed run, the model alone for a survey run."""
    from ava.models.devices import default_device

    options = {**cfg.binding(), "objective": survey.objective, "survey_share": survey.survey_share,
               "framing": "chat" if survey.chat else "plain"}
    if survey.objective == "mixed":
        inputs = open_inputs(cfg)
        inputs.options = options
        return inputs
    spec = resolve_model(cfg.model, cfg.revision)
    if spec.kind == "uniform":
        raise ConfigError("the 'uniform' baseline has no weights to train; pass a model")
    commit = hub_commit(spec.path, spec.revision) if spec.on_hub else None
    identity = model_identity(spec, dtype=train_dtype(cfg.dtype, default_device()))
    return Inputs(spec, commit, identity, None, None, [], "", None, options)


def _binding(inputs: Inputs, survey: SurveyRun) -> Binding:
    data = hashlib.sha256(json.dumps([inputs.data_sha256 or None, inputs.mix_sha256, survey.sha256()]).encode())
    return Binding(model=inputs.identity, inputs=data.hexdigest()[:16], options=inputs.options)


def train_survey(cfg: TrainConfig, survey: SurveyRun, merge: bool = False, log: Callable[[str], None] | None = None,
                 *, restart: bool = False) -> TrainOutcome:
    """Train the ``survey`` arm (``survey.survey_share`` 1.0: survey examples only; ``cfg.data``,
    ``cfg.limit`` and ``cfg.mix`` are not read) or the ``mixed`` arm (0 < share < 1: ``cfg.data``'s
    instruction pairs, as ``ava train`` reads them, and the survey examples, one source per
    optimiser step) into ``cfg.out``.

    As :func:`ava.training.trainer.train`: checked before the model loads, bound to the model, the
    data (instruction build and mix file hashes, the examples' hash) and the settings; resumes its
    own unfinished run; a finished run returns its card (``model`` None); ``restart`` starts over.
    The examples must already be checked disjoint from the evaluated questions
    (:func:`ava.training.survey_data.check_disjoint`).
    """
    from accelerate import PartialState
    from transformers import AutoTokenizer, set_seed

    say = log or (lambda _msg: None)
    out = Path(cfg.out)
    folder = TrainingOutput(out)
    _check(cfg, survey)
    args = sft_config(cfg, out)
    args.remove_unused_columns = False  # the survey columns are the loss's, not the model's
    state = PartialState()
    if state.is_main_process:
        check_writable(Output(out, folder=True))
    with contextlib.ExitStack() as stack:
        with state.main_process_first():
            inputs = _open(cfg, survey)
            run = None
            if state.is_main_process:
                info = {"config": cfg.to_dict(), "survey": {"objective": survey.objective,
                                                            "survey_share": survey.survey_share,
                                                            "split": survey.split.to_dict()},
                        "data_files": inputs.data_files}
                check_same_rows(out, cfg.data, _binding(inputs, survey), inputs.data_files, restart)
                run = stack.enter_context(start_run(Output(out, folder=True), KIND, _binding(inputs, survey),
                                                    restart=restart, owned=TrainingOutput.OWNED, info=info))
            finished = folder.card.is_file()
            if not finished:
                set_seed(cfg.seed)
                tokenizer = AutoTokenizer.from_pretrained(weights_dir(inputs.spec), revision=inputs.commit)
                dataset, data_info = _dataset(cfg, inputs, survey, tokenizer)
        if finished:
            say(f"already trained with these settings: {folder.card} (--restart trains again)")
            return TrainOutcome(folder.read_card(), None, None, [], {})
        say(_describe(data_info))
        outcome = _fit(cfg, inputs, survey, args, dataset, data_info, tokenizer, merge)
        if run is not None:
            run.update_info({"resumed_from": outcome.resumed_from})
    return outcome


def _dataset(cfg: TrainConfig, inputs: Inputs, survey: SurveyRun, tokenizer: Any) -> tuple[TwoSources, dict[str, Any]]:
    rows, survey_info = encode_examples(survey.examples, tokenizer, survey.chat, cfg.sft.get("max_length"))
    if not rows:
        raise ConfigError(f"every survey prompt is longer than max_length {cfg.sft.get('max_length')}; raise it")
    info: dict[str, Any] = {"objective": survey.objective, "survey_share": survey.survey_share,
                            "survey": {**survey_info, "sha256": survey.sha256(),
                                       "framing": "chat" if survey.chat else "plain",
                                       "split": survey.split.to_dict()},
                            "behaviour": None}
    behaviour = None
    if survey.objective == "mixed":
        behaviour, info["behaviour"] = build_dataset(cfg, inputs, tokenizer)
    return TwoSources(behaviour, rows), info


def _schedule(cfg: TrainConfig, args: Any, data: TwoSources, survey: SurveyRun) -> StepSchedule:
    rows_per_step = args.per_device_train_batch_size * args.gradient_accumulation_steps * max(args.world_size, 1)
    n_steps = args.max_steps if args.max_steps > 0 else math.ceil(len(data) / rows_per_step)
    return StepSchedule(data.n_behaviour, len(data.survey), rows_per_step, n_steps, survey.survey_share, cfg.seed)


def _make_trainer(cfg: TrainConfig, inputs: Inputs, args: Any, data: TwoSources, schedule: StepSchedule,
                  tokenizer: Any, running_loss: RunningLoss) -> SurveyTrainer:
    from peft import LoraConfig, get_peft_model

    from ava.models.devices import default_device

    kwargs: dict[str, Any] = {"dtype": train_dtype(cfg.dtype, default_device()), "revision": inputs.commit}
    if cfg.device_map is not None:
        kwargs["device_map"] = cfg.device_map
    model = _load_base(weights_dir(inputs.spec), kwargs)
    if cfg.method == "lora":
        with quiet_peft():
            model = get_peft_model(model, LoraConfig(**cfg.lora))
        if args.gradient_checkpointing:
            model.enable_input_require_grads()
    pad_id = next((t for t in (tokenizer.pad_token_id, tokenizer.eos_token_id) if t is not None), 0)  # as the scorer
    trainer = SurveyTrainer(model=model, args=args, train_dataset=data, processing_class=tokenizer,
                            data_collator=lambda rows: collate(rows, pad_id), schedule=schedule,
                            callbacks=[StopOnNonFiniteLoss(), running_loss])
    running_loss.trainer = trainer
    return trainer


def _fit(cfg: TrainConfig, inputs: Inputs, survey: SurveyRun, args: Any, data: TwoSources, data_info: dict[str, Any],
         tokenizer: Any, merge: bool) -> TrainOutcome:
    folder = TrainingOutput(cfg.out)
    running_loss = RunningLoss()
    schedule = _schedule(cfg, args, data, survey)
    trainer = _make_trainer(cfg, inputs, args, data, schedule, tokenizer, running_loss)
    latest = latest_checkpoint(folder.checkpoints, remove_incomplete=trainer.is_world_process_zero())
    result = trainer.train(resume_from_checkpoint=str(latest) if latest else None)
    mean_loss = run_mean_loss(trainer, running_loss, result)
    if not math.isfinite(mean_loss):
        raise NonFiniteLossError(trainer.state.global_step, mean_loss, "mean training loss")
    trainer.model.eval()
    card: dict[str, Any] = {}
    if trainer.is_world_process_zero():
        outputs = save_outputs(cfg, inputs, trainer, tokenizer, merge)
        card = survey_card(cfg, inputs, survey, tokenizer, data_info, trainer, schedule, mean_loss, outputs)
        write_json(folder.card, card)
    return TrainOutcome(card, trainer.model, tokenizer, list(trainer.state.log_history), dict(result.metrics),
                        latest.name if latest else None)


def survey_card(cfg: TrainConfig, inputs: Inputs, survey: SurveyRun, tokenizer: Any, data_info: dict[str, Any],
                trainer: Any, schedule: StepSchedule, train_loss: float, outputs: dict[str, Any]) -> dict[str, Any]:
    """``ava train``'s card (:func:`~ava.training.output.training_card`), with the objective, the
    survey framing and share, and the steps spent on each source."""
    # the instruction pairs' format (mixed); the survey prompts' framing is survey_framing
    prompt_format = encode.describe_format(tokenizer) if survey.objective == "mixed" else None
    card = training_card(cfg, inputs, prompt_format, data_info, trainer, train_loss, outputs)
    card.update({"objective": survey.objective, "survey_framing": "chat" if survey.chat else "plain"})
    card["hyperparameters"]["survey_share"] = survey.survey_share
    card["result"].update(schedule.counts(trainer.state.global_step))
    return card


def _describe(info: dict[str, Any]) -> str:
    s = info["survey"]
    text = (f"data: {s['n_rows']} survey prompts ({s['split']['counts']['training_questions']} questions from "
            f"{len(s['split']['training_waves'])} waves disjoint from the {len(s['split']['excluded_waves'])} "
            f"evaluated ones; {s['n_tokens']} tokens; {s['n_too_long']} longer than max_length left out)")
    if info["behaviour"]:
        text += (f"; {info['behaviour']['n_samples']} instruction pairs; "
                 f"{info['survey_share']:.0%} of optimiser steps on surveys")
    return text
