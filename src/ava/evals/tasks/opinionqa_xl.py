"""OpinionQA-XL: OpinionQA's metrics over every usable ATP question, steered with the AVA
persona format (one format, 9 factors, 32 values, each compared with its own group).

Steering every XL question with 32 personas is ~32x the default pass, so by default the
steering task uses a seeded sample of ``steer_questions`` questions (``--set
steer_questions=all`` for every one); the sample is recorded in the task's dataset hash.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ava.contracts.surveys import SurveyQuestion
from ava.evals.prompts.personas import ava_personas
from ava.evals.task import TaskOptions
from ava.evals.tasks.calibration import SETTINGS as CALIBRATION_SETTINGS
from ava.evals.tasks.expression import SETTINGS as EXPRESSION_SETTINGS
from ava.evals.tasks.opinion_items import prepare
from ava.evals.tasks.opinionqa import survey_tasks
from ava.evals.tasks.option_orders import SETTINGS as ORDER_SETTINGS
from ava.subsets import seeded_subset

STEER_QUESTIONS = 500

SETTINGS = {
    "n_resamples": "bootstrap resamples for the confidence intervals (default 1000)",
    **ORDER_SETTINGS,
    **EXPRESSION_SETTINGS,
    **CALIBRATION_SETTINGS,
    "steer_questions": f"questions in the seeded steering sample, or 'all' (default {STEER_QUESTIONS})",
}


def steer_sample(questions: Sequence[SurveyQuestion], size: str | int, seed: int) -> list[SurveyQuestion]:
    """A seeded sample of the scorable questions, in their original order.

    Drawn with the ``python`` method of :mod:`ava.subsets`: this sample defines the OpinionQA-XL
    steering set of every recorded run; drawing it another way would change which questions are
    steered (and every cached score's key).
    """
    kept, _ = prepare("opinionqa-xl-steer", questions)
    if str(size) == "all":
        return kept
    try:
        n = int(size)
    except ValueError:
        raise ValueError(f"--set steer_questions={size!r}: expected a number or 'all'") from None
    if n >= len(kept):
        return kept
    return [kept[i] for i in seeded_subset(len(kept), n, seed, "python")]


def make_tasks(options: TaskOptions, *, questions: Sequence[SurveyQuestion] | None = None) -> list[Any]:
    """``opinionqa-xl`` [+ ``opinionqa-xl-steer``]; ``questions`` replaces the survey data (tests)."""
    size = options.settings.get("steer_questions", STEER_QUESTIONS)
    return survey_tasks("opinionqa-xl", options, questions,
                        lambda qs: (steer_sample(qs, size, options.seed), ava_personas()))
