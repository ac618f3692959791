"""OpinionQA (Santurkar et al. 2023): representativeness, steerability, consistency, refusal.

Two tasks over survey questions (``ava.surveys``):

* ``opinionqa`` — the default prompt, one per question (:class:`~ava.evals.tasks.opinion_task.OpinionTask`).
* ``opinionqa-steer`` (``--steer``) — the steering set (tag ``steer500``) with each of the
  22 groups' personas in the QA / BIO / PORTRAY formats, plus the same questions without a
  persona; each persona is compared with its own group's distribution
  (:class:`~ava.evals.tasks.steer_task.SteerTask`).

``--limit N`` keeps the first N questions of each task (a steered question keeps all its
personas). OpinionQA-XL reuses both tasks with its own questions and the AVA persona format
(:mod:`ava.evals.tasks.opinionqa_xl`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from ava.contracts.scoring import ScoreRequest
from ava.contracts.surveys import SurveyQuestion
from ava.evals.data import DataError
from ava.evals.prompts.personas import Persona, opinionqa_personas
from ava.evals.task import TaskOptions
from ava.evals.tasks.calibration import SETTINGS as CALIBRATION_SETTINGS
from ava.evals.tasks.calibration import calibration_spec
from ava.evals.tasks.expression import SETTINGS as EXPRESSION_SETTINGS
from ava.evals.tasks.expression import expression_spec
from ava.evals.tasks.opinion_items import int_setting, load_questions, select_formats
from ava.evals.tasks.opinion_task import OpinionTask
from ava.evals.tasks.opinion_text import OpinionTextTask
from ava.evals.tasks.option_orders import SETTINGS as ORDER_SETTINGS
from ava.evals.tasks.option_orders import order_spec
from ava.evals.tasks.steer_task import SteerTask
from ava.metrics.resampling import N_RESAMPLES

SETTINGS = {
    "n_resamples": "bootstrap resamples for the confidence intervals (default 1000)",
    **ORDER_SETTINGS,
    **EXPRESSION_SETTINGS,
    **CALIBRATION_SETTINGS,
    "formats": "steering persona formats to use, comma-separated: qa,bio,portray (default all)",
}


def survey_tasks(benchmark: str, options: TaskOptions, questions: Sequence[SurveyQuestion] | None,
                 steering: Callable[[list[SurveyQuestion]], tuple[list[SurveyQuestion], list[Persona]]]) -> list[Any]:
    """The default task of a survey benchmark, and with ``--steer`` its steering task over the
    questions and personas ``steering`` picks (shared by OpinionQA and OpinionQA-XL)."""
    qs = list(questions) if questions is not None else load_questions(benchmark, options.data)
    n_resamples = int_setting(options.settings, "n_resamples", N_RESAMPLES)
    tasks: list[Any] = [opinion_task(benchmark, qs, options, n_resamples)]
    if options.steer:
        steer_qs, personas = steering(qs)
        tasks.append(SteerTask(f"{benchmark}-steer", steer_qs, personas, seed=options.seed, n_resamples=n_resamples,
                               limit=options.limit_for(f"{benchmark}-steer")))
    return tasks


def opinion_task(benchmark: str, qs: list[SurveyQuestion], options: TaskOptions, n_resamples: int) -> Any:
    """The default task read as ``expression`` asks (:mod:`ava.evals.tasks.expression`); every
    setting is checked here, before anything is scored. The steering task always reads log-probabilities."""
    spec = expression_spec(options.settings, options.seed)
    orders = order_spec(options.settings, options.seed)
    limit = options.limit_for(benchmark)
    calibration = calibration_spec(options.settings, options.seed)  # None unless expression=calibrated
    if spec.method in ("logprobs", "calibrated"):
        return OpinionTask(benchmark, qs, seed=options.seed, n_resamples=n_resamples, limit=limit, orders=orders,
                           calibration=calibration)
    return OpinionTextTask(benchmark, qs, expression=spec, seed=options.seed, n_resamples=n_resamples, limit=limit)


def make_tasks(options: TaskOptions, *, questions: Sequence[SurveyQuestion] | None = None) -> list[Any]:
    """``opinionqa`` [+ ``opinionqa-steer``]; ``questions`` replaces the survey data (tests)."""

    def steering(qs: list[SurveyQuestion]) -> tuple[list[SurveyQuestion], list[Persona]]:
        steer_qs = [q for q in qs if "steer500" in q.tags]
        if not steer_qs:
            raise DataError("opinionqa: no question is tagged steer500 (the steering set)")
        return steer_qs, select_formats(opinionqa_personas(), options.settings)

    return survey_tasks("opinionqa", options, questions, steering)


def steering_requests(n_questions: int, formats: str = "qa,bio,portray") -> list[ScoreRequest]:
    """OpinionQA's real steering workload, as ``ava eval --benchmark opinionqa --steer`` builds it:
    the first ``n_questions`` of the steering set, unsteered and under every persona (speed scripts, tests)."""
    (steer,) = [t for t in make_tasks(TaskOptions(steer=True, settings={"formats": formats},
                                                  task_limits={"opinionqa-steer": n_questions}))
                if t.name == "opinionqa-steer"]
    return [item.request for item in steer.items()]
