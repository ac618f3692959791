"""Bad-input and fault catalogue of ``ava experiment run``.

One test per case: exit code (2: refused before anything runs, 1: training stopped), exactly one
``error:`` line naming the recipe file and the key's dotted path (or what differs), no traceback.
Refusals that need no model are checked to come before one loads.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from catalogue import assert_error, forbid_model_loading, invoke
from test_training import write_instruction_fixture

GOOD = {
    "version": 1,
    "name": "catalogue",
    "data": {"build": "build"},
    "model": {"name": "tiny"},
    "train": {"sft": {"max_steps": 2, "per_device_train_batch_size": 2, "save_strategy": "no"}},
    "eval": {"benchmarks": {"globalopinionqa": {"limit": 2}}},
    "compare": {"n_resamples": 50},
}


@pytest.fixture(autouse=True)
def datasets_cache(tmp_path, monkeypatch):
    import datasets

    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", str(tmp_path / "hf-datasets"))


def recipe(tmp_path: Path, obj=None, name: str = "recipe.yaml", text: str | None = None, **sections) -> Path:
    body = json.loads(json.dumps(GOOD if obj is None else obj))
    for key, value in sections.items():
        body[key] = value
    path = tmp_path / name
    path.write_text(text if text is not None else yaml.safe_dump(body), encoding="utf-8")
    return path


def run(path: Path, out: Path, *args: str):
    return invoke("experiment", "run", str(path), "--out", str(out), "--no-progress", *args)


def test_unknown_key_names_its_dotted_path(tmp_path, monkeypatch):
    forbid_model_loading(monkeypatch)
    path = recipe(tmp_path, train={"lmit": 4})
    assert_error(run(path, tmp_path / "o"), "recipe.yaml", "unknown key train.lmit", "did you mean limit")
    assert not (tmp_path / "o").exists()


def test_unknown_top_level_key(tmp_path, monkeypatch):
    forbid_model_loading(monkeypatch)
    path = recipe(tmp_path, evals={})
    assert_error(run(path, tmp_path / "o"), "recipe.yaml", "unknown key evals", "did you mean eval")


def test_wrong_type_names_key_and_type(tmp_path, monkeypatch):
    forbid_model_loading(monkeypatch)
    path = recipe(tmp_path, train={"limit": "many"})
    assert_error(run(path, tmp_path / "o"), "recipe.yaml", "train.limit: expected int or null, got text 'many'")


def test_wrong_type_in_a_benchmark_entry(tmp_path, monkeypatch):
    forbid_model_loading(monkeypatch)
    path = recipe(tmp_path, eval={"benchmarks": {"globalopinionqa": {"limit": 2.5}}})
    assert_error(run(path, tmp_path / "o"), "eval.benchmarks.globalopinionqa.limit: expected int or null")


def test_unknown_sft_field(tmp_path, monkeypatch):
    forbid_model_loading(monkeypatch)
    path = recipe(tmp_path, train={"sft": {"learning_rat": 0.1}})
    assert_error(run(path, tmp_path / "o"), "recipe.yaml", "train.sft.learning_rat", "not a trl.SFTConfig field")


def test_sft_value_of_the_wrong_type(tmp_path, monkeypatch):
    forbid_model_loading(monkeypatch)
    path = recipe(tmp_path, train={"sft": {"learning_rate": "fast"}})
    assert_error(run(path, tmp_path / "o"), "train.sft.learning_rate", "expected float")


def test_unknown_benchmark(tmp_path, monkeypatch):
    forbid_model_loading(monkeypatch)
    path = recipe(tmp_path, eval={"benchmarks": {"opinonqa": {}}})
    assert_error(run(path, tmp_path / "o"), "eval.benchmarks.opinonqa", "unknown benchmark", "did you mean opinionqa")


def test_not_yaml_names_the_line(tmp_path, monkeypatch):
    forbid_model_loading(monkeypatch)
    path = recipe(tmp_path, text="version: 1\nmodel: {name: tiny\n")
    assert_error(run(path, tmp_path / "o"), "recipe.yaml:", "not valid YAML")


def test_both_ads_and_build(tmp_path, monkeypatch):
    forbid_model_loading(monkeypatch)
    path = recipe(tmp_path, data={"ads": ["a.jsonl"], "build": "build"})
    assert_error(run(path, tmp_path / "o"), "give exactly one of data.ads", "data.build")


def test_unfinished_build(tmp_path, monkeypatch):
    forbid_model_loading(monkeypatch)
    (tmp_path / "build").mkdir()
    path = recipe(tmp_path)
    assert_error(run(path, tmp_path / "o"), "data.build", "not a finished instruction build")


def test_changed_recipe_is_refused_naming_what_changed(tmp_path, monkeypatch):
    """The experiment folder is bound to data, model and training: a change there is refused."""
    from ava.experiments.recipe import load_recipe
    from ava.runs import Binding, Output, start_run

    forbid_model_loading(monkeypatch)
    write_instruction_fixture(tmp_path / "build", n_train=4)
    started = load_recipe(recipe(tmp_path))
    with start_run(Output(tmp_path / "o", folder=True), "experiment", Binding(options=started.bound())):
        pass  # a started experiment (its first step would follow)
    changed = recipe(tmp_path, name="changed.yaml",
                     train={"sft": {"max_steps": 8, "per_device_train_batch_size": 2, "save_strategy": "no"}})
    line = assert_error(run(changed, tmp_path / "o"), "option train.sft.max_steps: 2 -> 8", "--restart")
    assert "was produced with other settings" in line
    assert json.loads((tmp_path / "o" / "run.json").read_text())["status"] == "complete"


def test_nan_loss_stops_before_any_after_evaluation(tmp_path):
    write_instruction_fixture(tmp_path / "build", n_train=4)
    sft = {"max_steps": 4, "per_device_train_batch_size": 4, "learning_rate": 1e30, "optim": "sgd",
           "logging_steps": 1, "save_strategy": "no", "warmup_steps": 0}
    path = recipe(tmp_path, train={"sft": sft})
    out = tmp_path / "o"
    line = assert_error(run(path, out), "train step: training stopped: loss is nan at step 2",
                        "the tuned model is not evaluated or compared", code=1)
    assert "nothing was saved as a finished model" in line
    assert (out / "eval-base" / "results.json").is_file()  # the "before" evaluation ran
    assert not (out / "eval-tuned").exists() and not (out / "compare").exists()
    assert json.loads((out / "train" / "run.json").read_text())["status"] == "failed"
    assert json.loads((out / "run.json").read_text())["status"] == "failed"


# -- issue 26: every value checked before anything runs (no model loads, nothing is written) --------


def refused_before_anything(tmp_path: Path, monkeypatch, *needles: str, **sections) -> str:
    forbid_model_loading(monkeypatch)
    write_instruction_fixture(tmp_path / "build", n_train=4)
    path = recipe(tmp_path, **sections)
    line = assert_error(run(path, tmp_path / "o"), "recipe.yaml", *needles)
    assert "--" not in line.split("recipe.yaml", 1)[1], line  # names the recipe's key, never a CLI flag
    assert not (tmp_path / "o").exists()
    return line


def test_negative_train_limit(tmp_path, monkeypatch):
    """Before: failed after the build and the base evaluation, naming --limit."""
    refused_before_anything(tmp_path, monkeypatch, "train.limit: -5 is not a number of samples",
                            train={**GOOD["train"], "limit": -5})


@pytest.mark.parametrize("key, value", [("sample", 0), ("limit", -1)])
def test_benchmark_sample_or_limit_below_one(tmp_path, monkeypatch, key, value):
    """Before: ``sample: 0`` ended in ValueError: zero-size array."""
    refused_before_anything(tmp_path, monkeypatch, f"eval.benchmarks.opinionqa.{key}: {value} is not a number",
                            eval={"benchmarks": {"opinionqa": {key: value}}})


@pytest.mark.parametrize("key, value", [("heldout_fraction", 1.5), ("heldout_fraction", -0.1),
                                        ("temporal_fraction", 1), ("temporal_fraction", -0.5)])
def test_split_fraction_outside_zero_to_one(tmp_path, monkeypatch, key, value):
    """Before: ``heldout_fraction: 1.5`` ended, after the build, in "the train split has no samples"."""
    refused_before_anything(tmp_path, monkeypatch, f"data.options.{key}: {value} is not a share in [0, 1)",
                            data={"ads": ["ads.jsonl"], "options": {key: value}})


def test_cutoff_that_is_not_a_date(tmp_path, monkeypatch):
    """Before: accepted, and the temporal split came out empty."""
    (tmp_path / "ads.jsonl").write_text("{}\n", encoding="utf-8")
    refused_before_anything(tmp_path, monkeypatch, "data.options.cutoff: 'last spring' is not a date YYYY-MM-DD",
                            data={"ads": ["ads.jsonl"], "options": {"cutoff": "last spring"}})


def test_build_option_below_one(tmp_path, monkeypatch):
    (tmp_path / "ads.jsonl").write_text("{}\n", encoding="utf-8")
    refused_before_anything(tmp_path, monkeypatch, "data.options.block_size: 0 must be at least 1",
                            data={"ads": ["ads.jsonl"], "options": {"block_size": 0}})


def test_the_same_ad_file_twice(tmp_path, monkeypatch):
    (tmp_path / "ads.jsonl").write_text("{}\n", encoding="utf-8")
    refused_before_anything(tmp_path, monkeypatch, "data.ads:", "ads.jsonl is listed twice",
                            data={"ads": ["ads.jsonl", "./ads.jsonl"]})


def test_unknown_ava_tasks_family(tmp_path, monkeypatch):
    """Before: accepted, and the family evaluated nothing."""
    refused_before_anything(tmp_path, monkeypatch, "eval.benchmarks.ava-tasks.families: unknown task family 'TAPX'",
                            "known: TAG, TAP, TC, TS",
                            eval={"benchmarks": {"ava-tasks": {"families": ["TAP", "TAPX"], "limit": 1}}})


@pytest.mark.parametrize("key", ["config", "mix"])
def test_missing_train_file(tmp_path, monkeypatch, key):
    """Before: found only after the build and the base evaluation."""
    refused_before_anything(tmp_path, monkeypatch, f"train.{key}:", "nope.yaml does not exist",
                            train={**GOOD["train"], key: "nope.yaml"})


def test_missing_ad_file(tmp_path, monkeypatch):
    refused_before_anything(tmp_path, monkeypatch, "data.ads[0]:", "gone.jsonl does not exist",
                            data={"ads": ["gone.jsonl"]})


def test_missing_benchmark_data(tmp_path, monkeypatch):
    refused_before_anything(tmp_path, monkeypatch, "eval.benchmarks.globalopinionqa.data:", "no-goqa does not exist",
                            eval={"benchmarks": {"globalopinionqa": {"limit": 2, "data": "no-goqa"}}})


def test_unknown_model_name(tmp_path, monkeypatch):
    refused_before_anything(tmp_path, monkeypatch, "model.name: unknown model 'tinny'", "built-in name",
                            model={"name": "tinny"})


def test_hub_id_not_cached_while_offline(tmp_path, monkeypatch):
    """A hub id this offline machine has never downloaded: refused now, with what to do."""
    import huggingface_hub

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    refused_before_anything(tmp_path, monkeypatch, "model.name: nobody/no-such-model is a Hugging Face id that is "
                            "not in the local cache", "hf download nobody/no-such-model",
                            model={"name": "nobody/no-such-model"})


def test_model_folder_without_config(tmp_path, monkeypatch):
    (tmp_path / "weights").mkdir()
    line = refused_before_anything(tmp_path, monkeypatch, "model.name:", "has no config.json",
                                   model={"name": str(tmp_path / "weights")})
    assert "point model.name at" in line


@pytest.mark.parametrize("n", [0, 39])
def test_too_few_resamples_for_the_interval(tmp_path, monkeypatch, n):
    """Before: ``n_resamples: 0`` printed a 95% CI over a column of dashes and read "no clear change"."""
    refused_before_anything(tmp_path, monkeypatch, f"compare.n_resamples: {n} resamples cannot give a 95% interval",
                            "use at least 40", compare={"n_resamples": n})


@pytest.mark.parametrize("key", ["seed", "data.options.seed", "eval.seed", "compare.seed"])
def test_negative_seed(tmp_path, monkeypatch, key):
    body = json.loads(json.dumps(GOOD))
    *parents, last = key.split(".")
    node = body
    for part in parents:
        node = node.setdefault(part, {})
    node[last] = -1
    sections = {k: v for k, v in body.items() if k != "name"}  # ``name`` is recipe()'s file name
    refused_before_anything(tmp_path, monkeypatch, f"{key}: -1 is negative", **sections)


# -- issue 26: outputs apart from inputs; bound to contents; speed-only options ------------------


@pytest.mark.parametrize("where", ["ads/exp", "ads", "."])
def test_out_inside_equal_to_or_holding_the_ads(tmp_path, monkeypatch, where):
    forbid_model_loading(monkeypatch)
    (tmp_path / "ads").mkdir()
    (tmp_path / "ads" / "a.jsonl").write_text("{}\n", encoding="utf-8")
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    path = recipe(tmp_path, data={"ads": ["ads"]})
    before.append(path.relative_to(tmp_path))
    line = assert_error(run(path, tmp_path / where), "data.ads of", "recipe.yaml", "choose a --out outside")
    assert {"ads/exp": "is inside", "ads": "is the same path as", ".": "holds"}[where] in line
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == sorted(before)  # nothing written


def _started_on_ads(tmp_path: Path, **options) -> tuple[Path, Path]:
    """An experiment folder started (bound) on one ad file, as its first step would leave it."""
    from ava.experiments.recipe import load_recipe
    from ava.experiments.steps import ads_contents, contents_digest
    from ava.runs import Binding, Output, start_run

    (tmp_path / "ads.jsonl").write_text('{"id": "1"}\n', encoding="utf-8")
    path = recipe(tmp_path, data={"ads": ["ads.jsonl"], "options": options})
    started = load_recipe(path)
    binding = Binding(inputs=contents_digest(ads_contents(started["data"]["ads"])), options=started.bound())
    with start_run(Output(tmp_path / "o", folder=True), "experiment", binding,
                   info={"ads": ads_contents(started["data"]["ads"])}):
        pass
    return path, tmp_path / "o"


def test_ad_file_edited_in_place_is_refused(tmp_path, monkeypatch):
    """Before: the experiment bound the ad paths only, so every step was reported cached."""
    forbid_model_loading(monkeypatch)
    path, out = _started_on_ads(tmp_path)
    (tmp_path / "ads.jsonl").write_text('{"id": "2"}\n', encoding="utf-8")
    assert_error(run(path, out), "o was built from other ad file contents (ads.jsonl changed)", "--restart")
    assert json.loads((out / "run.json").read_text())["status"] == "complete"


def test_ad_file_edited_in_place_is_refused_without_per_file_record(tmp_path, monkeypatch):
    """A folder whose record holds no per-file hashes is still refused, by the binding's joint hash."""
    forbid_model_loading(monkeypatch)
    path, out = _started_on_ads(tmp_path)
    record = json.loads((out / "run.json").read_text())
    record["info"].pop("ads")
    (out / "run.json").write_text(json.dumps(record))
    (tmp_path / "ads.jsonl").write_text('{"id": "2"}\n', encoding="utf-8")
    line = assert_error(run(path, out), "was produced with other settings", "inputs: hash", "--restart")
    assert "option" not in line  # the contents changed, not a recipe value


