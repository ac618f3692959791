"""Stop a training run whose loss is NaN or infinite, saying at which step and what the loss was.

Once the loss is not finite the weights are (or soon will be) garbage, and every later step only
spends time; a model saved from such a run must never look finished. The Trainer's default
``logging_nan_inf_filter=True`` replaces such losses in the logs by the running mean, which would
hide exactly this; ``ava train`` turns that filter off and checks every logged loss here.
"""

from __future__ import annotations

import math
from typing import Any

from transformers import TrainerCallback


class NonFiniteLossError(RuntimeError):
    """The training loss became NaN or infinite."""

    def __init__(self, step: int, loss: float, what: str = "loss") -> None:
        self.step, self.loss = step, loss
        super().__init__(
            f"training stopped: {what} is {loss} at step {step}; nothing was saved as a finished model "
            "(lower the learning rate, use bf16/fp32 instead of fp16, or check the data)"
        )


class StopOnNonFiniteLoss(TrainerCallback):
    """Raise :class:`NonFiniteLossError` on the first logged loss (or gradient norm) that is not finite."""

    def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kwargs: Any) -> None:
        for key in ("loss", "train_loss", "grad_norm"):
            value = (logs or {}).get(key)
            if isinstance(value, int | float) and not math.isfinite(value):
                raise NonFiniteLossError(state.global_step, float(value), "loss" if "loss" in key else key)
