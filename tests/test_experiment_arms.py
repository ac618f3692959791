"""``ava experiment run`` with arms and seeds, end to end with ``tiny`` on a few real ads.

One module-scoped experiment (base reference, behaviour, shuffled-audience; seed 0; ~1 min on 2
cores) is checked from several sides, then grown: a rerun does nothing, an added reference arm
is the only thing evaluated, an added seed trains and scores exactly the new arm-seed runs. The
comparison's numbers are checked against the runs' own headline numbers.
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
    "name": "arms-test",
    "data": {"options": {"keywords": "frequency", "workers": 1, "shards": 1, "heldout_fraction": 0.4}},
    "model": {"name": "tiny"},
    "train": {"limit": 8, "sft": {"max_steps": 2, "per_device_train_batch_size": 4, "learning_rate": 0.05,
                                  "logging_steps": 1, "save_strategy": "no", "max_length": 96,
                                  "gradient_accumulation_steps": 1}},
    "eval": {"benchmarks": {"opinionqa": {"sample": 10}, "globalopinionqa": {"limit": 6}}},
    "compare": {"n_resamples": 100},
    "seeds": [0],
    "arms": [{"name": "base", "kind": "reference"}, {"name": "behaviour", "kind": "behaviour"},
             {"name": "shuffled", "kind": "shuffled-audience"}],
}


def run(recipe: Path, out: Path):
    return CliRunner().invoke(app, ["experiment", "run", str(recipe), "--out", str(out), "--no-progress"])


def write(path: Path, ads: list[str], **changes) -> Path:
    recipe = json.loads(json.dumps(RECIPE))
    recipe["data"]["ads"] = ads
    recipe.update(changes)
    path.write_text(yaml.safe_dump(recipe), encoding="utf-8")
    return path


def ran(output: str) -> list[str]:
    """The steps that did work (not cached) in a run's output."""
    return [line.split("]")[0][1:] for line in output.splitlines() if line.startswith("[") and "] done in" in line]


@pytest.fixture(scope="module")
def experiment(tmp_path_factory):
    us = shared_path("ads", "us-political-2020-sample.jsonl")
    eu = shared_path("ads", "eu-2019-legacy.jsonl")
    root = tmp_path_factory.mktemp("arms")
    lines = us.read_text(encoding="utf-8").splitlines()
    sample = root / "us-60.jsonl"
    sample.write_text("\n".join(random.Random(0).sample(lines, 60)) + "\n", encoding="utf-8")
    ads = [str(sample), str(eu)]
    result = run(write(root / "recipe.yaml", ads), root / "out")
    assert result.exit_code == 0, result.output
    return root, ads, root / "out", result.output


def test_every_arm_has_its_runs(experiment):
    from ava.runs import is_complete

    _, _, out, output = experiment
    assert ran(output) == ["build", "arms/base/eval", "arms/behaviour-s0/train", "arms/behaviour-s0/eval",
                           "arms/shuffled-s0/data", "arms/shuffled-s0/train", "arms/shuffled-s0/eval", "compare"]
    for folder, kind in (("arms/base/eval", "eval"), ("arms/behaviour-s0/train", "experiment-train"),
                         ("arms/shuffled-s0/data", "instructions"), ("arms/shuffled-s0/train", "experiment-train"),
                         ("compare", "experiment-compare")):
        assert is_complete(out / folder, kind), folder
    assert not (out / "eval-base").exists() and not (out / "train").exists()
    assert "Traceback" not in output


def test_same_budget_stated_and_equal(experiment):
    _, _, out, _ = experiment
    comparison = json.loads((out / "compare/comparison.json").read_text())
    runs = {a["name"]: a.get("runs") for a in comparison["arms"]}
    assert runs["base"] is None
    b, s = runs["behaviour"]["0"], runs["shuffled"]["0"]
    assert b["optimizer_steps"] == s["optimizer_steps"] == 2 and b["n_samples"] == s["n_samples"] == 8
    assert b["tokens_seen"] > 0 and s["tokens_seen"] > 0
    # the same pairs: the shuffled arm read the same texts (its token count differs only by audience words)
    assert abs(b["tokens_seen"] - s["tokens_seen"]) <= 0.1 * b["tokens_seen"]