def test_workers_is_speed_only(tmp_path, monkeypatch):
    """Before: ``data.options.workers`` changed on rerun was refused as a binding change."""
    from ava.experiments.recipe import load_recipe
    from ava.runs import Binding

    _started_on_ads(tmp_path, workers=1)
    again = load_recipe(recipe(tmp_path, name="more.yaml", data={"ads": ["ads.jsonl"], "options": {"workers": 4}}))
    assert Binding(options=again.bound()).differences(Binding(options=load_recipe(tmp_path / "recipe.yaml")
                                                                    .bound())) == []
    embed = load_recipe(recipe(tmp_path, name="int8.yaml",
                               data={"ads": ["ads.jsonl"], "options": {"embed_backend": "onnx-int8"}}))
    assert embed.bound() != again.bound()  # onnx-int8 moves the mined pairs: not speed-only


def test_unknown_group_correction_is_refused(tmp_path):
    """``compare.correction`` must name a correction ava knows, before anything runs."""
    from ava.experiments.recipe import RecipeError, load_recipe

    recipe = tmp_path / "r.yaml"
    recipe.write_text("data: {build: b}\neval: {benchmarks: {opinionqa: {}}}\ncompare: {correction: bonferonni}\n",
                      encoding="utf-8")
    with pytest.raises(RecipeError, match=r"compare\.correction: 'bonferonni' is not one of holm, bh, none"):
        load_recipe(recipe, available=False)


