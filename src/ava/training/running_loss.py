"""The run's mean training loss, carried across a resume so a resumed run records what an
uninterrupted one does, bit for bit.

Why not the Trainer's ``training_loss``: it is the sum of this *process's* losses over the steps
this process ran (``_total_loss_scalar / (global_step - initial_global_step)``), so after a resume
it is the mean of the resumed steps only (10.350 where the uninterrupted run says 10.358). The
log history cannot rebuild the sum exactly either: it holds each logging window's mean, not the
float sums, and misses the steps between the last log and the checkpoint.

So this callback saves the Trainer's three running-loss counters into every checkpoint's
``trainer_state.json`` (as an ``ExportableState``, the Trainer's own way to checkpoint a
callback; that file is written last, so a checkpoint that has it has these values) and puts them
back when training resumes, before the first step: the sum of the logged windows, the on-device
sum of the steps not logged yet, and the step logged last. The resumed run then adds the same
float numbers in the same order as the uninterrupted one, and :func:`run_mean_loss` divides by
every step of the run.

Under several processes each keeps its own on-device sum, and each logged loss is their mean
(gathered at the logging step), but only the main process writes the checkpoint's state. So there
the callback also logs at every checkpoint step: every process's unlogged sum is then empty when
the checkpoint is written, and the sum the main process saves (of gathered means) is all a resume
needs. This adds log entries at checkpoint steps, in the uninterrupted run as in the resumed one.
(Not exercised by the tests, which run one CPU process.)
"""

from __future__ import annotations

from typing import Any

from transformers import TrainerCallback
from transformers.trainer_callback import ExportableState


class RunningLoss(TrainerCallback, ExportableState):
    """Checkpoint the Trainer's running-loss counters and restore them on resume (set ``trainer``
    to the Trainer once it is built)."""

    def __init__(self) -> None:
        self.trainer: Any = None
        self.restored: bool | None = None  # None: a fresh run; False: resumed from a checkpoint without them

    def state(self) -> dict[str, Any]:
        trainer = self.trainer
        counters = None
        if trainer is not None and hasattr(trainer, "_tr_loss"):
            counters = {"total_loss": float(trainer._total_loss_scalar), "pending_loss": trainer._tr_loss.item(),
                        "last_logged_step": int(trainer._globalstep_last_logged)}
        return {"args": {}, "attributes": {"counters": counters}}

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        name = type(self).__name__
        saved = (state.stateful_callbacks or {}).get(name) if isinstance(state.stateful_callbacks, dict) else None
        if state.global_step == 0:
            self.restored = None
        else:
            counters = ((saved or {}).get("attributes") or {}).get("counters") if isinstance(saved, dict) else None
            self.restored = counters is not None
            if counters is not None:
                trainer = self.trainer
                trainer._total_loss_scalar = float(counters["total_loss"])
                trainer._tr_loss.fill_(float(counters["pending_loss"]))
                trainer._globalstep_last_logged = int(counters["last_logged_step"])
        if isinstance(state.stateful_callbacks, dict) and name not in state.stateful_callbacks:
            state.stateful_callbacks[name] = self.state()  # a checkpoint of an older ava: saved from now on


    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if args.world_size > 1 and control.should_save:
            control.should_log = True  # drain every process's unlogged sum before the checkpoint


def run_mean_loss(trainer: Any, callback: RunningLoss, result: Any) -> float:
    """The mean loss over every step of the run, resumed or not (the Trainer's own formula).

    A run resumed from a checkpoint written without the counters (an older ava) keeps the
    Trainer's mean over the resumed steps: nothing more exact can be had from such a checkpoint.
    """
    if callback.restored is False:
        return float(result.training_loss)
    return trainer._total_loss_scalar / max(trainer.state.global_step, 0.001)