def test_comparison_numbers_are_the_runs_own(experiment):
    _, _, out, _ = experiment
    comparison = json.loads((out / "compare/comparison.json").read_text())
    heads = {name: json.loads((out / f"arms/{name}/eval/results.json").read_text())["tasks"]
             for name in ("base", "behaviour-s0", "shuffled-s0")}
    rows = {(r["task"], r["metric"], r["arm"], r["against"]): r for r in comparison["metrics"]}
    assert {(a, b) for _, _, a, b in rows} == {("behaviour", "base"), ("shuffled", "base"), ("behaviour", "shuffled")}
    for (task, metric, arm, against), r in rows.items():
        folder = {"base": "base", "behaviour": "behaviour-s0", "shuffled": "shuffled-s0"}
        assert r["arm_value"] == pytest.approx(heads[folder[arm]][task]["headline"][metric], abs=1e-6)
        assert r["against_value"] == pytest.approx(heads[folder[against]][task]["headline"][metric], abs=1e-6)
        assert r["seed_deltas"] == [pytest.approx(r["delta"], abs=1e-6)]  # one seed: its change is the mean
        assert r["ci_low"] is None or r["ci_low"] <= r["delta"] <= r["ci_high"]
    groups = [g for g in comparison["groups"] if g["task"] == "opinionqa" and g["arm"] == "behaviour"]
    assert groups and all("direction_unadjusted" in g and g["correction"] == "holm" for g in groups)


def test_rerun_does_nothing(experiment):
    root, ads, out, _ = experiment
    result = run(write(root / "recipe.yaml", ads), out)
    assert result.exit_code == 0, result.output
    assert ran(result.output) == [] and "every step is cached" in result.output


def test_added_arm_and_seed_run_only_their_own_steps(experiment):
    root, ads, out, _ = experiment
    arms = [*RECIPE["arms"], {"name": "uniform", "kind": "reference", "model": "uniform"},
            {"name": "survey", "kind": "survey"}, {"name": "mixed", "kind": "mixed", "ratio": 0.5}]
    result = run(write(root / "more-arms.yaml", ads, arms=arms), out)
    assert result.exit_code == 0, result.output
    assert ran(result.output) == ["arms/uniform/eval", "arms/survey-s0/train", "arms/survey-s0/eval",
                                  "arms/mixed-s0/train", "arms/mixed-s0/eval", "compare"]
    comparison = json.loads((out / "compare/comparison.json").read_text())
    runs = {a["name"]: (a.get("runs") or {}).get("0") for a in comparison["arms"]}
    assert {runs[a]["optimizer_steps"] for a in ("behaviour", "shuffled", "survey", "mixed")} == {2}  # one budget
    assert runs["survey"]["survey_steps"] == 2 and runs["mixed"]["survey_steps"] == 1  # ratio 0.5 of the steps
    # train.limit examples drawn; those longer than max_length are left out (and counted on the card)
    assert 0 < runs["survey"]["survey_examples"] <= 8 and runs["survey"]["tokens_seen"] > 0
    # the pairs each run read, stated: a mixed run's sit under its card's data.behaviour (was 0)
    assert runs["mixed"]["n_samples"] == runs["behaviour"]["n_samples"] == 8 and runs["survey"]["n_samples"] == 0
    (mixed_line,) = [line for line in result.output.splitlines() if line.startswith("mixed seed 0:")]
    assert "2 optimiser steps (1 on behaviour, 1 on surveys)" in mixed_line and ", 8 instruction pairs, " in mixed_line
    assert {(r["arm"], r["against"]) for r in comparison["metrics"]} >= {("survey", "base"), ("mixed", "base"),
                                                                        ("behaviour", "survey")}
    result = run(write(root / "more-seeds.yaml", ads, arms=arms, seeds=[0, 1]), out)
    assert result.exit_code == 0, result.output
    assert ran(result.output) == ["arms/behaviour-s1/train", "arms/behaviour-s1/eval", "arms/shuffled-s1/data",
                                  "arms/shuffled-s1/train", "arms/shuffled-s1/eval", "arms/survey-s1/train",
                                  "arms/survey-s1/eval", "arms/mixed-s1/train", "arms/mixed-s1/eval", "compare"]
    comparison = json.loads((out / "compare/comparison.json").read_text())
    assert comparison["seeds"] == [0, 1]
    rep = next(r for r in comparison["metrics"] if (r["task"], r["metric"], r["arm"], r["against"])
               == ("opinionqa", "representativeness", "behaviour", "base"))
    assert len(rep["seed_deltas"]) == 2
    assert rep["delta"] == pytest.approx(sum(rep["seed_deltas"]) / 2, abs=2e-6)  # the mean over seeds
    assert rep["seed_min"] == min(rep["seed_deltas"]) and rep["seed_max"] == max(rep["seed_deltas"])
    if rep["verdict"] in ("better", "worse"):  # a verdict needs the interval and every seed
        assert all((d > 0) == (rep["delta"] > 0) for d in rep["seed_deltas"])