# -- issue 26: a given data.build is bound by its contents, as data.ads is ------------------------


def _started_on_build(tmp_path: Path) -> tuple[Path, Path]:
    """An experiment folder started (bound) on a finished build, as its first step would leave it."""
    from ava.experiments.recipe import load_recipe
    from ava.experiments.steps import build_contents, contents_digest
    from ava.runs import Binding, Output, start_run

    write_instruction_fixture(tmp_path / "build", n_train=4)
    path = recipe(tmp_path)
    started = load_recipe(path)
    files = build_contents(str(tmp_path / "build"))
    binding = Binding(inputs=contents_digest(files), options=started.bound())
    with start_run(Output(tmp_path / "o", folder=True), "experiment", binding, info={"ads": [], "build": files}):
        pass
    return path, tmp_path / "o"


def test_build_rebuilt_in_place_is_refused(tmp_path, monkeypatch):
    """Before: data.build was bound by its path only (``"inputs": ""``): a rebuilt build was used
    under the old experiment, its steps reported cached."""
    forbid_model_loading(monkeypatch)
    path, out = _started_on_build(tmp_path)
    write_instruction_fixture(tmp_path / "build", n_train=6)  # rebuilt: other rows, same folder
    line = assert_error(run(path, out), "o was built from other data.build contents", "build (", "changed",
                        "--restart")
    assert "data/train-" in line
    assert json.loads((out / "run.json").read_text())["status"] == "complete"


