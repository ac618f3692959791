"""The ``survey`` and ``mixed`` arms: survey supervision (SubPOP-style) on Pew waves disjoint from the evaluated ones.

Training itself is :func:`ava.training.survey_train.train_survey` (forward KL on the option letters,
one source per optimiser step for ``mixed``); this module decides what the experiment hands it:

* **evaluated**: every question of every survey benchmark the recipe evaluates (``opinionqa``,
  ``opinionqa-xl``), the *whole* benchmark, not the recipe's sample: a question left out of this
  evaluation may be in the next one, and a trained-on question must never be scored;
* **pool**: the bundled OpinionQA-XL (all Pew waves); the split keeps the waves not evaluated and
  drops repeats of evaluated questions (:func:`ava.training.survey_data.survey_examples`), and
  :func:`~ava.training.survey_data.check_disjoint` refuses any leak, naming the questions;
* **how many examples**: the arm's ``train.limit`` if set (the same number the behaviour arm reads),
  else ``max_steps`` x batch x accumulation (what the step budget consumes), else all;
* **framing**: the one the tuned model is scored in (chat or plain), so what is trained is what is measured.

The split is checked before anything trains (:func:`check_survey_arms`, called before the
experiment folder is opened): an experiment that evaluates OpinionQA-XL itself leaves no
disjoint wave and is refused in one line.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from ava.experiments.arms import Arm, arms_of
from ava.experiments.errors import RecipeError

POOL = "opinionqa-xl"
SURVEY_BENCHMARKS = ("opinionqa", "opinionqa-xl")


@lru_cache(maxsize=4)
def _benchmark(name: str) -> Any:
    from ava.surveys import load_benchmark

    return load_benchmark(name)


def evaluated_questions(recipe: Any) -> list[Any]:
    out: list[Any] = []
    for name in SURVEY_BENCHMARKS:
        if name in recipe.benchmarks:
            out += list(_benchmark(name))
    return out


def examples_limit(raw: dict[str, Any], arm: Arm, n_pairs: int | None = None) -> int | None:
    """As many examples as the behaviour arm reads pairs: ``train.limit``; else what ``max_steps``
    consumes; else (epochs over the whole build) the build's number of training pairs, so an
    epoch is the same number of optimiser steps."""
    from ava.experiments.arms import budget

    b = budget(raw, arm)
    if arm.limit is not None:
        return arm.limit
    steps = b.get("max_steps") or 0
    if steps > 0:
        return steps * (b.get("per_device_train_batch_size") or 8) * (b.get("gradient_accumulation_steps") or 1)
    return n_pairs


def survey_data(recipe: Any, arm: Arm, seed: int, n_pairs: int | None = None) -> tuple[list[Any], Any]:
    """The arm's survey examples and their split, checked disjoint from every evaluated question."""
    from ava.evals.prompts.personas import opinionqa_personas
    from ava.evals.tasks.opinion_items import make_request
    from ava.training.survey_data import check_disjoint, survey_examples

    pool, evaluated = list(_benchmark(POOL)), evaluated_questions(recipe)
    examples, split = survey_examples(pool, evaluated, opinionqa_personas(), make_request, seed=seed,
                                      limit=examples_limit(recipe.raw, arm, n_pairs))
    check_disjoint(examples, pool, evaluated)
    return examples, split


def check_survey_arms(recipe: Any) -> None:
    """Refuse, before anything runs, a survey or mixed arm whose split leaves no disjoint wave or leaks."""
    from ava.training.survey_data import SurveySplitError

    for i, arm in enumerate(arms_of(recipe.raw)):
        if arm.kind not in ("survey", "mixed"):
            continue
        try:
            survey_data(recipe, arm, recipe["seeds"][0])
        except SurveySplitError as exc:
            raise RecipeError(f"{recipe.path}: arms[{i}] ({arm.name}, {arm.kind}): {exc}") from None


def survey_trainer(recipe: Any, arm: Arm, seed: int, chat: bool,
                   n_pairs: int | None = None) -> tuple[Any, dict[str, Any]]:
    """``train(cfg, log)`` for :func:`ava.experiments.steps.train_into`, and what keys the step besides
    the config (the survey share, the pool, the evaluated benchmarks and the split's counts)."""
    from ava.training.survey_train import SurveyRun, train_survey

    examples, split = survey_data(recipe, arm, seed, n_pairs)
    share = 1.0 if arm.kind == "survey" else float(arm.ratio or 0)
    run = SurveyRun(examples, split, chat=chat, survey_share=share)
    key = {"survey_share": share, "pool": POOL, "chat": chat,
           "evaluated": [b for b in SURVEY_BENCHMARKS if b in recipe.benchmarks],
           "split": split.to_dict().get("counts")}
    return (lambda cfg, log: train_survey(cfg, run, log=log)), key
