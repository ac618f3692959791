"""The experiment as a list of steps: build (or reuse) -> eval base -> train -> eval tuned -> compare.

Each step writes its own sub-folder of the experiment folder through :mod:`ava.runs` (its own
``run.json``, lock and binding) by calling the same functions the commands call: ``build`` of
``ava data build-ads``, ``run_tasks`` of ``ava eval``, ``load_config``/``train`` of ``ava train``.
The experiment folder itself is bound to the recipe's data, model and training sections: a rerun
with any of those changed is refused naming the key. A step is skipped when its folder is complete
and the inputs it was made from (recorded in ``steps.json``) are the same; so a rerun after a crash
redoes only what is unfinished, and an added benchmark is only scored, never the others again (the
score cache keys every prompt by model, task version and item).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ava.contracts.experiments import ExperimentFolder
from ava.contracts.results import RunDirectory
from ava.experiments.recipe import SPEED_ONLY, Recipe
from ava.io import read_json, write_json
from ava.runs import Binding, Output, is_complete, start_run

KIND = "experiment"


class ExperimentError(ValueError):
    """An experiment that cannot go on (a missing build, a step's refusal); one line, what to do."""


class ExperimentStopped(RuntimeError):
    """Training ended with a non-finite loss: nothing after it is evaluated or compared."""


@dataclass
class Context:
    """What the steps hand each other."""

    recipe: Recipe
    out: ExperimentFolder
    say: Callable[[str], None]
    progress: bool = True
    build: Path | None = None
    adapter: Path | None = None
    results: dict[str, dict[str, Any]] = field(default_factory=dict)
    comparison: dict[str, Any] | None = None
    cached: list[str] = field(default_factory=list)
    ads: list[list[str]] = field(default_factory=list)  # [name, sha256] of every ad file, hashed once
    build_files: list[list[str]] = field(default_factory=list)  # [name, sha256] of a given data.build's files
    adapters: dict[str, Path] = field(default_factory=dict)  # arms: each trained arm-seed's adapter


@dataclass(frozen=True)
class Step:
    name: str
    what: str
    run: Callable[[Context], bool]  # True when it found its output finished and did nothing


def digest(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


def ads_contents(ads: list[str] | None) -> list[list[str]]:
    """``[name, sha256]`` of every file the build reads from ``data.ads``, in its order (folders
    expanded as :func:`ava.ads.readers.discover` expands them for the build), so a cache key or a
    binding changes when an ad file is edited in place, not only when a path changes."""
    from ava.ads.readers import discover
    from ava.io import file_sha256

    if ads is None:
        return []
    try:
        return [[f.name, file_sha256(f.path)] for f in discover(list(ads))]
    except (OSError, ValueError) as exc:
        raise ExperimentError(f"data.ads: {exc}") from None


def build_contents(build: str | None) -> list[list[str]]:
    """``[name, sha256]`` of what an experiment reads from a finished ``data.build``: its manifest
    and every Parquet part, so a rebuilt build, or a part edited in place, changes the binding
    (the manifest alone names the build's settings, not its rows). Refused when the build is not a
    finished instruction build, before anything runs."""
    from ava.instructions.dataset import DatasetLayout
    from ava.io import file_sha256
    from ava.runs import incomplete_reason

    if build is None:
        return []
    why = incomplete_reason(Path(build), "instructions")
    if why is not None:
        raise ExperimentError(f"data.build {build}: not a finished instruction build ({why}); "
                              "build it with `ava data build-ads`, or give data.ads instead")
    layout = DatasetLayout(Path(build))
    files = [layout.manifest, *sorted(layout.data.glob("*.parquet"))]
    try:
        return [[f.relative_to(layout.root).as_posix(), file_sha256(f)] for f in files]
    except OSError as exc:
        from ava.io import os_error_line

        raise ExperimentError(f"data.build: {os_error_line(exc, build)}") from None


def contents_digest(contents: list[list[str]]) -> str:
    """The hash ``ava data build-ads`` binds its inputs to (the same names and sha256s, the same hash)."""
    return hashlib.sha256(json.dumps(contents).encode()).hexdigest()[:16] if contents else ""


def _refuse_edited_inputs(ctx: Context) -> None:
    """Name the ad files, or the files of ``data.build``, whose contents changed since the
    experiment began (the binding only holds their joint hash); the binding refuses any other
    difference itself."""
    from ava.runs import BindingMismatch, RecordError, read_run

    try:
        previous = read_run(ctx.out.root)
    except RecordError:
        return  # start_run reports an unreadable record
    if previous is None or previous.kind != KIND:
        return
    for key, now, what in (("ads", ctx.ads, "ad file contents"), ("build", ctx.build_files, "data.build contents")):
        if not isinstance(previous.info.get(key), list) or not now:
            continue
        before = {str(name): sha for name, sha in previous.info[key]}
        after = dict(now)
        changes = ([f"{n} changed" for n in sorted(before.keys() & after.keys()) if before[n] != after[n]]
                   + [f"{n} added" for n in sorted(after.keys() - before.keys())]
                   + [f"{n} removed" for n in sorted(before.keys() - after.keys())])
        if changes:
            where = f" {ctx.recipe['data']['build']}" if key == "build" else ""
            raise BindingMismatch(f"{ctx.out.root} was built from other {what}{where} ({'; '.join(changes[:5])}"
                                  f"{'; ...' if len(changes) > 5 else ''}); put them back to resume, or pass "
                                  "--restart to start over, or choose another --out")


def _is_cached(ctx: Context, name: str, key: dict[str, Any], kind: str | None) -> bool:
    path = ctx.out.steps
    done = read_json(path) if path.is_file() else {}
    return done.get(name, {}).get("inputs") == digest(key) and (kind is None or is_complete(ctx.out.step(name), kind))


def _mark_done(ctx: Context, name: str, key: dict[str, Any], seconds: float) -> None:
    path = ctx.out.steps
    done = read_json(path) if path.is_file() else {}
    done[name] = {"inputs": digest(key), "key": key, "seconds": round(seconds, 1)}
    write_json(path, done)


# -- build ----------------------------------------------------------------------------------


def build_step(ctx: Context) -> bool:
    from ava.runs import incomplete_reason

    data = ctx.recipe["data"]
    if data["build"] is not None:
        ctx.build = Path(data["build"])
        why = incomplete_reason(ctx.build, "instructions")
        if why is not None:
            raise ExperimentError(f"data.build {ctx.build}: not a finished instruction build ({why}); "
                                  "build it with `ava data build-ads`, or give data.ads instead")
        ctx.say(f"build: using the finished build {ctx.build}")
        return True
    ctx.build = ctx.out.build
    options = data["options"]
    key = {"ads": data["ads"], "contents": ctx.ads,
           "options": {k: v for k, v in options.items() if k not in SPEED_ONLY}}
    if _is_cached(ctx, "build", key, "instructions"):
        return True
    from ava.instructions.build import build
    from ava.instructions.pairs import PairConfig

    t0 = time.perf_counter()
    result = build(
        data["ads"], ctx.build, workers=options["workers"], shards=options["shards"], seed=options["seed"],
        heldout_fraction=options["heldout_fraction"], temporal_fraction=options["temporal_fraction"],
        cutoff=options["cutoff"], keywords=options["keywords"], max_body_chars=options["max_body_chars"],
        pair=PairConfig(max_pairs_per_brand=options["max_pairs_per_brand"], block_size=options["block_size"],
                        seed=options["seed"], embed_backend=options["embed_backend"]),
        log=ctx.say, progress=ctx.progress,
    )
    ctx.say(f"build: {result.manifest['totals']} samples per split")
    _mark_done(ctx, "build", key, time.perf_counter() - t0)
    return False


# -- evaluation -------------------------------------------------------------------------------


def _framing_chat(ctx: Context) -> bool:
    from ava.evals.framing import resolve_framing

    return resolve_framing(ctx.recipe["model"]["name"], ctx.recipe["model"]["framing"]).chat


def _scorer(model: str, adapter: str | None, chat: bool) -> Any:
    """The lazy scorer ``ava eval`` uses (loads the model on first use, so a cached step loads nothing)."""
    from ava.models.lazy import LazyScorer
    from ava.models.options import ModelOptions

    return LazyScorer(ModelOptions(model, adapter=adapter), chat=chat)


def eval_step(label: str) -> Callable[[Context], bool]:
    """Evaluate the base model (``label`` "base") or the tuned one ("tuned") on the same items."""

    def run(ctx: Context) -> bool:
        folder = ctx.out.evaluation(label)
        adapter = str(ctx.adapter) if label == "tuned" else None
        ctx.results[label], cached = evaluate(ctx, folder, folder.name, ctx.recipe["model"]["name"], adapter)
        return cached

    return run


def evaluate(ctx: Context, folder: Path, name: str, model: str, adapter: str | None) -> tuple[dict[str, Any], bool]:
    """``model`` (+ ``adapter``) on the recipe's tasks into the run directory ``folder`` (step ``name``);
    returns its results and whether they were cached."""
    from ava.evals.rundir import dataset_hash
    from ava.evals.runner import run_tasks
    from ava.experiments.tasks import make_tasks
    assert ctx.build is not None
    scorer = _scorer(model, adapter, _framing_chat(ctx))
    by_bench = make_tasks(ctx.recipe.benchmarks, ctx.build, ctx.recipe["eval"]["seed"])
    tasks = [t for ts in by_bench.values() for t in ts]
    key = {"identity": scorer.identity, "seed": ctx.recipe["eval"]["seed"], "tasks": {
        t.name: [t.version, dataset_hash(t.items())]
        for t in tasks}}
    results = RunDirectory(folder).results
    if _is_cached(ctx, name, key, "eval") and results.is_file():
        return read_json(results), True
    t0 = time.perf_counter()
    config = {"model": model, "adapter": adapter, "experiment": ctx.recipe["name"], "step": name,
              "benchmarks": {b: [t.name for t in ts] for b, ts in by_bench.items()}}
    out = run_tasks(tasks, scorer, folder, seed=ctx.recipe["eval"]["seed"], config=config,
                    progress=ctx.progress, generation_model=scorer.generation_model)
    _mark_done(ctx, name, key, time.perf_counter() - t0)
    return out, False


# -- training ---------------------------------------------------------------------------------


def train_step(ctx: Context) -> bool:
    """Train through :func:`ava.training.trainer.train` into ``train/model`` (``ava train``'s folder)."""
    assert ctx.build is not None
    spec = ctx.recipe["train"]
    ctx.adapter, cached = train_into(ctx, TrainTarget("train", ctx.build, ctx.out.train, ctx.out.trained_model,
                                                      ctx.out.loss), ctx.recipe["seed"], spec["limit"], spec["sft"])
    return cached


@dataclass(frozen=True)
class TrainTarget:
    """Where one training run reads (``build``) and writes (its step folder, model folder, loss file)."""

    name: str
    build: Path
    folder: Path
    model: Path
    loss: Path


def train_into(ctx: Context, where: TrainTarget, seed: int, limit: int | None, sft: dict[str, Any],
               trainer: Callable[..., Any] | None = None, extra: dict[str, Any] | None = None) -> tuple[Path, bool]:
    """Train the recipe's model on ``where.build``; returns the adapter (or model) path and whether the
    run was cached. The step is keyed by the model identity, the build's manifest and every setting
    (and ``extra``: what a ``trainer`` other than ``ava train``'s reads besides, e.g. survey examples)."""
    from ava.instructions.dataset import manifest_sha256
    from ava.models.options import ModelOptions
    from ava.training.config import load_config
    from ava.training.guard import NonFiniteLossError
    from ava.training.output import TrainingOutput
    from ava.training.trainer import train

    target = TrainingOutput(where.model)
    spec, recipe = ctx.recipe["train"], ctx.recipe
    cfg = load_config(recipe["model"]["name"], where.build, target.root, config_file=spec["config"],
                      method=spec["method"],
                      overrides={"seed": seed, "limit": limit, "mix": spec["mix"], "mix_ratio": spec["mix_ratio"]},
                      sft_overrides={**sft, **({} if ctx.progress else {"disable_tqdm": True})})  # not bound
    settings = {k: v for k, v in cfg.binding().items() if k not in ("out", "data")}
    binding = Binding(model=ModelOptions(recipe["model"]["name"]).identity(), inputs=manifest_sha256(where.build),
                      options={**settings, **({"arm": extra} if extra else {})})
    key = binding.to_dict()
    weights = target.weights(cfg.method)
    if _is_cached(ctx, where.name, key, "experiment-train"):
        return weights, True
    t0 = time.perf_counter()
    owned = (where.model.name, where.loss.name)
    with start_run(Output(where.folder, folder=True), "experiment-train", binding, owned=owned) as run:
        if not target.card.is_file():
            try:
                outcome = (trainer or train)(cfg, log=ctx.say)  # an unfinished run resumes from its checkpoint
            except NonFiniteLossError as exc:
                raise ExperimentStopped(f"{where.name} step: {exc}; the tuned model is not evaluated or "
                                        "compared") from None
            history = outcome.log_history
        else:  # trained before an interruption of this step: read the curve from the last checkpoint
            history = _checkpoint_history(target)
        card = target.read_card()
        losses = [{"step": h["step"], "loss": h["loss"], "epoch": h.get("epoch")} for h in history if "loss" in h]
        seen = [h["num_input_tokens_seen"] for h in history if "num_input_tokens_seen" in h]
        record = {"losses": losses, "result": card.get("result", {}),
                  "data": _pairs_read(card.get("data", {})),
                  "train_s": round(time.perf_counter() - t0, 1)}
        result = card.get("result", {})
        if seen or "num_input_tokens_seen" in result:  # arms: the budget as trained (the Trainer's non-padding count)
            record["budget"] = {"optimizer_steps": result.get("global_step") or max(
                (h.get("step", 0) for h in history), default=0),
                "tokens_seen": int(result.get("num_input_tokens_seen") or max(seen or [0]))}
            for k in ("survey_steps", "behaviour_steps"):
                if k in result:
                    record["budget"][k] = result[k]
            survey = card.get("data", {}).get("survey") or {}
            if survey.get("n_rows") is not None:
                record["budget"]["survey_examples"] = survey["n_rows"]
        write_json(where.loss, record)
        run.update_info({"result": card.get("result", {})})
    _mark_done(ctx, where.name, key, time.perf_counter() - t0)
    return weights, False


def _pairs_read(data: dict[str, Any]) -> dict[str, Any]:
    """The instruction pairs a run read: ``ava train``'s card has them at the top of ``data``; a
    survey or mixed run's card under ``data.behaviour`` (None for survey only: no pairs)."""
    behaviour = data.get("behaviour") if "objective" in data else data
    behaviour = behaviour or {}
    return {"n_samples": behaviour.get("n_samples", 0 if "objective" in data else None),
            "by_task": behaviour.get("by_task")}


def _checkpoint_history(target: Any) -> list[dict[str, Any]]:
    """The loss history of the newest checkpoint training finished writing (training's own rule)."""
    from ava.training.output import latest_checkpoint

    latest = latest_checkpoint(target.checkpoints, remove_incomplete=False)
    return read_json(latest / "trainer_state.json").get("log_history", []) if latest else []


# -- comparison -------------------------------------------------------------------------------


def compare_step(ctx: Context) -> bool:
    from ava.experiments.compare import compare, print_comparison
    from ava.reports.experiment import render_comparison

    key = {"base": digest(ctx.results["base"]), "tuned": digest(ctx.results["tuned"]),
           "compare": ctx.recipe["compare"], "loss": digest(_read_loss(ctx))}
    return write_comparison(ctx, key, lambda: compare(ctx.out, ctx.recipe, ctx.results["base"], ctx.results["tuned"],
                                                      _read_loss(ctx)), render_comparison, print_comparison)


def write_comparison(ctx: Context, key: dict[str, Any], compute: Callable[[], dict[str, Any]],
                     render: Callable[[dict[str, Any], Path], Any], show: Callable[[dict[str, Any]], Any]) -> bool:
    """The compare step of either experiment shape (before/after, or arms): derived data only, so it
    is recomputed from scratch (restart=True) whenever ``key`` (the evaluations it reads, the compare
    settings) changed, and read back otherwise. True when it was reused."""
    if _is_cached(ctx, "compare", key, "experiment-compare") and ctx.out.comparison.is_file():
        ctx.comparison = read_json(ctx.out.comparison)
        return True
    t0 = time.perf_counter()
    with start_run(Output(ctx.out.compare, folder=True), "experiment-compare", Binding(inputs=digest(key)),
                   restart=True, owned=(ctx.out.comparison.name, ctx.out.comparison_plot.name)):
        ctx.comparison = compute()
        write_json(ctx.out.comparison, ctx.comparison)
        render(ctx.comparison, ctx.out.comparison_plot)
    show(ctx.comparison)
    _mark_done(ctx, "compare", key, time.perf_counter() - t0)
    return False


def _read_loss(ctx: Context) -> dict[str, Any]:
    path = ctx.out.loss
    return read_json(path) if path.is_file() else {}


STEPS: tuple[Step, ...] = (
    Step("build", "build the instruction data (or reuse a finished build)", build_step),
    Step("eval-base", "evaluate the base model", eval_step("base")),
    Step("train", "fine-tune on the instruction data", train_step),
    Step("eval-tuned", "evaluate the tuned model on the same items", eval_step("tuned")),
    Step("compare", "compare base and tuned (paired bootstrap)", compare_step),
)


def run_experiment(recipe: Recipe, out: Path, *, restart: bool = False, progress: bool = True,
                   say: Callable[[str], None] = print) -> Context:
    """Run every step not yet finished with these inputs; the folder is bound to the recipe."""
    from ava.runs import interrupt_on_sigterm

    interrupt_on_sigterm()
    from ava.runs import check_apart

    ctx = Context(recipe, ExperimentFolder(Path(out)), say, progress)
    if not progress:
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # --no-progress: transformers' "Loading weights" bar too
    data = recipe["data"]
    for key, paths in (("data.ads", data["ads"] or []), ("data.build", [data["build"]] if data["build"] else [])):
        check_apart(ctx.out.root, paths, "--out", f"{key} of {recipe.path}")
    # bound to the ads' contents: an ad file edited in place is refused, as ava data build-ads refuses it
    ctx.ads = ads_contents(data["ads"])
    ctx.build_files = build_contents(data["build"])  # a finished build, bound by its files' contents too
    if not restart:
        _refuse_edited_inputs(ctx)
    if recipe.uses_arms:  # a survey arm's split (no disjoint wave, a leak) is refused before anything is written
        from ava.experiments.survey_arm import check_survey_arms

        check_survey_arms(recipe)
    binding = Binding(inputs=contents_digest(ctx.ads or ctx.build_files), options=recipe.bound())
    info = {"recipe": str(recipe.path), "name": recipe["name"], "ads": ctx.ads,
            **({"build": ctx.build_files} if ctx.build_files else {})}
    with start_run(Output(ctx.out.root, folder=True), KIND, binding, info=info, restart=restart,
                   owned=ExperimentFolder.OWNED):
        steps = STEPS
        if recipe.uses_arms:
            from ava.experiments.arm_steps import arm_steps

            steps = tuple(arm_steps(ctx))
        for step in steps:
            say(f"[{step.name}] {step.what}")
            t0 = time.perf_counter()
            try:
                cached = step.run(ctx)
            except Exception:
                say(f"[{step.name}] failed; what earlier steps finished is kept")
                raise
            if cached:
                ctx.cached.append(step.name)
                say(f"[{step.name}] cached: finished earlier with the same inputs")
            else:
                say(f"[{step.name}] done in {time.perf_counter() - t0:.0f} s")
    if len(ctx.cached) == len(steps):
        say(f"every step is cached ({', '.join(ctx.cached)}): nothing to do; {ctx.out.compare}")
    return ctx