def test_build_part_edited_in_place_is_refused(tmp_path, monkeypatch):
    """A Parquet part edited in place (the manifest unchanged) is named too."""
    forbid_model_loading(monkeypatch)
    path, out = _started_on_build(tmp_path)
    part = sorted((tmp_path / "build" / "data").glob("train-*.parquet"))[0]
    part.write_bytes(part.read_bytes() + b"\0")
    line = assert_error(run(path, out), "data.build contents", f"data/{part.name} changed", "--restart")
    assert "manifest.json" not in line


def test_build_record_without_per_file_hashes_is_refused_by_the_joint_hash(tmp_path, monkeypatch):
    """An experiment begun before builds were bound by contents (``"inputs": ""``) is refused, not reused."""
    from ava.experiments.recipe import load_recipe
    from ava.runs import Binding, Output, start_run

    forbid_model_loading(monkeypatch)
    write_instruction_fixture(tmp_path / "build", n_train=4)
    path = recipe(tmp_path)
    with start_run(Output(tmp_path / "o", folder=True), "experiment", Binding(options=load_recipe(path).bound())):
        pass
    assert_error(run(path, tmp_path / "o"), "was produced with other settings", "inputs: hash - ->", "--restart")


# -- issue 27: arms and seeds, refused before anything trains ----------------------------------------

