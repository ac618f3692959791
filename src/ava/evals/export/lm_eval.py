"""``ava export lm-eval DIR``: ava's letter-scored benchmarks as lm-evaluation-harness tasks.

One YAML per ava task (``ava_opinionqa``, ``ava_opinionqa_steer``, ``ava_opinionqa_xl``,
``ava_opinionqa_xl_steer``, ``ava_globalopinionqa``, ``ava_culturenli``, ``ava_culturebank``;
tag ``ava``), a ``utils.py`` and a ``README.md``, so that

    lm_eval --model hf --model_args pretrained=MODEL --include_path DIR --tasks ava_opinionqa

scores the very prompts ``ava eval`` scores and reports ava's numbers. How (lm-eval 0.4.13):

* a ``multiple_choice`` task whose choices are both spellings of every option letter ("A", " A",
  ...), ``target_delimiter: ""``; the document text is the prompt up to the answer cue and the
  cue is lm-eval's ``gen_prefix``, so the plain context is ``prompt`` exactly, and with
  ``--apply_chat_template`` the cue opens the assistant turn, as in ava's chat framing;
* ``process_results`` combines each letter's two spellings by logsumexp, as ava's engine does;
* every metric's aggregation calls the ava task's own ``metrics`` (:mod:`.lm_eval_runtime`).

The documents are built when lm-eval loads the task, by ava's task factory, from the data the
export recorded (absolute paths; CultureNLI from the path given here, since it is not bundled);
the export records the dataset hash of the items and lm-eval refuses to run a task that ava
now builds differently. ``--limit N`` / ``--seed`` are ava's own selection (the items of ``ava
eval --limit N``), so the two harnesses score the same units without lm-eval's ``--limit``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from ava.contracts.scoring import ScoredItem
from ava.evals import registry
from ava.evals.data import DataError, data_root
from ava.evals.export.lm_eval_runtime import SPEC_KEY, task_options
from ava.evals.task import GenerationTask, Task
from ava.subsets import first_units

TAG = "ava"
PREFIX = "ava_"
LM_EVAL_VERSION = "0.4.13"
"""The lm-evaluation-harness release the exported tasks are tested with (tests/test_lm_eval_export.py)."""
PATH_SETTINGS = ("data_root", "globalopinionqa_csv", "culturenli_tsv", "culturebank_dir")
"""Settings that name files or folders: recorded as absolute paths (lm-eval may run elsewhere)."""
LOWER_IS_BETTER = frozenset({"skew", "skew_cbcompat"})


class ExportError(ValueError):
    """An export that cannot be written as asked; the message says what to do."""


@dataclass(frozen=True)
class ExportedTask:
    """One lm-eval task: its name, the spec its YAML records, and the headline metrics it reports."""

    name: str
    spec: Mapping[str, Any]

    @property
    def metrics(self) -> list[str]:
        return list(self.spec["metrics"])


def lm_eval_name(task: str) -> str:
    return PREFIX + re.sub(r"[^A-Za-z0-9]+", "_", task)


def plan_export(benchmarks: Sequence[str] | None, data: str | None, limit: int | None, seed: int,
                settings: Mapping[str, str]) -> tuple[list[ExportedTask], dict[str, str]]:
    """The tasks to export and, for benchmarks not named explicitly, why each that could not be built was skipped.

    Every letter-scored benchmark by default (steering tasks included); one whose data is
    missing is skipped with its reason, unless it was named with ``--benchmark``.
    """
    named = list(dict.fromkeys(benchmarks or []))
    chosen = [registry.get(b) for b in named] or [b for b in registry.BENCHMARKS.values() if not b.generates]
    for bench in chosen:
        if bench.generates:
            raise ExportError(f"{bench.name} generates text; only letter-scored benchmarks can be exported")
    if data is not None and len(chosen) != 1:
        raise ExportError("--data names one benchmark's data: give exactly one --benchmark with it "
                          "(otherwise --set data_root=DIR or the benchmark's own path setting)")
    registry.check_settings(settings, chosen)
    exported: list[ExportedTask] = []
    skipped: dict[str, str] = {}
    for bench in chosen:
        own = _absolute_settings({k: v for k, v in settings.items() if k in bench.settings()}, bench)
        spec = {"benchmark": bench.name, "limit": limit, "seed": seed, "steer": bench.steer,
                "data": None if data is None else str(Path(data).expanduser().resolve()), "settings": own}
        try:
            tasks = bench.factory()(task_options(spec))
        except (FileNotFoundError, DataError) as exc:
            if bench.name in named:
                raise
            skipped[bench.name] = str(exc)
            continue
        exported += [_exported(task, spec) for task in tasks]
    if not exported:
        raise ExportError("nothing to export: " + "; ".join(f"{b}: {r}" for b, r in skipped.items()))
    return exported, skipped


def _absolute_settings(settings: dict[str, str], bench: registry.Benchmark) -> dict[str, str]:
    out = {k: (str(Path(v).expanduser().resolve()) if k in PATH_SETTINGS else v) for k, v in settings.items()}
    if "data_root" in bench.settings() and "data_root" not in out:
        out["data_root"] = str(data_root(settings).resolve())  # $AVA_DATA or ../shared/data, fixed now
    return out


def _exported(task: Task | GenerationTask, spec: Mapping[str, Any]) -> ExportedTask:
    from ava import __version__
    from ava.evals.rundir import dataset_hash

    if isinstance(task, GenerationTask):
        raise ExportError(f"{task.name} generates text; only letter-scored tasks can be exported")
    items = list(task.items())
    full = {**spec, "task": task.name, "task_version": task.version, "template_version": task.template_version,
            "dataset_hash": dataset_hash(items), "n_docs": len(items), "metrics": headline_keys(task),
            "ava_version": __version__}
    return ExportedTask(lm_eval_name(task.name), full)


def headline_keys(task: Task) -> list[str]:
    """The task's headline metric names, read from its metrics on a few uniformly scored units."""
    import math

    items = first_units(list(task.items()), 3)
    scores = {i.id: ScoredItem(i.id, tuple([-math.log(len(i.request.options))] * len(i.request.options)))
              for i in items}
    return list(task.metrics(task.score(items, scores)).headline)


