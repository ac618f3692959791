"""Every command: an option given twice is refused before anything runs (see README.md here).

Before: click kept the last value of a single-valued option and every value of a repeatable one,
so ``ava eval --benchmark opinionqa --benchmark opinionqa`` ran and recorded the flag twice,
``--benchmark a --benchmark b`` silently ran b, and ``--wave W26 --wave W26`` listed a wave twice.
"""

from __future__ import annotations

import pytest

from catalogue import assert_error, forbid_model_loading, invoke

CASES = [
    (["eval", "--model", "uniform", "--benchmark", "opinionqa", "--benchmark", "opinionqa"],
     "--benchmark opinionqa given twice"),
    (["eval", "--model", "uniform", "-b", "opinionqa", "--benchmark=globalopinionqa"],
     "--benchmark given twice (opinionqa and globalopinionqa): it takes one value"),
    (["eval", "--model", "uniform", "--suite", "quick", "--set", "limit=2", "--set", "limit=2"],
     "--set limit=2 given twice"),
    (["data", "build-surveys", "--pew-dir", "{tmp}/pew", "--out", "{tmp}/o", "--wave", "W26", "--wave", "W26"],
     "--wave W26 given twice"),
    (["data", "build-ads", "--ads", "{tmp}/a.jsonl", "--ads", "{tmp}/a.jsonl", "--out", "{tmp}/o"],
     "--ads {tmp}/a.jsonl given twice"),
    (["train", "--data", "{tmp}/b", "--out", "{tmp}/o", "--sft-arg", "max_steps=2", "--sft-arg", "max_steps=2"],
     "--sft-arg max_steps=2 given twice"),
    (["score", "--model", "uniform", "-i", "{tmp}/a.jsonl", "-o", "{tmp}/x.jsonl", "-o", "{tmp}/y.jsonl"],
     "--out given twice"),
    (["export", "lm-eval", "{tmp}/o", "--benchmark", "opinionqa", "-b", "opinionqa"],
     "--benchmark opinionqa given twice"),
    (["experiment", "run", "{tmp}/r.yaml", "--out", "{tmp}/a", "--out", "{tmp}/b"], "--out given twice (",),
]


@pytest.mark.parametrize("args, needle", CASES, ids=lambda v: " ".join(v[:3]) if isinstance(v, list) else None)
def test_option_given_twice_is_refused_before_anything_runs(tmp_path, monkeypatch, args, needle):
    forbid_model_loading(monkeypatch)
    (tmp_path / "a.jsonl").write_text("{}\n", encoding="utf-8")
    before = sorted(tmp_path.rglob("*"))
    fill = str(tmp_path)
    assert_error(invoke(*[a.replace("{tmp}", fill) for a in args]), needle.replace("{tmp}", fill), "give it once")
    assert sorted(tmp_path.rglob("*")) == before  # nothing written


def test_a_repeatable_option_with_other_values_is_not_refused():
    import typer.main

    from ava.cli import _given_twice, app

    command = typer.main.get_command(app).commands["data"].commands["build-ads"]
    assert _given_twice(command.params, ["--ads", "a.jsonl", "--ads", "b.jsonl", "--out", "o"]) is None
    assert _given_twice(command.params, ["--out", "o", "--", "--out", "p"]) is None  # after --: not options