ARMS = [{"name": "behaviour", "kind": "behaviour"}, {"name": "shuffled", "kind": "shuffled-audience"}]


def test_unknown_arm_kind_names_close_matches(tmp_path, monkeypatch):
    refused_before_anything(tmp_path, monkeypatch, "arms[1].kind: unknown arm kind 'shuffled'",
                            "did you mean shuffled-audience", arms=[ARMS[0], {"name": "s", "kind": "shuffled"}])


def test_unknown_key_of_an_arm(tmp_path, monkeypatch):
    refused_before_anything(tmp_path, monkeypatch, "unknown key arms[0].ration", "did you mean ratio",
                            arms=[{**ARMS[0], "ration": 0.5}])


def test_duplicate_arm_names(tmp_path, monkeypatch):
    refused_before_anything(tmp_path, monkeypatch, "arms[1].name: 'behaviour' is the name of another arm",
                            arms=[ARMS[0], {"name": "behaviour", "kind": "shuffled-audience"}])


def test_duplicate_seeds(tmp_path, monkeypatch):
    refused_before_anything(tmp_path, monkeypatch, "seeds: 1 is listed twice ([0, 1, 1])", seeds=[0, 1, 1],
                            arms=ARMS)


def test_negative_seed_in_the_list(tmp_path, monkeypatch):
    refused_before_anything(tmp_path, monkeypatch, "seeds: -2 is negative", seeds=[0, -2])


