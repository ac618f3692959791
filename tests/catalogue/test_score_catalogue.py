"""``ava score``: bad input and faults, one case each (see README.md in this folder)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from catalogue import assert_error, forbid_model_loading, invoke, run_unprivileged


def request(i: int, options=("A", "B"), prompt: str = "Question {i}: yes?\nA. yes\nB. no\n") -> str:
    return json.dumps({"id": f"r{i}", "segments": [prompt.format(i=i), "Answer:"], "options": list(options)}) + "\n"


def requests_file(path: Path, n: int = 3, **kw) -> Path:
    path.write_text("".join(request(i, **kw) for i in range(n)), encoding="utf-8")
    return path


def score(inp: Path, out: Path, *extra: str, model: str = "uniform"):
    return invoke("score", "--model", model, "--input", str(inp), "--out", str(out), "--no-progress", *extra)


def scored(out: Path) -> list[dict]:
    return [json.loads(line) for line in out.read_text().splitlines()]


# -- a rerun must match what produced the output ---------------------------------------------
def test_rerun_with_another_model_is_refused(tmp_path, monkeypatch):
    inp, out = requests_file(tmp_path / "in.jsonl"), tmp_path / "out.jsonl"
    assert score(inp, out).exit_code == 0
    before = out.read_bytes()
    forbid_model_loading(monkeypatch)
    assert_error(score(inp, out, model="tiny"), f"{out} was produced with other settings",
                 "model: uniform -> builtin:tiny", "--restart")
    assert out.read_bytes() == before


def test_rerun_with_other_prompts_is_refused(tmp_path):
    inp, out = requests_file(tmp_path / "in.jsonl"), tmp_path / "out.jsonl"
    assert score(inp, out).exit_code == 0
    requests_file(inp, options=("A", "B", "C", "D"))  # same ids, 4 options now: old scores would be wrong
    assert_error(score(inp, out), "inputs: hash ")
    assert all(len(r["probs"]) == 2 for r in scored(out))


def test_rerun_with_other_options_is_refused(tmp_path, monkeypatch):
    inp, out = requests_file(tmp_path / "in.jsonl"), tmp_path / "out.jsonl"
    assert score(inp, out).exit_code == 0
    forbid_model_loading(monkeypatch)
    assert_error(score(inp, out, "--chat"), "option chat: False -> True")


def test_restart_rescores_with_the_new_inputs(tmp_path):
    inp, out = requests_file(tmp_path / "in.jsonl"), tmp_path / "out.jsonl"
    assert score(inp, out).exit_code == 0
    requests_file(inp, n=2, options=("A", "B", "C", "D"))
    result = score(inp, out, "--restart")
    assert result.exit_code == 0, result.output
    assert [len(r["probs"]) for r in scored(out)] == [4, 4]


def test_a_partial_output_without_a_record_is_refused(tmp_path):
    inp, out = requests_file(tmp_path / "in.jsonl"), tmp_path / "out.jsonl"
    (tmp_path / "out.jsonl.partial").write_text(json.dumps({"id": "r0", "probs": [1.0, 0.0]}) + "\n")
    assert_error(score(inp, out), "holds out.jsonl.partial but no run record", "--restart")


# -- one writer per output -------------------------------------------------------------------
def test_second_writer_is_refused_naming_the_holder(tmp_path):
    from ava.runs import OutputLock

    inp, out = requests_file(tmp_path / "in.jsonl"), tmp_path / "out.jsonl"
    with OutputLock(tmp_path / "out.jsonl.lock", out):
        assert_error(score(inp, out), f"{out} is being written by another process", f"pid {os.getpid()}")
    assert not out.exists()


def test_stale_lock_of_a_dead_process_is_taken_over(tmp_path):
    inp, out = requests_file(tmp_path / "in.jsonl"), tmp_path / "out.jsonl"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    (tmp_path / "out.jsonl.lock").write_text(json.dumps({"pid": int(dead.stdout), "host": "h", "since": "t"}))
    result = score(inp, out)
    assert result.exit_code == 0, result.output
    assert "took over a stale lock" in result.output and len(scored(out)) == 3


# -- bad input ---------------------------------------------------------------------------------
@pytest.mark.parametrize("content", [b"", b"\n\n  \n"])
def test_empty_input_is_an_error_and_writes_nothing(tmp_path, content):
    inp, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    inp.write_bytes(content)
    assert_error(score(inp, out), f"{inp}: no requests to score")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.jsonl"]


def test_every_line_skipped_is_an_error(tmp_path):
    inp, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    inp.write_text('{"id": "x", "options": ["A"]}\n')
    assert_error(score(inp, out, "--skip-bad"), "no requests to score (the file is empty or every line was skipped)")
    assert not out.exists()


def test_non_utf8_line_names_file_and_line(tmp_path):
    inp, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    inp.write_bytes(request(0).encode() + b'{"id": "r1", "prompt": "caf\xe9", "options": ["A"]}\n')
    result = score(inp, out)
    assert_error(result, f"{inp}: 1 malformed line(s)", "--skip-bad")
    assert f"{inp}: line 2: not UTF-8 text (byte 0xe9 at column 28)" in result.output
    skipped = score(inp, out, "--skip-bad")
    assert skipped.exit_code == 0 and [r["id"] for r in scored(out)] == ["r0"]


def test_binary_input_is_reported_not_a_traceback(tmp_path):
    inp, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    inp.write_bytes(bytes(range(256)) * 4)
    result = score(inp, out)
    assert_error(result, "malformed line(s)")
    assert "not UTF-8 text" in result.output and not out.exists()


def test_an_id_of_the_wrong_type_is_a_bad_line(tmp_path):
    inp, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    inp.write_text(json.dumps({"id": ["a", "b"], "prompt": "x", "options": ["A"]}) + "\n")
    result = score(inp, out)
    assert_error(result, "1 malformed line(s)")
    assert 'line 1: "id" must be a non-empty string or an integer' in result.output


# -- the output location: checked before the model loads -----------------------------------------
def test_out_is_a_folder(tmp_path, monkeypatch):
    forbid_model_loading(monkeypatch)
    inp = requests_file(tmp_path / "in.jsonl")
    (tmp_path / "dir").mkdir()
    assert_error(score(inp, tmp_path / "dir", model="tiny"), f"{tmp_path / 'dir'} is a folder; --out needs a file")


def test_out_under_a_file(tmp_path, monkeypatch):
    forbid_model_loading(monkeypatch)
    inp = requests_file(tmp_path / "in.jsonl")
    assert_error(score(inp, inp / "out.jsonl", model="tiny"), f"{inp} is a file, so nothing can be created under it")


def test_out_read_only(tmp_path):
    inp = requests_file(tmp_path / "in.jsonl")
    (tmp_path / "locked").mkdir()
    (tmp_path / "locked").chmod(0o555)
    out = tmp_path / "locked" / "out.jsonl"
    proc = run_unprivileged(["score", "--model", "tiny", "-i", str(inp), "--out", str(out)], tmp_path)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert f"error: {out}: cannot write in {tmp_path / 'locked'} (Permission denied)" in proc.stderr
    assert "Loading weights" not in proc.stderr


# -- the grammar -------------------------------------------------------------------------------
def test_output_is_a_hidden_alias_of_out(tmp_path):
    inp, out = requests_file(tmp_path / "in.jsonl"), tmp_path / "out.jsonl"
    result = invoke("score", "--model", "uniform", "-i", str(inp), "--output", str(out), "--no-progress")
    assert result.exit_code == 0 and len(scored(out)) == 3
    assert_error(invoke("score", "--model", "uniform", "-i", str(inp), "--out", str(out), "--output",
                        str(tmp_path / "other.jsonl")), "give --out once")
    assert_error(invoke("score", "--model", "uniform", "-i", str(inp)), "give --out FILE")
    assert "--output" not in invoke("score", "--help").output


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lines=st.lists(st.one_of(st.binary(max_size=60), st.text(max_size=60).map(str.encode),
                                st.just(request(1).encode()), st.just(request(2).encode())), max_size=8))
def test_fuzz_request_reader_reads_or_counts_every_line(tmp_path, lines):
    from ava.models.requests_io import read_requests

    path = tmp_path / "in.jsonl"
    data = b"".join(line.replace(b"\n", b" ") + b"\n" for line in lines)
    path.write_bytes(data)
    requests, bad = read_requests(path)
    blank = sum(1 for raw in data.split(b"\n")[:-1] if _is_blank(raw))
    assert len(requests) + len(bad) + blank == len(lines)
    assert len({r.id for r in requests}) == len(requests) and all(r.options for r in requests)
    assert all(1 <= b.line <= len(lines) for b in bad)


def _is_blank(raw: bytes) -> bool:
    try:
        return not raw.decode("utf-8").strip()
    except UnicodeDecodeError:
        return False


@pytest.mark.parametrize("restart", [False, True])
def test_scores_written_over_their_requests_are_refused(tmp_path, restart):
    """``ava score -i x -o x`` (with or without --restart): refused before anything is written, the
    requests untouched (issue 26: --restart used to overwrite the request file with the scores)."""
    inp = requests_file(tmp_path / "same.jsonl")
    before = inp.read_bytes()
    result = score(inp, inp, *(["--restart"] if restart else []))
    assert_error(result, "same.jsonl", "--out")
    assert inp.read_bytes() == before
    assert not (tmp_path / "same.jsonl.run.json").exists() and not (tmp_path / "same.jsonl.lock").exists()


# -- a torn partial file resumes to the uninterrupted scores, bit for bit ----------------------
def _varied_requests(path: Path, n: int = 40) -> Path:
    """Prompts of many lengths, so which ones share a batch changes its padding and its shapes."""
    lines = []
    for i in range(n):
        stem = " ".join(["Do you agree that taxes should rise"] * (1 + i % 5)) + f" (case {i})?"
        lines.append(json.dumps({"id": f"r{i}", "segments": [f"Question: {stem}\nA. yes\nB. no\nC. unsure\n",
                                                              "Answer:"], "options": ["A", "B", "C"]}) + "\n")
    path.write_text("".join(lines), encoding="utf-8")
    return path


def _interrupt_after(monkeypatch, calls: int) -> None:
    """The engine raises KeyboardInterrupt (a Ctrl-C) on its ``calls + 1``-th chunk."""
    from ava.models.engine import LetterEngine

    real, seen = LetterEngine.score, []

    def score(self, requests, progress=False):
        if len(seen) >= calls:
            raise KeyboardInterrupt
        seen.append(len(requests))
        return real(self, requests, progress)

    monkeypatch.setattr(LetterEngine, "score", score)


LAYOUT = ("--chunk", "8", "--batch-tokens", "96", "--threads", "1")
"""SmolLM2 (the tiny test model's scores do not move with their batch company; SmolLM2's do, by
~1e-7, as a 7B model's do), small batches, one thread: as an uninterrupted run scores them."""


@pytest.mark.slow
@pytest.mark.parametrize("cut", ["mid-chunk", "mid-line"])
def test_torn_partial_scores_resume_bit_for_bit(tmp_path, monkeypatch, cut):
    """Before: the missing requests were re-chunked from where the file ended, so they shared
    batches with other prompts than in an uninterrupted run: scores ~2e-7 apart."""
    inp = _varied_requests(tmp_path / "in.jsonl")
    whole, out = tmp_path / "whole.jsonl", tmp_path / "out.jsonl"
    assert score(inp, whole, *LAYOUT, model="smollm2").exit_code == 0
    with monkeypatch.context() as m:
        _interrupt_after(m, 3)  # three chunks (24 requests) saved, then Ctrl-C
        assert_error(score(inp, out, *LAYOUT, model="smollm2"), "interrupted", "rerun the same command", code=130)
    partial = out.with_name("out.jsonl.partial")
    lines = partial.read_bytes().splitlines(keepends=True)
    assert len(lines) == 24 and not out.exists()
    # a kill while the third chunk was being written: 4 of its 8 rows made it, then (mid-line) half a row
    torn = b"".join(lines[:20]) + (lines[20][: len(lines[20]) // 2] if cut == "mid-line" else b"")
    partial.write_bytes(torn)
    result = score(inp, out, *LAYOUT, model="smollm2")
    assert result.exit_code == 0, result.output
    assert "resuming: 16 already scored, 24 to go" in result.output  # the third chunk is redone whole
    assert out.read_bytes() == whole.read_bytes()
    assert not partial.exists()


@pytest.mark.slow
def test_resume_keeps_the_layout_it_started_with(tmp_path, monkeypatch):
    """--chunk, --batch-tokens and --threads each move scores in their last bits: a resume keeps
    the ones its output was started with, and says so."""
    inp = _varied_requests(tmp_path / "in.jsonl")
    whole, out = tmp_path / "whole.jsonl", tmp_path / "out.jsonl"
    assert score(inp, whole, *LAYOUT, model="smollm2").exit_code == 0
    with monkeypatch.context() as m:
        _interrupt_after(m, 2)
        assert score(inp, out, *LAYOUT, model="smollm2").exit_code == 130
    result = score(inp, out, "--chunk", "5", "--threads", "2", model="smollm2")
    assert result.exit_code == 0, result.output
    assert "note: resuming with --chunk 8 --batch-tokens 96 --threads 1 as this output was started" in result.output
    assert out.read_bytes() == whole.read_bytes()
    info = json.loads(out.with_name("out.jsonl.run.json").read_text())["info"]
    assert (info["chunk"], info["batch_tokens"], info["threads"]) == (8, 96, 1)


def test_threads_are_chosen_once_and_recorded(tmp_path):
    inp = _varied_requests(tmp_path / "in.jsonl", n=4)
    out = tmp_path / "out.jsonl"
    assert score(inp, out, model="tiny").exit_code == 0
    info = json.loads(out.with_name("out.jsonl.run.json").read_text())["info"]
    assert isinstance(info["threads"], int) and info["threads"] >= 1 and info["chunk"] == 512


# -- nothing in a request line is ignored ----------------------------------------------------------
def test_prompt_and_segments_both_given(tmp_path, monkeypatch):
    forbid_model_loading(monkeypatch)
    inp, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    inp.write_text(request(0) + json.dumps({"id": "both", "prompt": "Q?", "segments": ["Q2?"],
                                            "options": ["A", "B"]}) + "\n")
    assert_error(score(inp, out, model="tiny"), f"{inp}: 1 malformed line(s)", "line 2 (id 'both')",
                 'both "prompt" and "segments" given', "--skip-bad")
    assert not out.exists() and not out.with_name("out.jsonl.run.json").exists()


def test_unknown_key_names_the_close_match(tmp_path, monkeypatch):
    forbid_model_loading(monkeypatch)
    inp, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    inp.write_text(json.dumps({"id": "r0", "prompt": "Q?", "options": ["A"], "optons": ["A", "B"]}) + "\n")
    assert_error(score(inp, out, model="tiny"), f"{inp}: 1 malformed line(s)", "line 1 (id 'r0')",
                 "unknown key 'optons'", "did you mean options?")
    assert not out.exists()


def test_lone_surrogate_names_file_line_and_id(tmp_path, monkeypatch):
    forbid_model_loading(monkeypatch)
    inp, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    inp.write_text(request(0) + '{"id": "s1", "prompt": "caf\\ud800 ok?", "options": ["A", "B"]}\n'
                   + '{"id": "s\\udc00", "prompt": "fine?", "options": ["A", "B"]}\n')
    result = score(inp, out, model="tiny")
    assert_error(result, f"{inp}: 2 malformed line(s)", "line 2 (id 's1')", '"prompt" holds a lone surrogate')
    assert "line 3 (id 's\\udc00'): \"id\" holds a lone surrogate" in result.output
    assert "UnicodeEncodeError" not in result.output and not out.exists()
    monkeypatch.undo()  # the uniform baseline "loads" through load_scorer too
    skipped = score(inp, out, "--skip-bad")  # the good line is still scored, the two counted
    assert skipped.exit_code == 0 and [r["id"] for r in scored(out)] == ["r0"]
    assert "skipping 2 malformed line(s)" in skipped.output


# -- a LoRA adapter trained on another base model ----------------------------------------------------
def test_adapter_of_another_builtin_is_refused_before_loading(tmp_path, monkeypatch):
    """Before: torch's ``size mismatch`` state-dict traceback, after the model had loaded."""
    from test_models import _adapter

    folder, _ = _adapter(tmp_path, "tiny")
    forbid_model_loading(monkeypatch)
    inp, out = requests_file(tmp_path / "in.jsonl"), tmp_path / "out.jsonl"
    assert_error(score(inp, out, "--adapter", str(folder), model="smollm2"), f"adapter {folder}",
                 "trained on 'tiny', not on 'smollm2'", "pass --model tiny")
    assert not out.exists() and not out.with_name("out.jsonl.run.json").exists()


def test_eval_adapter_of_another_builtin_is_refused_before_loading(tmp_path, monkeypatch):
    from test_models import _adapter

    folder, _ = _adapter(tmp_path, "tiny")
    forbid_model_loading(monkeypatch)
    result = invoke("eval", "--model", "smollm2", "--adapter", str(folder), "--benchmark", "opinionqa",
                    "--limit", "2", "--out", str(tmp_path / "run"), "--no-progress")
    assert_error(result, f"adapter {folder}", "trained on 'tiny', not on 'smollm2'", "pass --model tiny")
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
def test_adapter_whose_shapes_do_not_fit_is_one_line(tmp_path):
    """A base named by a hub id (or trained on another machine) cannot be compared before loading:
    the load's size mismatch is caught and named."""
    from test_models import _adapter

    folder, _ = _adapter(tmp_path, "some-org/another-model")
    inp, out = requests_file(tmp_path / "in.jsonl"), tmp_path / "out.jsonl"
    line = assert_error(score(inp, out, "--adapter", str(folder), model="smollm2"), f"adapter {folder}",
                        "trained on 'some-org/another-model'", "its weights do not fit 'smollm2'", "size mismatch in",
                        "pass --model with the base it was trained on")
    assert "lora" in line and not out.exists()
    assert json.loads(out.with_name("out.jsonl.run.json").read_text())["status"] == "failed"
