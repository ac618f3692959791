"""``ava eval``: score a model on a benchmark (or a suite of them) into a run directory.

Everything that can be checked is checked before anything slow: the names (benchmark, suite,
``--set`` keys), the flags that a benchmark would ignore, the output location (preflight),
then the data; the model is loaded only when an item needs scoring.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import typer

from ava.evals import registry
from ava.evals.framing import FRAMINGS, Framing, FramingError, resolve_framing
from ava.evals.task import TaskOptions
from ava.models.backends.cli_options import (
    ApiKeyEnvOption,
    BackendOption,
    BaseUrlOption,
    ConcurrencyOption,
    MinCoverageOption,
    ModeOption,
    RequestTimeoutOption,
    RetriesOption,
    ServedModelOption,
    TopKOption,
    backend_settings,
)
from ava.models.backends.factory import check_combination
from ava.models.backends.settings import BackendSettings
from ava.models.options import DeviceMapOption, DTypeOption, ModelOptions, RevisionOption


class EvalUsageError(ValueError):
    """A command line that would do something other than what it says; the message says what."""


def parse_settings(pairs: list[str] | None) -> dict[str, str]:
    """``--set key=value`` pairs -> dict (values stay strings; each task parses its own)."""
    settings: dict[str, str] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise EvalUsageError(f"--set {pair!r}: expected key=value")
        settings[key.strip()] = value.strip()
    return settings


def default_out(name: str, model: str, adapter: str | None) -> Path:
    stem = Path(adapter).name if adapter else Path(model).name
    return Path("runs") / re.sub(r"[^A-Za-z0-9._-]+", "_", f"{name}-{stem}")


@dataclass
class EvalPlan:
    """What one ``ava eval`` command will do, checked: the benchmark or suite, options, output."""

    model: str
    adapter: str | None
    framing: Framing
    benchmark: registry.Benchmark | None
    suite: str | None
    options: TaskOptions
    out: Path
    config: dict[str, Any] = field(default_factory=dict)
    loading: ModelOptions | None = None  # how the model loads (dtype, device map, revision); None: defaults
    backend: BackendSettings | None = None  # where the model runs (--backend ...); None: transformers

    def model_options(self) -> ModelOptions:
        return self.loading or ModelOptions(self.model, self.adapter)


def plan_eval(model: str, adapter: str | None, benchmark: str | None, suite: str | None, steer: bool,
              limit: int | None, out: Path | None, seed: int, framing: str, data: str | None,
              set_: list[str] | None, *, loading: ModelOptions | None = None,
              backend: BackendSettings | None = None, expression: str | None = None) -> EvalPlan:
    """Check a command line; :class:`EvalUsageError` (or ``UnknownName``, ``ModelError``) says what is wrong.

    ``framing``: ``auto``, ``chat`` or ``plain`` (:mod:`ava.evals.framing`), resolved here from
    the model's files, before anything is loaded. ``loading``: ``--dtype``, ``--device-map`` and
    ``--revision`` (checked on creation); recorded in the config, and the dtype and resolved
    revision are part of the scorer's identity, which the run is bound to.
    """
    from ava.evals.suites import check_suite, suite_benchmarks

    loading = loading or ModelOptions(model, adapter)
    backend = backend or BackendSettings()
    check_combination(loading, backend)
    if framing not in FRAMINGS:
        raise EvalUsageError(f"--framing {framing!r}: expected one of {', '.join(FRAMINGS)}")
    if (benchmark is None) == (suite is None):
        raise EvalUsageError("give exactly one of --benchmark NAME or --suite NAME")
    settings = parse_settings(set_)
    bench = registry.get(benchmark) if benchmark is not None else None
    if expression is not None or "expression" in settings:
        settings = with_expression(settings, expression or settings["expression"], bench, model)
    if bench is not None:
        registry.check_settings(settings, [bench])
        if steer and not bench.steer:
            raise EvalUsageError(f"--steer: {bench.name} has no steering task (benchmarks with one: "
                                 f"{', '.join(b.name for b in registry.BENCHMARKS.values() if b.steer)})")
        if bench.generates and framing != "auto":
            raise EvalUsageError(f"--framing {framing}: {bench.name} generates in the prompt format the model was "
                                 "trained on; drop --framing (or --chat)")
        if bench.generates and model == "uniform":
            raise EvalUsageError(f"{bench.name} generates text: give a language model with --model, not uniform")
        if bench.generates and not backend.is_default:
            raise EvalUsageError(f"{bench.name} also measures perplexities with the model's weights in this process: "
                                 f"use --backend transformers, not {backend.backend}")
    else:
        check_suite(str(suite))
        registry.check_settings(settings, suite_benchmarks(str(suite)))
        if data is not None:
            raise EvalUsageError("--data names one benchmark's data; with --suite use --set data_root=DIR "
                                 "(a folder with one data folder per benchmark)")
        if steer:
            raise EvalUsageError("--steer: a suite sets steering per benchmark; drop --steer")
    if bench is not None and bench.generates:
        chosen = Framing("none", framing, f"{bench.name} generates in the prompt format the model was trained on")
    else:
        chosen = resolve_framing(model, framing)
    name = benchmark or f"suite-{suite}"
    config: dict[str, Any] = {"model": model, "adapter": adapter, "benchmark": benchmark, "suite": suite,
                              "steer": steer, "chat": chosen.chat, **chosen.to_config(), "data": data,
                              "settings": settings, "limit": limit, "dtype": loading.dtype,
                              "device_map": loading.device_map, "revision": loading.revision, "argv": sys.argv[1:]}
    if not backend.is_default:
        config["backend"] = backend.to_config()
    return EvalPlan(model, adapter, chosen, bench, suite, TaskOptions(limit, steer, seed, data, settings),
                    out or default_out(name, model, adapter), config, loading, backend)


def with_expression(settings: dict[str, str], expression: str, bench: registry.Benchmark | None,
                    model: str) -> dict[str, str]:
    """``--expression METHOD`` as the opinion tasks' setting ``expression`` (what ``--set
    expression=METHOD`` and a recipe's ``settings.expression`` say): checked now, before
    anything loads (an unknown name with the close ones; a method the model cannot do)."""
    from ava.evals.tasks.expression import ExpressionSpec, check_backend, expression_spec
    from ava.models.loading import resolve_model

    if settings.get("expression", expression) != expression:
        raise EvalUsageError(f"--expression {expression} contradicts --set expression={settings['expression']}: "
                             "give one of them")
    if bench is not None and "expression" not in bench.settings():
        readers = [b.name for b in registry.BENCHMARKS.values() if not b.generates and "expression" in b.settings()]
        raise EvalUsageError(f"--expression: {bench.name} has no expression methods (it reads its own answers); "
                             f"the benchmarks that do: {', '.join(readers)}")
    spec: ExpressionSpec = expression_spec({**settings, "expression": expression}, 0)
    check_backend(spec, "uniform" if resolve_model(model).kind == "uniform" else "model")
    return {**settings, "expression": expression}


def run_plan(plan: EvalPlan, progress: bool, restart: bool) -> dict[str, Any]:
    """Preflight the output, build the tasks, run them (the model loads on first need)."""
    from ava.models.lazy import LazyScorer
    from ava.runs import Output, check_writable, interrupt_on_sigterm

    scorer = LazyScorer(plan.model_options(), chat=plan.framing.chat, settings=plan.backend)
    check_writable(Output(plan.out, folder=True))
    interrupt_on_sigterm()  # `kill` marks the run interrupted, like Ctrl-C
    if not progress:
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # --no-progress: transformers' "Loading weights" bar too
    print(plan.framing.describe())
    if plan.benchmark is not None:
        from ava.evals.runner import run_tasks

        tasks = plan.benchmark.factory()(plan.options)
        return run_tasks(tasks, scorer, plan.out, seed=plan.options.seed, config=plan.config, progress=progress,
                         restart=restart, generation_model=scorer.generation_model)
    from ava.evals.suites import run_suite

    return run_suite(str(plan.suite), scorer=scorer, out_dir=plan.out, seed=plan.options.seed,
                     limit=plan.options.limit, settings=plan.options.settings, progress=progress, config=plan.config,
                     restart=restart, generation_model=scorer.generation_model)


def eval_command(
    model: str = typer.Option("smollm2", "--model", "-m", help="built-in name, HF id or local path"),
    adapter: str | None = typer.Option(None, help="PEFT adapter folder"),
    benchmark: str | None = typer.Option(None, "--benchmark", "-b", help="e.g. opinionqa, opinionqa-xl, ava-tasks"),
    suite: str | None = typer.Option(None, help="a suite of benchmarks: quick or paper"),
    steer: bool = typer.Option(False, help="also evaluate steering with group personas (opinion benchmarks)"),
    limit: int | None = typer.Option(None, min=1, help="units per task: first N questions, or a seeded sample"),
    out: Path | None = typer.Option(None, "--out", "-o", help="run directory (default runs/<benchmark>-<model>)"),
    seed: int = typer.Option(0, help="seed for bootstrap resampling and any sampling"),
    framing: str = typer.Option("auto", help="how prompts are put to the model: auto (chat for an instruction-tuned "
                                "model, plain otherwise), chat (its chat template) or plain (the text as it is)"),
    chat: bool = typer.Option(False, "--chat", hidden=True, help="same as --framing chat"),
    data: str | None = typer.Option(None, help="the benchmark's data: a file or the folder holding it"),
    set_: list[str] | None = typer.Option(None, "--set", help="benchmark setting key=value (repeatable)"),
    expression: str | None = typer.Option(None, "--expression", help="how the opinion benchmarks read the model's "
                                          "distribution: logprobs (default), calibrated, verbalized or sampled "
                                          "(same as --set expression=...)"),
    progress: bool = typer.Option(True, help="show progress bars"),
    restart: bool = typer.Option(False, "--restart", help="discard what --out holds and start over"),
    dtype: DTypeOption = "auto",
    device_map: DeviceMapOption = None,
    revision: RevisionOption = None,
    backend: BackendOption = "transformers",
    mode: ModeOption = "exact",
    base_url: BaseUrlOption = None,
    served_model: ServedModelOption = None,
    api_key_env: ApiKeyEnvOption = None,
    top_k: TopKOption = 20,
    min_coverage: MinCoverageOption = 0.95,
    concurrency: ConcurrencyOption = 16,
    request_timeout: RequestTimeoutOption = 300.0,
    retries: RetriesOption = 5,
) -> None:
    """Evaluate a model; rerunning the same command resumes (scored prompts are cached)."""
    from ava.evals.data import DataError
    from ava.models.loading import ModelError
    from ava.runs import RunRefused, check_apart_each

    try:
        if chat and framing not in ("auto", "chat"):
            raise EvalUsageError(f"--chat means --framing chat; it contradicts --framing {framing}: give one of them")
        where = backend_settings(model, backend, mode, base_url, served_model, api_key_env, top_k, min_coverage,
                                 concurrency, request_timeout, retries)
        plan = plan_eval(model, adapter, benchmark, suite, steer, limit, out, seed, "chat" if chat else framing,
                         data, set_, loading=ModelOptions(model, adapter, dtype, device_map, revision), backend=where,
                         expression=expression)
        # (a --set data_root folder holds each benchmark's data folder: a run directory beside them is fine)
        check_apart_each(plan.out, [("--data", data), ("--model", model), ("--adapter", adapter)])
        results = run_plan(plan, progress, restart)
    except KeyboardInterrupt:
        target = out or "the run directory"
        raise _fail(f"interrupted; nothing scored is lost: rerun the same command to resume ({target})", 130) from None
    except (EvalUsageError, registry.UnknownName, FramingError, RunRefused, ModelError, DataError,
            FileNotFoundError, ValueError) as exc:
        raise _fail(str(exc)) from None
    except OSError as exc:
        from ava.io import os_error_line

        raise _fail(os_error_line(exc, out)) from None
    _print_results(results, plan.out)


def _fail(message: str, code: int = 2) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


def _print_results(results: Any, out_dir: Path) -> None:
    from ava.evals.tables import print_headline

    if isinstance(results, dict) and "tasks" in results:
        print_headline(results)
    typer.echo(f"run directory: {out_dir}")
    if isinstance(results, dict):  # a method that mostly failed: one line, last, where it cannot be missed
        warnings = [((t.get("details") or {}).get("expression") or {}).get("warning")
                    for t in results.get("tasks", {}).values()] + list(results.get("warnings", []))
        for warning in filter(None, warnings):
            typer.echo(f"warning: {warning}", err=True)
