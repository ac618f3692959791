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


# -- --out through a symlink loop: one line in every command, never raw errno text ---------------------
LOOP_CASES = {
    "score": ["score", "--model", "uniform", "-i", "{tmp}/req.jsonl", "--out", "{loop}/s.jsonl", "--no-progress"],
    "eval": ["eval", "--model", "uniform", "--benchmark", "globalopinionqa", "--limit", "2", "--out", "{loop}/run",
             "--no-progress"],
    "build-ads": ["data", "build-ads", "--ads", "{tmp}/ads.jsonl", "--out", "{loop}/build", "--no-progress"],
    "build-surveys": ["data", "build-surveys", "--pew-dir", "{tmp}/pew", "--out", "{loop}/surveys", "--sav-only",
                      "--no-progress"],
    "train": ["train", "--model", "tiny", "--data", "{tmp}/build", "--out", "{loop}/train"],
    "export": ["export", "lm-eval", "{loop}/tasks", "--benchmark", "globalopinionqa"],
    "experiment": ["experiment", "run", "{tmp}/recipe.yaml", "--out", "{loop}/exp", "--no-progress"],
}


@pytest.mark.parametrize("command", sorted(LOOP_CASES))
def test_out_through_a_symlink_loop(tmp_path, monkeypatch, command):
    """Before (some commands): ``[Errno 40] Too many levels of symbolic links`` or a traceback."""
    import os

    from test_training import write_instruction_fixture

    forbid_model_loading(monkeypatch)
    loop = tmp_path / "loop"
    os.symlink(loop, loop)
    (tmp_path / "req.jsonl").write_text('{"id": "1", "prompt": "Q?", "options": ["A", "B"]}\n', encoding="utf-8")
    (tmp_path / "ads.jsonl").write_text('{"id": "1"}\n', encoding="utf-8")
    (tmp_path / "pew").mkdir()
    write_instruction_fixture(tmp_path / "build", n_train=4)
    (tmp_path / "recipe.yaml").write_text(
        f"version: 1\ndata: {{build: '{tmp_path / 'build'}'}}\nmodel: {{name: tiny}}\n"
        "eval: {benchmarks: {globalopinionqa: {limit: 2}}}\n", encoding="utf-8")
    args = [a.replace("{tmp}", str(tmp_path)).replace("{loop}", str(loop)) for a in LOOP_CASES[command]]
    line = assert_error(invoke(*args), str(loop), "back to itself")
    assert "Errno" not in line
