"""OpinionQA-XL: OpinionQA's metrics over every usable ATP question, steered with the AVA
persona format (one format, 9 factors, 32 values, each compared with its own group).

Steering every XL question with 32 personas is ~32x the default pass, so by default the
steering task uses a seeded sample of ``steer_questions`` questions (``--set
steer_questions=all`` for every one); the sample is recorded in the task's dataset hash.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from ava.benchmarks import opinion_metrics as om
from ava.benchmarks.opinionqa import OpinionTask, SteerTask, int_setting, load_questions, prepare
from ava.benchmarks.personas import ava_personas
from ava.contracts.surveys import SurveyQuestion

STEER_QUESTIONS = 500


def steer_sample(questions: list[SurveyQuestion], size: str | int, seed: int) -> list[SurveyQuestion]:
    """A seeded sample of the scorable questions, in their original order."""
    kept, _ = prepare(questions)
    if str(size) == "all":
        return kept
    try:
        n = int(size)
    except ValueError:
        raise ValueError(f"--set steer_questions={size!r}: expected a number or 'all'") from None
    if n >= len(kept):
        return kept
    chosen = set(random.Random(seed).sample(range(len(kept)), n))
    return [q for i, q in enumerate(kept) if i in chosen]


def make_tasks(
    limit: int | None = None,
    steer: bool = False,
    seed: int = 0,
    data: str | Path | None = None,
    *,
    questions: list[SurveyQuestion] | None = None,
    **settings: Any,
) -> list[Any]:
    """``opinionqa-xl`` [+ ``opinionqa-xl-steer``]; ``limit`` is applied by the runner.

    Settings: ``n_resamples`` (default 1000), ``steer_questions`` (default 500, or ``all``).
    """
    del limit
    qs = list(questions) if questions is not None else load_questions("opinionqa-xl", data)
    n_resamples = int_setting(settings, "n_resamples", om.N_RESAMPLES)
    tasks: list[Any] = [OpinionTask("opinionqa-xl", qs, seed=seed, n_resamples=n_resamples)]
    if steer:
        sample = steer_sample(qs, settings.get("steer_questions", STEER_QUESTIONS), seed)
        tasks.append(SteerTask("opinionqa-xl-steer", sample, ava_personas(), seed=seed, n_resamples=n_resamples))
    return tasks
