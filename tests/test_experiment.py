"""``ava experiment run`` end to end with ``tiny`` on a few real ads (../shared/data/ads).

One module-scoped run (~35 s on 2 cores) is checked from several sides: every artefact is there
and finished, the tuned model scores differently from the base, the comparison's point
estimates are the evaluation's own headline numbers (recomputed from the per-item files, so the
paired bootstrap is over exactly what was reported), a rerun does nothing, and an added benchmark
is the only thing scored.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from ava.cli import app
from conftest import shared_path

RECIPE = {
    "version": 1,
    "name": "tiny-test",
    "seed": 0,
    "data": {"options": {"keywords": "frequency", "workers": 1, "shards": 1, "heldout_fraction": 0.4}},
    "model": {"name": "tiny"},
    "train": {"limit": 16, "sft": {"max_steps": 4, "per_device_train_batch_size": 4, "learning_rate": 0.05,
                                   "logging_steps": 1, "save_strategy": "no", "max_length": 128,
                                   "gradient_accumulation_steps": 1}},
    "eval": {"benchmarks": {"opinionqa": {"sample": 12}, "globalopinionqa": {"limit": 8},
                            "ava-tasks": {"limit": 2, "families": ["TAP"]}}},
    "compare": {"n_resamples": 200},
}


def run(recipe: Path, out: Path):
    return CliRunner().invoke(app, ["experiment", "run", str(recipe), "--out", str(out), "--no-progress"])


def write_recipe(path: Path, ads: list[str], **changes) -> Path:
    recipe = json.loads(json.dumps(RECIPE))
    recipe["data"]["ads"] = ads
    for dotted, value in changes.items():
        *parents, last = dotted.split("__")
        node = recipe
        for key in parents:
            node = node[key]
        node[last] = value
    path.write_text(yaml.safe_dump(recipe), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def experiment(tmp_path_factory):
    """A seeded sample of 60 US ads plus the 25 EU 2019 ads: both splits get advertisers."""
    us = shared_path("ads", "us-political-2020-sample.jsonl")
    eu = shared_path("ads", "eu-2019-legacy.jsonl")
    root = tmp_path_factory.mktemp("experiment")
    lines = us.read_text(encoding="utf-8").splitlines()
    sample = root / "us-60.jsonl"
    sample.write_text("\n".join(random.Random(0).sample(lines, 60)) + "\n", encoding="utf-8")
    recipe = write_recipe(root / "recipe.yaml", [str(sample), str(eu)])
    result = run(recipe, root / "out")
    assert result.exit_code == 0, result.output
    return root, recipe, root / "out", result.output


def test_every_artefact_is_there_and_finished(experiment):
    from ava.runs import is_complete

    _, _, out, output = experiment
    for folder, kind in (("", "experiment"), ("build", "instructions"), ("eval-base", "eval"),
                         ("train", "experiment-train"), ("eval-tuned", "eval"), ("compare", "experiment-compare")):
        assert is_complete(out / folder, kind), folder
    for rel in ("build/manifest.json", "eval-base/results.json", "train/model/adapter/adapter_config.json",
                "train/model/training_card.json", "train/loss.json", "eval-tuned/results.json",
                "compare/comparison.json", "compare/comparison.png", "steps.json"):
        assert (out / rel).is_file(), rel
    losses = json.loads((out / "train/loss.json").read_text())["losses"]
    assert [x["step"] for x in losses] == [1, 2, 3, 4]
    assert "Traceback" not in output


def test_tuned_model_scores_differently(experiment):
    _, _, out, _ = experiment
    base = (out / "eval-base/items/opinionqa.jsonl").read_text().splitlines()
    tuned = (out / "eval-tuned/items/opinionqa.jsonl").read_text().splitlines()
    assert len(base) == len(tuned) == 12
    assert [json.loads(b)["id"] for b in base] == [json.loads(t)["id"] for t in tuned]
    assert any(json.loads(b)["logprobs"] != json.loads(t)["logprobs"] for b, t in zip(base, tuned, strict=True))
    base_results = json.loads((out / "eval-base/results.json").read_text())
    tuned_results = json.loads((out / "eval-tuned/results.json").read_text())
    assert base_results["run"]["identity"] != tuned_results["run"]["identity"]


def test_comparison_point_estimates_are_the_evaluations_headlines(experiment):
    _, _, out, _ = experiment
    comparison = json.loads((out / "compare/comparison.json").read_text())
    results = {label: json.loads((out / f"eval-{label}/results.json").read_text())["tasks"]
               for label in ("base", "tuned")}
    rows = {(r["task"], r["metric"]): r for r in comparison["metrics"]}
    assert any(task == "ava-tasks" for task, _ in rows)
    for label in ("base", "tuned"):
        for (task, metric), row in rows.items():  # every row's point estimate is the task's own number
            assert row[label] == pytest.approx(results[label][task]["headline"][metric], abs=1e-6), (task, metric)
    rep = rows[("opinionqa", "representativeness")]
    assert rep["delta"] == pytest.approx(rep["tuned"] - rep["base"], abs=2e-6)
    assert rep["ci_low"] <= rep["delta"] <= rep["ci_high"]
    assert rep["uniform"] == results["base"]["opinionqa"]["headline"]["uniform_representativeness"]
    groups = comparison["groups"]["opinionqa"]
    directions = ("toward people", "away from people", "no clear change", "too few questions")
    assert groups and all(g["direction"] in directions for g in groups)
    assert set(comparison["letter_mass"]) == {"opinionqa", "globalopinionqa"}


def test_rerun_does_nothing(experiment):
    _, recipe, out, _ = experiment
    stamps = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file() and p.name != "run.json"}
    result = run(recipe, out)
    assert result.exit_code == 0, result.output
    assert "every step is cached (build, eval-base, train, eval-tuned, compare): nothing to do" in result.output
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps


def test_added_benchmark_is_the_only_thing_scored(experiment):
    root, recipe, out, _ = experiment
    benchmarks = {**RECIPE["eval"]["benchmarks"], "opinionqa-xl": {"sample": 3}}
    ads = yaml.safe_load(recipe.read_text())["data"]["ads"]
    wider = write_recipe(root / "wider.yaml", ads, eval__benchmarks=benchmarks)
    result = run(wider, out)
    assert result.exit_code == 0, result.output
    assert "[build] cached" in result.output and "[train] cached" in result.output
    for label in ("base", "tuned"):
        tasks = json.loads((out / f"eval-{label}/results.json").read_text())["tasks"]
        assert {t: tasks[t]["task_info"]["n_scored"] for t in ("opinionqa", "globalopinionqa", "ava-tasks")} == {
            "opinionqa": 0, "globalopinionqa": 0, "ava-tasks": 0}
        assert tasks["opinionqa-xl"]["task_info"]["n_scored"] > 0
    comparison = json.loads((out / "compare/comparison.json").read_text())
    assert any(r["task"] == "opinionqa-xl" and r["ci_low"] is not None for r in comparison["metrics"])


def test_report_has_the_experiment_section(experiment, tmp_path):
    _, _, out, _ = experiment
    result = CliRunner().invoke(app, ["report", str(out), "--out", str(tmp_path / "r.html")])
    assert result.exit_code == 0, result.output
    page = (tmp_path / "r.html").read_text()
    assert "Experiment tiny-test: base vs tuned" in page and "eval-base" in page and "eval-tuned" in page


def test_shipped_recipes_validate():
    from ava.experiments.recipe import load_recipe

    root = Path(__file__).resolve().parents[1] / "recipes"
    # as documents: paper.yaml's weights and ShareGPT file, and cpu-small's ads, are not on every machine
    paper = load_recipe(root / "paper.yaml", available=False)
    assert paper["model"]["name"] == "meta-llama/Llama-2-7b-chat-hf"
    assert paper["train"]["limit"] is None and paper["train"]["sft"]["num_train_epochs"] == 1
    assert paper["train"]["mix"] and set(paper.benchmarks) >= {"opinionqa-xl", "opinionqa", "globalopinionqa",
                                                               "culturebank", "culturenli"}
    small = load_recipe(root / "cpu-small.yaml", available=False)
    assert small["model"]["name"] == "smollm2" and small["train"]["method"] == "lora"
