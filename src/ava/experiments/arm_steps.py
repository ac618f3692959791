"""The steps of an experiment with arms: build -> each reference evaluated -> each trained arm per seed
(its data, training, evaluation) -> one comparison of them all.

Each arm and seed is its own set of steps under ``arms/<arm>-s<seed>/`` (``ExperimentFolder.arm``),
each keyed in ``steps.json`` by its own inputs (the training: model identity, the manifest of the
data it read, every setting including the seed; the evaluation: the scorer's identity with the
adapter, the tasks and their items). So adding an arm or a seed to a recipe trains and scores only
the new runs, and the comparison (derived data) is recomputed from all of them.
"""

from __future__ import annotations

import time
from functools import partial

from ava.experiments.arms import Arm, arms_of
from ava.experiments.steps import (
    Context,
    Step,
    TrainTarget,
    _is_cached,
    _mark_done,
    build_step,
    digest,
    evaluate,
    train_into,
    write_comparison,
)
from ava.io import read_json

TOKENS = {"include_num_input_tokens_seen": "non_padding"}
"""Every trained arm counts the tokens it read (transformers' own count), so the budget is stated as trained."""


def arm_steps(ctx: Context) -> list[Step]:
    raw = ctx.recipe.raw
    arms = arms_of(raw)
    steps = [Step("build", "build the instruction data (or reuse a finished build)", build_step)]
    for arm in arms:
        if not arm.trained:
            steps.append(Step(f"arms/{arm.folder(None)}/eval", f"evaluate the reference {arm.name} "
                              f"({arm.model or raw['model']['name']})", partial(_reference, arm=arm)))
    for seed in raw["seeds"]:
        for arm in (a for a in arms if a.trained):
            where = f"arms/{arm.folder(seed)}"
            if arm.kind == "shuffled-audience":
                steps.append(Step(f"{where}/data", f"shuffle the audiences of the training pairs (seed {seed})",
                                  partial(_shuffled_data, arm=arm, seed=seed)))
            steps.append(Step(f"{where}/train", f"fine-tune {arm.name} ({arm.kind}, seed {seed})",
                              partial(_train, arm=arm, seed=seed)))
            steps.append(Step(f"{where}/eval", f"evaluate {arm.name} (seed {seed}) on the same items",
                              partial(_evaluate_trained, arm=arm, seed=seed)))
    steps.append(Step("compare", "compare every arm and seed (paired bootstrap)", _compare))
    return steps


def _reference(ctx: Context, arm: Arm) -> bool:
    folder = ctx.out.arm(arm.folder(None)).evaluation
    result, cached = evaluate(ctx, folder, f"arms/{arm.folder(None)}/eval", arm.model or ctx.recipe["model"]["name"],
                              None)
    ctx.results[arm.folder(None)] = result
    return cached


def _shuffled_data(ctx: Context, arm: Arm, seed: int) -> bool:
    from ava.experiments.shuffle import write_shuffled_build
    from ava.instructions.dataset import manifest_sha256

    assert ctx.build is not None
    name = f"arms/{arm.folder(seed)}/data"
    key = {"build": manifest_sha256(ctx.build), "audience_shuffle_seed": seed}
    if _is_cached(ctx, name, key, "instructions"):
        return True
    t0 = time.perf_counter()
    write_shuffled_build(ctx.build, ctx.out.arm(arm.folder(seed)).data, seed)
    _mark_done(ctx, name, key, time.perf_counter() - t0)
    return False


def _train(ctx: Context, arm: Arm, seed: int) -> bool:
    assert ctx.build is not None
    folder = ctx.out.arm(arm.folder(seed))
    build = folder.data if arm.kind == "shuffled-audience" else ctx.build
    target = TrainTarget(f"arms/{arm.folder(seed)}/train", build, folder.train, folder.trained_model, folder.loss)
    if arm.kind in ("survey", "mixed"):
        from ava.experiments.steps import _framing_chat
        from ava.experiments.survey_arm import survey_trainer
        from ava.instructions.dataset import read_manifest

        n_pairs = (read_manifest(ctx.build).get("totals") or {}).get("train")
        trainer, extra = survey_trainer(ctx.recipe, arm, seed, _framing_chat(ctx), n_pairs)
        # the survey trainer counts its tokens itself (its card's result.num_input_tokens_seen)
        adapter, cached = train_into(ctx, target, seed, arm.limit, dict(arm.sft or {}), trainer, extra)
    else:
        adapter, cached = train_into(ctx, target, seed, arm.limit, {**(arm.sft or {}), **TOKENS})
    ctx.adapters[arm.folder(seed)] = adapter
    return cached


def _evaluate_trained(ctx: Context, arm: Arm, seed: int) -> bool:
    folder = ctx.out.arm(arm.folder(seed))
    result, cached = evaluate(ctx, folder.evaluation, f"arms/{arm.folder(seed)}/eval", ctx.recipe["model"]["name"],
                              str(ctx.adapters[arm.folder(seed)]))
    ctx.results[arm.folder(seed)] = result
    return cached


def _compare(ctx: Context) -> bool:
    # lazily: the comparison's and the report's libraries load only when an experiment gets this far
    from ava.experiments.arms_compare import compare_arms, print_arms
    from ava.reports.arms import render_arms

    losses = {name: read_json(ctx.out.arm(name).loss) for name in ctx.results if ctx.out.arm(name).loss.is_file()}
    key = {"results": {k: digest(v) for k, v in sorted(ctx.results.items())}, "compare": ctx.recipe["compare"],
           "arms": ctx.recipe["arms"], "seeds": ctx.recipe["seeds"], "loss": digest(losses)}
    return write_comparison(ctx, key, lambda: compare_arms(ctx.out, ctx.recipe, ctx.results, losses), render_arms,
                            print_arms)
