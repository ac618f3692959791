"""``--expression``: bad input, one case each (see README.md in this folder). Every case is
refused with one ``error:`` line before a model loads or anything is written."""

from __future__ import annotations

import pytest
from test_experiment_catalogue import GOOD, refused_before_anything

from catalogue import assert_error, forbid_model_loading, invoke


def eval_opinionqa(out, *extra: str, model: str = "tiny") -> list[str]:
    return ["eval", "--model", model, "--benchmark", "opinionqa", "--limit", "2", "--out", str(out),
            "--no-progress", *extra]


def test_unknown_method_names_the_close_ones(tmp_path, monkeypatch):
    forbid_model_loading(monkeypatch)
    assert_error(invoke(*eval_opinionqa(tmp_path / "o", "--expression", "verbalised")),
                 "expression 'verbalised': unknown method", "known: logprobs, calibrated, verbalized, sampled",
                 "did you mean verbalized")
    assert not (tmp_path / "o").exists()


def test_unknown_method_given_as_a_setting(tmp_path, monkeypatch):
    forbid_model_loading(monkeypatch)
    assert_error(invoke(*eval_opinionqa(tmp_path / "o", "--set", "expression=sample")),
                 "unknown method", "did you mean sampled")
    assert not (tmp_path / "o").exists()


def test_unknown_method_in_a_suite_is_refused_not_skipped(tmp_path, monkeypatch):
    forbid_model_loading(monkeypatch)
    assert_error(invoke("eval", "--model", "tiny", "--suite", "quick", "--out", str(tmp_path / "o"),
                        "--expression", "logprob"), "unknown method", "did you mean logprobs")
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("method", ["verbalized", "sampled"])
def test_uniform_cannot_write_text(tmp_path, monkeypatch, method):
    forbid_model_loading(monkeypatch)
    assert_error(invoke(*eval_opinionqa(tmp_path / "o", "--expression", method, model="uniform")),
                 f"expression {method}: the 'uniform' baseline cannot write text", "give a language model")
    assert not (tmp_path / "o").exists()


def test_uniform_cannot_write_text_in_a_suite_setting(tmp_path, monkeypatch):
    forbid_model_loading(monkeypatch)
    assert_error(invoke("eval", "--model", "uniform", "--suite", "quick", "--out", str(tmp_path / "o"),
                        "--set", "expression=verbalized"), "'uniform' baseline cannot write text")
    assert not (tmp_path / "o").exists()


def test_expression_on_a_benchmark_without_it(tmp_path, monkeypatch):
    forbid_model_loading(monkeypatch)
    assert_error(invoke("eval", "--model", "tiny", "--benchmark", "culturenli", "--out", str(tmp_path / "o"),
                        "--expression", "sampled"), "culturenli has no expression methods",
                 "opinionqa, opinionqa-xl")
    assert not (tmp_path / "o").exists()


def test_expression_flag_contradicting_the_setting(tmp_path, monkeypatch):
    forbid_model_loading(monkeypatch)
    assert_error(invoke(*eval_opinionqa(tmp_path / "o", "--expression", "sampled", "--set", "expression=verbalized")),
                 "--expression sampled contradicts --set expression=verbalized")


def test_orders_with_a_text_method(tmp_path, monkeypatch):
    forbid_model_loading(monkeypatch)
    assert_error(invoke(*eval_opinionqa(tmp_path / "o", "--expression", "verbalized", "--set", "orders=2")),
                 "option orders and debiasing", "letters' probabilities only")
    assert not (tmp_path / "o").exists()


def test_samples_without_sampling(tmp_path, monkeypatch):
    forbid_model_loading(monkeypatch)
    assert_error(invoke(*eval_opinionqa(tmp_path / "o", "--set", "samples=5")),
                 "samples: only the sampled method draws answers")


def test_unknown_method_in_a_recipe(tmp_path, monkeypatch):
    refused_before_anything(tmp_path, monkeypatch, "eval.benchmarks.opinionqa.settings", "unknown method",
                            "did you mean verbalized",
                            eval={"benchmarks": {"opinionqa": {"limit": 2, "settings": {"expression": "verbalize"}}}})
    assert GOOD["eval"]["benchmarks"] == {"globalopinionqa": {"limit": 2}}  # the shared recipe is untouched