def test_report_has_the_arms_section(experiment, tmp_path):
    _, _, out, _ = experiment
    result = CliRunner().invoke(app, ["report", str(out), "--out", str(tmp_path / "r.html")])
    assert result.exit_code == 0, result.output
    page = (tmp_path / "r.html").read_text()
    assert "Experiment arms-test: arms vs base" in page and "Budget as trained" in page
    assert "behaviour vs shuffled" in page


def test_seed_verdict_needs_every_seed():
    from ava.experiments.arms_compare import SEEDS_DISAGREE, _seed_check

    agree = _seed_check({"delta": 0.02, "verdict": "better"}, [0.01, 0.03])
    assert agree["verdict"] == "better" and agree["seed_min"] == 0.01 and agree["seed_max"] == 0.03
    split = _seed_check({"delta": 0.02, "verdict": "better"}, [0.05, -0.01])
    assert split["verdict"] == SEEDS_DISAGREE and split["verdict_interval"] == "better"
    assert _seed_check({"delta": 0.0, "verdict": "no clear change"}, [0.05, -0.01])["verdict"] == "no clear change"
    group = _seed_check({"delta": -0.01, "verdict": "worse", "direction": "away from people"}, [-0.02, 0.001])
    assert group["direction"] == group["verdict"] == SEEDS_DISAGREE
    assert group["direction_interval"] == "away from people"


def test_recipe_without_arms_is_todays_experiment():
    from ava.experiments.recipe import load_recipe

    root = Path(__file__).resolve().parents[1] / "recipes"
    small = load_recipe(root / "cpu-small.yaml", available=False)
    assert not small.uses_arms and small["arms"] is None and small["seeds"] is None


def test_arms_report_in_headless_chromium(experiment, tmp_path):
    """The page as a browser renders it: the arms table is there and every image decodes."""
    import re

    from test_report import parse, rendered_dom

    _, _, out, _ = experiment
    page = tmp_path / "r.html"
    assert CliRunner().invoke(app, ["report", str(out), "--out", str(page)]).exit_code == 0
    dom = rendered_dom(page)
    doc = parse(dom)
    assert "Experiment arms-test: arms vs base" in dom
    arms = doc.tables["arms"]
    assert arms[0][:3] == ["task", "metric", "arm vs"]
    assert {r[2] for r in arms[1:]} >= {"behaviour vs base", "shuffled vs base", "behaviour vs shuffled"}
    budget = doc.tables["arms-budget"][1:]
    assert {r[0] for r in budget} >= {"behaviour", "shuffled"} and {r[3] for r in budget} == {"2"}  # one budget
    found = re.fullmatch(r"(\d+) of (\d+) images rendered", doc.texts.get("render-check", "").strip())
    assert found and found[1] == found[2] and int(found[1]) >= 1


def test_shipped_arms_recipes_validate():
    from ava.experiments.arms import arms_of, budget
    from ava.experiments.recipe import load_recipe
    from ava.experiments.survey_arm import check_survey_arms

    root = Path(__file__).resolve().parents[1] / "recipes"
    for name, model in (("cpu-arms.yaml", "smollm2"), ("paper-arms.yaml", "meta-llama/Llama-2-7b-chat-hf")):
        recipe = load_recipe(root / name, available=False)  # as documents: the data may not be on this machine
        assert recipe.uses_arms and recipe["model"]["name"] == model
        arms = arms_of(recipe.raw)
        assert [a.kind for a in arms] == ["reference", "behaviour", "shuffled-audience", "survey", "mixed"]
        trained = [a for a in arms if a.trained]
        assert len({json.dumps(budget(recipe.raw, a), sort_keys=True) for a in trained}) == 1  # one budget
        assert len(recipe["seeds"]) >= 2 and not recipe["allow_unequal_budget"]
        check_survey_arms(recipe)  # the survey arms have disjoint waves to train on (bundled Pew data)
    paper = load_recipe(root / "paper-arms.yaml", available=False)
    assert paper["seeds"] == [0, 1, 2] and paper["train"]["sft"]["num_train_epochs"] == 1