# -- writing the task folder ----------------------------------------------------------------
class _Function(str):
    """A ``!function module.name`` reference in a task YAML (lm-eval imports it from the folder)."""


class _Dumper(yaml.SafeDumper):
    pass


_Dumper.add_representer(_Function, lambda dumper, value: dumper.represent_scalar("!function", str(value)))


def aggregation_name(metric: str) -> str:
    return "agg_" + re.sub(r"\W+", "_", metric)


def task_yaml(task: ExportedTask) -> str:
    """The lm-eval task config of one exported task."""
    config: dict[str, Any] = {
        "task": task.name,
        "tag": [TAG],
        "custom_dataset": _Function("utils.load_docs"),
        "dataset_kwargs": {SPEC_KEY: dict(task.spec)},
        "test_split": "test",
        "output_type": "multiple_choice",
        "doc_to_text": "context",
        "gen_prefix": "cue",
        "doc_to_choice": "choices",
        "doc_to_target": 0,
        "target_delimiter": "",
        "num_fewshot": 0,
        "process_results": _Function("utils.process_results"),
        "metric_list": [{"metric": m, "aggregation": _Function(f"utils.{aggregation_name(m)}"),
                         "higher_is_better": m not in LOWER_IS_BETTER} for m in task.metrics],
        "metadata": {"version": task.spec["task_version"], "ava_version": task.spec["ava_version"]},
    }
    head = (f"# {task.name}: ava task {task.spec['task']!r} ({task.spec['n_docs']} prompts), written by "
            f"`ava export lm-eval` (ava {task.spec['ava_version']}).\n"
            "# Re-export instead of editing: the spec below is checked against what ava builds when lm-eval runs.\n")
    return head + yaml.dump(config, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=120)