def test_unequal_budgets_are_refused(tmp_path, monkeypatch):
    line = refused_before_anything(tmp_path, monkeypatch, "arms: shuffled trains on another budget than behaviour",
                                   "max_steps 2 vs 1", "allow_unequal_budget: true",
                                   arms=[ARMS[0], {**ARMS[1], "train": {"sft": {"max_steps": 1}}}])
    assert "per_device_train_batch_size" not in line  # names what differs, only that


def test_unequal_limit_is_refused(tmp_path, monkeypatch):
    refused_before_anything(tmp_path, monkeypatch, "arms: shuffled trains on another budget", "limit None vs 4",
                            arms=[ARMS[0], {**ARMS[1], "train": {"limit": 4}}])


def test_unequal_budgets_allowed_when_stated(tmp_path):
    from ava.experiments.recipe import load_recipe

    path = recipe(tmp_path, arms=[ARMS[0], {**ARMS[1], "train": {"sft": {"max_steps": 1}}}],
                  allow_unequal_budget=True)
    loaded = load_recipe(path, available=False)
    assert [a["name"] for a in loaded["arms"]] == ["behaviour", "shuffled", "base"]  # base reference added
    assert loaded["arms"][1]["train"]["sft"]["max_steps"] == 1 and loaded["seeds"] == [0]


@pytest.mark.parametrize("ratio", [None, 0, 1.5])
def test_mixed_arm_without_a_ratio_in_zero_one(tmp_path, monkeypatch, ratio):
    refused_before_anything(tmp_path, monkeypatch, "arms[1].ratio: a mixed arm needs the share of its optimiser steps",
                            arms=[ARMS[0], {"name": "mixed", "kind": "mixed", "ratio": ratio}])


def test_survey_arm_with_no_disjoint_waves(tmp_path, monkeypatch):
    """Evaluating OpinionQA-XL (every bundled Pew wave) leaves no wave to train a survey arm on."""
    line = refused_before_anything(tmp_path, monkeypatch, "arms[1] (survey, survey):",
                                   arms=[ARMS[0], {"name": "survey", "kind": "survey"}],
                                   eval={"benchmarks": {"opinionqa-xl": {"sample": 2}}})
    assert "wave" in line


def test_survey_training_data_overlapping_the_evaluated_questions(tmp_path, monkeypatch):
    """Were the split ever to let an evaluated question through, the arm is refused naming it."""
    import ava.training.survey_data as survey_data

    split = survey_data.survey_examples
    monkeypatch.setattr(survey_data, "survey_examples",
                        lambda questions, evaluated, *a, **k: split(questions, [], *a, **{**k, "limit": 5000}))
    line = refused_before_anything(tmp_path, monkeypatch, "arms[1] (survey, survey):", "also evaluated",
                                   arms=[ARMS[0], {"name": "survey", "kind": "survey"}],
                                   eval={"benchmarks": {"opinionqa": {"sample": 2}}})
    assert "_W" in line  # names the questions (Pew variable names carry their wave)


def test_arm_key_that_does_not_fit_its_kind(tmp_path, monkeypatch):
    refused_before_anything(tmp_path, monkeypatch, "arms[0].model: only a reference arm names its own model",
                            arms=[{**ARMS[0], "model": "tiny"}])


def test_arms_without_a_trained_arm(tmp_path, monkeypatch):
    refused_before_anything(tmp_path, monkeypatch, "arms: no trained arm",
                            arms=[{"name": "base", "kind": "reference"}])
