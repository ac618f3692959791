"""An output equal to, inside or holding one of its inputs is refused before anything is written
(issue 26): :func:`ava.runs.check_apart`, the helper every command calls, as a property over paths,
and the commands that call it (``ava data build-ads``, ``ava data build-surveys``, ``ava experiment
run``) on generated layouts. Siblings, and names that only share a prefix (``ads`` and ``ads2``), are fine.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from ava.runs import NotWritable, OutputOverlapsInput, check_apart

PARTS = st.lists(st.sampled_from(["a", "b", "ab", "a.jsonl"]), min_size=1, max_size=4)


def overlaps(out: list[str], inp: list[str]) -> bool:
    """The expected answer, by components (never by string prefix)."""
    n = min(len(out), len(inp))
    return out[:n] == inp[:n]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(out=PARTS, inputs=st.lists(PARTS, min_size=1, max_size=3), spelled=st.sampled_from(["plain", "dotdot"]),
       make=st.booleans())
def test_refused_exactly_when_output_and_an_input_overlap(tmp_path, out, inputs, spelled, make):
    with tempfile.TemporaryDirectory(dir=tmp_path) as base:
        root = Path(base)
        if make:  # on disk or not: the answer is the same
            for parts in inputs:
                (root.joinpath(*parts)).mkdir(parents=True, exist_ok=True)
        given_out = root.joinpath(*out)
        if spelled == "dotdot":  # the same path spelled another way
            given_out = root.joinpath(*out[:-1], "zz", "..", out[-1])
        expected = any(overlaps(out, parts) for parts in inputs)
        if expected:
            with pytest.raises(OutputOverlapsInput):
                check_apart(given_out, [root.joinpath(*p) for p in inputs])
        else:
            check_apart(given_out, [root.joinpath(*p) for p in inputs])


def test_a_link_to_the_input_is_the_input(tmp_path):
    (tmp_path / "ads").mkdir()
    os.symlink(tmp_path / "ads", tmp_path / "link")
    with pytest.raises(OutputOverlapsInput, match="is inside"):
        check_apart(tmp_path / "link" / "out", [tmp_path / "ads"])
    check_apart(tmp_path / "ads2", [tmp_path / "ads"])  # a shared prefix is not a folder


def test_a_symlink_loop_is_one_clear_refusal(tmp_path):
    os.symlink(tmp_path / "loop", tmp_path / "loop")
    with pytest.raises(NotWritable, match="a symbolic link on this path points .* back to itself"):
        check_apart(tmp_path / "loop" / "out", [tmp_path / "ads"])


def _commands(root: Path, out: Path, inp: Path) -> dict[str, list[str]]:
    recipe = root / "recipe.yaml"
    recipe.write_text(f"version: 1\ndata: {{ads: ['{inp}']}}\nmodel: {{name: tiny}}\n"
                      "eval: {benchmarks: {globalopinionqa: {limit: 2}}}\n", encoding="utf-8")
    return {
        "build-ads": ["data", "build-ads", "--ads", str(inp), "--out", str(out), "--no-progress"],
        "build-surveys": ["data", "build-surveys", "--pew-dir", str(inp), "--out", str(out), "--sav-only",
                          "--no-progress"],
        "experiment": ["experiment", "run", str(recipe), "--out", str(out), "--no-progress"],
    }


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(inp=PARTS, below=st.lists(st.sampled_from(["a", "b"]), max_size=2), holds=st.booleans(),
       command=st.sampled_from(["build-ads", "build-surveys", "experiment"]))
def test_every_command_refuses_before_writing(tmp_path, inp, below, holds, command):
    """Output == input, output inside input, input inside output: exit 2, one error line, nothing written."""
    from ava.cli import app

    with tempfile.TemporaryDirectory(dir=tmp_path) as base:
        root = Path(base)
        folder = root.joinpath(*inp)
        folder.mkdir(parents=True)
        (folder / "ads.jsonl").write_text('{"id": "1"}\n', encoding="utf-8")
        out = root.joinpath(*inp[:1]) if holds else folder.joinpath(*below)
        args = _commands(root, out, folder)[command]
        before = {p: p.stat().st_mtime_ns for p in root.rglob("*")}
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 2, result.output
        assert "Traceback" not in result.output
        errors = [line for line in result.output.splitlines() if line.startswith("error:")]
        assert len(errors) == 1 and "choose a --out outside every input" in errors[0], result.output
        assert {p: p.stat().st_mtime_ns for p in root.rglob("*")} == before


def _table_args(command: str, out: Path, inp: Path) -> list[str]:
    """Every other command with an output, given the input folder ``inp`` where it reads one."""
    return {
        "train": ["train", "--model", "tiny", "--data", str(inp), "--out", str(out)],
        "eval": ["eval", "--model", "uniform", "--benchmark", "globalopinionqa", "--data", str(inp), "--out", str(out),
                 "--no-progress"],
        "export": ["export", "lm-eval", str(out), "--benchmark", "globalopinionqa", "--data", str(inp)],
        "score-adapter": ["score", "--model", "tiny", "--adapter", str(inp), "-i", str(inp.parent / "req.jsonl"),
                          "--out", str(out / "s.jsonl"), "--no-progress"],
        "report": ["report", str(inp), "--out", str(out / "report.html")],
    }[command]


@pytest.mark.parametrize("relation", ["equal", "inside", "holds"])
@pytest.mark.parametrize("command", ["train", "eval", "export", "score-adapter", "report"])
def test_every_other_command_refuses_before_writing(tmp_path, monkeypatch, command, relation):
    """The table beside the property test above: train (--data, --model, --mix, --config), eval
    (--data, --model, --adapter), export (--data), score (--input,
    --model, --adapter) and report (its run directories): an output equal to, inside or holding an
    input is refused with one line before anything is written, and no model loads."""
    from transformers import AutoModelForCausalLM

    from ava.cli import app

    if command in ("report", "score-adapter") and relation != "inside":
        pytest.skip("a file output can only lie inside an input folder")

    def loaded(*args, **kwargs):
        raise AssertionError("a model was loaded before the command refused")

    for target in ("ava.models.scorer.load_scorer", "ava.models.options.load_model"):
        monkeypatch.setattr(target, loaded)
    monkeypatch.setattr(AutoModelForCausalLM, "from_pretrained", loaded)
    inp = tmp_path / "in"
    inp.mkdir()
    (inp / "adapter_config.json").write_text('{"base_model_name_or_path": "tiny"}', encoding="utf-8")
    (tmp_path / "req.jsonl").write_text('{"id": "1", "prompt": "Q?", "options": ["A", "B"]}\n', encoding="utf-8")
    sel = "defaultdict(<class 'list'>, {'Spain': [0.6, 0.4], 'Chad': [0.2, 0.8]})"
    csv = f'question,selections,options,source\n"Q?","{sel}","[\'Yes\', \'No\']",GAS\n'
    (inp / "global_opinions.csv").write_text(csv, encoding="utf-8")  # GlobalOpinionQA's: eval's, export's --data
    out = {"equal": inp, "inside": inp / "sub", "holds": tmp_path}[relation]
    def state() -> dict[Path, int | None]:  # every path, and each file's mtime (a folder's moves with the
        return {p: p.stat().st_mtime_ns if p.is_file() else None  # write probe, which leaves nothing)
                for p in tmp_path.rglob("*")}

    before = state()
    result = CliRunner().invoke(app, _table_args(command, out, inp))
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "outside every input" in errors[0], result.output
    assert state() == before
