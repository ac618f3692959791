"""``ava export lm-eval``: the task folder, read by lm-evaluation-harness 0.4.13 itself.

Fast tests build the exported tasks with lm-eval's own TaskManager (no model): the contexts and
continuations lm-eval will score are ava's prompt strings and both spellings of every letter, and
the written ``utils.py`` hooks give the ava task's own metrics. The slow test runs ``lm_eval`` on
smollm2 (plain and chat) and compares every aggregate metric with ``ava eval``'s.
"""

from __future__ import annotations

import importlib.util
import json
import math

import pytest

from ava.evals.export import lm_eval as export
from ava.evals.export import lm_eval_runtime as runtime
from ava.evals.task import TaskOptions
from ava.evals.tasks import globalopinionqa as goqa
from ava.models.scorer import UniformScorer
from conftest import shared_path

pytest.importorskip("lm_eval", reason="lm-eval is a dev dependency: pip install -e .[dev]")


def exported(tmp_path, *benchmarks, limit=2, settings=None, data=None):
    """Export ``benchmarks`` (an empty data root unless settings say otherwise) into tmp_path/tasks."""
    settings = {"data_root": str(tmp_path / "no-data"), **(settings or {})}
    tasks, skipped = export.plan_export(list(benchmarks), data, limit, 0, settings)
    out = tmp_path / "tasks"
    export.write_export(out, tasks, skipped, options={"benchmarks": list(benchmarks), "limit": limit})
    return out, tasks


def lm_eval_tasks(folder, *names):
    """The tasks as lm-eval builds them from the folder (its own YAML loader and TaskManager)."""
    from lm_eval.tasks import TaskManager

    return TaskManager(include_path=str(folder), include_defaults=False).load(list(names))["tasks"]


def requests(task, chat_template=None):
    task.build_all_requests(limit=None, rank=0, world_size=1, apply_chat_template=chat_template is not None,
                            chat_template=chat_template)
    by_doc: dict[str, list[tuple[str, str]]] = {}
    for inst in task.instances:
        by_doc.setdefault(inst.doc["id"], []).append(inst.arguments)
    return by_doc


def load_utils(folder):
    spec = importlib.util.spec_from_file_location("exported_utils", folder / "utils.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_lm_eval_scores_ava_prompt_strings_and_both_spellings(tmp_path):
    folder, tasks = exported(tmp_path, "globalopinionqa", "opinionqa")
    (goqa_task,) = goqa.make_tasks(TaskOptions(limit=2, settings={"data_root": str(tmp_path / "no-data")}))
    built = lm_eval_tasks(folder, "ava_globalopinionqa", "ava_opinionqa_steer")
    by_doc = requests(built["ava_globalopinionqa"])
    items = goqa_task.items()
    assert list(by_doc) == [i.id for i in items]
    for item in items:
        expected = [(item.request.prompt, s) for letter in item.request.options for s in (letter, " " + letter)]
        assert by_doc[item.id] == expected
    steer = runtime.build(next(t for t in tasks if t.name == "ava_opinionqa_steer").spec)
    steer_docs = requests(built["ava_opinionqa_steer"])
    assert len(steer_docs) == len(steer.items()) == 2 * (1 + 66)  # two questions, unsteered + 22 groups x 3
    assert all(steer_docs[i.id][0][0] == i.request.prompt for i in steer.items())


def test_chat_rendering_puts_the_cue_at_the_start_of_the_assistant_turn(tmp_path):
    """With --apply_chat_template lm-eval renders (user: prompt up to the cue, assistant: the cue)."""
    folder, _ = exported(tmp_path, "globalopinionqa")
    seen = []

    def chat_template(history, add_generation_prompt=True):
        seen.append((history, add_generation_prompt))
        return "|".join(f"{m['role']}={m['content']}" for m in history)

    by_doc = requests(lm_eval_tasks(folder, "ava_globalopinionqa")["ava_globalopinionqa"], chat_template)
    (task,) = goqa.make_tasks(TaskOptions(limit=2, settings={"data_root": str(tmp_path / "no-data")}))
    for item in task.items():
        *body, cue = item.request.segments
        assert by_doc[item.id][0] == (f"user={''.join(body)}|assistant={cue}", "A")
    assert all(not add for _, add in seen)  # continue the final (assistant) message


def test_utils_hooks_give_the_ava_task_metrics(tmp_path):
    folder, tasks = exported(tmp_path, "opinionqa", "globalopinionqa", settings={"formats": "qa"})
    utils = load_utils(folder)
    for exp in tasks:
        task = runtime.build(exp.spec)
        items = task.items()
        scored = {i.id: s for i, s in zip(items, UniformScorer().score([i.request for i in items]), strict=True)}
        docs = {d["id"]: d for d in runtime.documents(task, json.dumps(exp.spec, sort_keys=True))}
        records = []
        for item in items:
            # two spellings per letter, each half the letter's probability: logsumexp gives it back
            lls = [(lp - math.log(2), False) for lp in scored[item.id].logprobs for _ in range(2)]
            records.append(utils.process_results(docs[item.id], lls))
        expected = task.metrics(items, scored).headline
        assert set(records[0]) == set(expected) == set(exp.metrics)
        for metric in exp.metrics:
            value = getattr(utils, export.aggregation_name(metric))([r[metric] for r in records])
            want = expected[metric]
            assert (math.isnan(value) and want is None) or value == pytest.approx(want, abs=1e-12), metric


def test_data_paths_are_absolute_and_missing_data_is_skipped_with_its_reason(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "rel").mkdir()
    tasks, skipped = export.plan_export(None, None, 1, 0, {"data_root": "rel"})
    names = [t.name for t in tasks]
    assert names == ["ava_opinionqa", "ava_opinionqa_steer", "ava_opinionqa_xl", "ava_opinionqa_xl_steer",
                     "ava_globalopinionqa"]
    assert set(skipped) == {"culturenli", "culturebank"} and "no licence" in skipped["culturenli"]
    goqa_spec = tasks[-1].spec
    assert goqa_spec["settings"]["data_root"] == str(tmp_path / "rel")
    assert goqa_spec["n_docs"] == len(runtime.build(goqa_spec).items())


def test_culturenli_reads_the_path_given_at_export(tmp_path):
    tsv = shared_path("culturenli", "data.tsv")
    tasks, _ = export.plan_export(["culturenli"], str(tsv), 3, 0, {})
    (task,) = tasks
    assert task.spec["data"] == str(tsv.resolve()) and task.spec["n_docs"] == 6
    assert task.metrics == ["US", "US_auroc", "IN", "IN_auroc"]


def test_a_task_ava_now_builds_differently_is_refused(tmp_path):
    _, tasks = exported(tmp_path, "globalopinionqa")
    spec = {**tasks[0].spec, "dataset_hash": "0123456789abcdef"}
    with pytest.raises(runtime.ExportMismatch, match="re-run `ava export lm-eval`"):
        runtime.load_docs(ava=spec, pretrained="ignored", version="ignored")