def utils_py(tasks: Sequence[ExportedTask]) -> str:
    """The folder's ``utils.py``: lm-eval's hooks, each a call into ava."""
    from ava import __version__

    metrics = sorted({m for t in tasks for m in t.metrics})
    lines = [
        f'"""lm-evaluation-harness hooks of ava\'s benchmarks, written by `ava export lm-eval` (ava {__version__}).',
        "",
        "Every number is ava's own: load_docs builds the prompts `ava eval` scores with ava's task factory,",
        "process_results combines each letter's two spellings (\"A\", \" A\") by logsumexp as ava's engine does,",
        "and each agg_* function calls the ava task's metrics (ava.evals.export.lm_eval_runtime). Re-export,",
        "do not edit.",
        '"""',
        "",
        "from ava.evals.export.lm_eval_runtime import aggregate, load_docs, process_results",
        "",
        "__all__ = [",
        *(f"    {name!r}," for name in ["load_docs", "process_results", *(aggregation_name(m) for m in metrics)]),
        "]",
    ]
    for metric in metrics:
        lines += ["", "", f"def {aggregation_name(metric)}(records):",
                  f'    """{metric}: the ava task\'s headline number over the scored documents."""',
                  f"    return aggregate(records, {metric!r})"]
    return "\n".join(lines) + "\n"


def readme(tasks: Sequence[ExportedTask], skipped: Mapping[str, str]) -> str:
    """How to run the folder with lm-eval, what each task is, and what was left out."""
    from ava import __version__

    rows = "\n".join(f"| `{t.name}` | {t.spec['benchmark']} / {t.spec['task']} | {t.spec['n_docs']} | "
                     f"{', '.join(t.metrics)} |" for t in tasks)
    left = "\n".join(f"* {b}: {r}" for b, r in skipped.items()) or "nothing"
    first = tasks[0].name
    return f"""# ava's benchmarks as lm-evaluation-harness tasks

Written by `ava export lm-eval` (ava {__version__}); tested with lm-eval {LM_EVAL_VERSION}. The Python
environment that runs `lm_eval` needs ava installed (utils.py imports it).

```bash
lm_eval --model hf --model_args pretrained=MODEL --include_path THIS_FOLDER --tasks {first}
lm_eval --model hf --model_args pretrained=MODEL --include_path THIS_FOLDER --tasks {TAG} --apply_chat_template
```

Without `--apply_chat_template` the model reads each prompt as plain text (`ava eval --framing plain`);
with it, the prompt up to the answer cue is the user turn and the cue opens the assistant turn
(`ava eval --framing chat`, the default for instruction-tuned models). Do not pass `--limit`:
the selection is ava's (`--limit` / `--seed` given at export), recorded in each YAML. Aggregate
metrics equal `ava eval`'s on the same model, framing and selection within 1e-4 on a 0..1 scale
(GlobalOpinionQA's and CultureNLI's numbers are x100: within 1e-2 there); the two harnesses batch
the same forward passes differently (smollm2 on CPU: at most 2e-6, ava's docs/evaluation.md).
`--include_path` takes one folder: to run several exports together, write them under one parent.

| lm-eval task | ava benchmark / task | prompts | metrics |
|---|---|---|---|
{rows}

Not exported: {left}
"""


def write_export(out: Path, tasks: Sequence[ExportedTask], skipped: Mapping[str, str], *,
                 options: Mapping[str, Any], restart: bool = False) -> list[Path]:
    """Write the folder under a run record bound to the command's ``options`` (benchmarks, limit,
    seed, data, settings): the same command rewrites it (with what ava builds now), other options
    are refused, ``restart`` clears it first."""
    from ava.io import atomic_write
    from ava.runs import Binding, Output, start_run

    output = Output(out, folder=True)
    binding = Binding(options=dict(options))
    owned = ["utils.py", "README.md", *sorted({p.name for p in out.glob(f"{PREFIX}*.yaml")} |
                                              {f"{t.name}.yaml" for t in tasks})]
    written = []
    with start_run(output, "lm-eval-export", binding, info={"tasks": [t.name for t in tasks],
                                                             "skipped": dict(skipped)},
                   restart=restart, owned=owned, flag="DIR"):
        files = {f"{t.name}.yaml": task_yaml(t) for t in tasks}
        files.update({"utils.py": utils_py(tasks), "README.md": readme(tasks, skipped)})
        for name, text in files.items():
            with atomic_write(out / name) as fh:
                fh.write(text)
            written.append(out / name)
    return written
