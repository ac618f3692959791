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
