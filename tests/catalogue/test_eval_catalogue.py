"""``ava eval``: bad input and faults, one case each (see README.md in this folder)."""

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

GOQA_HEADER = "question,selections,options,source\n"


def goqa_csv(path: Path, n: int = 3) -> Path:
    """A small GlobalOpinionQA CSV in the official format (two countries per question)."""
    rows = [GOQA_HEADER]
    for i in range(n):
        sel = "defaultdict(<class 'list'>, {'Spain': [0.6, 0.4], 'Chad': [0.2, 0.8]})"
        rows.append(f'"Question {i}?","{sel}","[\'Yes\', \'No\']",GAS\n')
    path.write_text("".join(rows), encoding="utf-8")
    return path


def eval_args(data: Path, out: Path, *extra: str, model: str = "uniform") -> list[str]:
    return ["eval", "--model", model, "--benchmark", "globalopinionqa", "--data", str(data), "--out", str(out),
            "--no-progress", *extra]


# -- names and flags ------------------------------------------------------------------------
def test_unknown_suite_names_the_known_ones():
    assert_error(invoke("eval", "--model", "uniform", "--suite", "quik"),
                 "unknown suite 'quik' (known: paper, quick)", "did you mean quick")


def test_unknown_benchmark_names_the_closest():
    assert_error(invoke("eval", "--model", "uniform", "--benchmark", "opinonqa"), "unknown benchmark 'opinonqa'",
                 "did you mean opinionqa")


def test_unknown_setting_is_refused_naming_the_known_ones(tmp_path):
    line = assert_error(invoke(*eval_args(goqa_csv(tmp_path / "g.csv"), tmp_path / "o", "--set", "foo=bar")),
                        "unknown setting 'foo'", "goqa_prompt", "goqa_similarity")
    assert "n_resamples" not in line  # a setting of another benchmark is not offered
    assert not (tmp_path / "o").exists()


def test_unknown_setting_with_a_suite_is_refused():
    assert_error(invoke("eval", "--model", "uniform", "--suite", "quick", "--set", "n_resample=10"),
                 "unknown setting 'n_resample'", "did you mean n_resamples")


def test_setting_without_a_value_is_refused():
    assert_error(invoke("eval", "--model", "uniform", "--benchmark", "opinionqa", "--set", "n_resamples"),
                 "--set 'n_resamples': expected key=value")


def test_steer_on_a_benchmark_without_steering_is_refused(tmp_path):
    assert_error(invoke(*eval_args(goqa_csv(tmp_path / "g.csv"), tmp_path / "o", "--steer")),
                 "--steer: globalopinionqa has no steering task", "opinionqa")


def test_data_and_steer_with_a_suite_are_refused(tmp_path):
    assert_error(invoke("eval", "--model", "uniform", "--suite", "quick", "--data", str(tmp_path)),
                 "--data names one benchmark's data", "--set data_root=DIR")
    assert_error(invoke("eval", "--model", "uniform", "--suite", "quick", "--steer"),
                 "--steer: a suite sets steering per benchmark")


# -- framing (--framing auto|chat|plain, --chat its alias) ---------------------------------
def test_chat_flag_is_an_alias_and_contradictions_are_refused(tmp_path, monkeypatch):
    forbid_model_loading(monkeypatch)
    assert_error(invoke("eval", "--model", "smollm2", "--benchmark", "globalopinionqa", "--chat", "--framing", "plain",
                        "--out", str(tmp_path / "o")), "--chat means --framing chat", "--framing plain")
    assert_error(invoke("eval", "--model", "tiny", "--benchmark", "globalopinionqa", "--chat",
                        "--out", str(tmp_path / "o")), "model 'tiny' has no chat template")
    assert_error(invoke("eval", "--model", "tiny", "--benchmark", "globalopinionqa", "--framing", "maybe",
                        "--out", str(tmp_path / "o")), "--framing 'maybe': expected one of auto, chat, plain")
    assert not (tmp_path / "o").exists()


def test_a_generation_benchmark_takes_no_framing(tmp_path, monkeypatch):
    forbid_model_loading(monkeypatch)
    for flags in (["--framing", "plain"], ["--framing", "chat"], ["--chat"]):
        assert_error(invoke("eval", "--model", "smollm2", "--benchmark", "ava-tasks", "--data", str(tmp_path),
                            *flags), "ava-tasks generates in the prompt format the model was trained on")


# -- the output location: checked before the model loads -----------------------------------
def test_out_is_a_file(tmp_path, monkeypatch):
    forbid_model_loading(monkeypatch)
    (tmp_path / "taken").write_text("x")
    assert_error(invoke(*eval_args(goqa_csv(tmp_path / "g.csv"), tmp_path / "taken", model="tiny")),
                 f"{tmp_path / 'taken'} is a file", "--out needs a folder")


def test_out_under_a_file(tmp_path, monkeypatch):
    forbid_model_loading(monkeypatch)
    (tmp_path / "taken").write_text("x")
    assert_error(invoke(*eval_args(goqa_csv(tmp_path / "g.csv"), tmp_path / "taken" / "run", model="tiny")),
                 f"{tmp_path / 'taken'} is a file, so nothing can be created under it")


def test_out_read_only(tmp_path):
    data = goqa_csv(tmp_path / "g.csv")
    (tmp_path / "locked").mkdir()
    (tmp_path / "locked").chmod(0o555)
    proc = run_unprivileged(eval_args(data, tmp_path / "locked" / "run", model="tiny"), tmp_path)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr and "Loading weights" not in proc.stderr  # refused before the model
    assert f"error: {tmp_path / 'locked' / 'run'}: cannot write in {tmp_path / 'locked'} (Permission denied)" \
        in proc.stderr
    assert not (tmp_path / "locked" / "run").exists()


# -- binding, one writer, interruption ------------------------------------------------------
def test_rerun_with_another_model_is_refused_saying_what_differs(tmp_path, monkeypatch):
    data, out = goqa_csv(tmp_path / "g.csv"), tmp_path / "run"
    assert invoke(*eval_args(data, out)).exit_code == 0
    before = (out / "results.json").read_bytes()
    forbid_model_loading(monkeypatch)
    assert_error(invoke(*eval_args(data, out, model="tiny")), f"{out} was produced with other settings",
                 "model: uniform -> builtin:tiny", "--restart")
    assert (out / "results.json").read_bytes() == before


def test_restart_starts_over(tmp_path):
    data, out = goqa_csv(tmp_path / "g.csv"), tmp_path / "run"
    assert invoke(*eval_args(data, out)).exit_code == 0
    (out / "cache" / "scores.jsonl").write_text("")  # a restart must not need the old cache
    result = invoke(*eval_args(data, out, "--restart"))
    assert result.exit_code == 0, result.output
    info = json.loads((out / "results.json").read_text())["tasks"]["globalopinionqa"]["task_info"]
    assert info["n_cached"] == 0 and info["n_scored"] == 6


def test_second_writer_is_refused_naming_the_holder(tmp_path):
    from ava.runs import OutputLock

    data, out = goqa_csv(tmp_path / "g.csv"), tmp_path / "run"
    out.mkdir()
    with OutputLock(out / ".lock", out):
        assert_error(invoke(*eval_args(data, out)), f"{out} is being written by another process",
                     f"pid {os.getpid()}")
    assert not (out / "results.json").exists()


def test_stale_lock_of_a_dead_process_is_taken_over(tmp_path):
    data, out = goqa_csv(tmp_path / "g.csv"), tmp_path / "run"
    out.mkdir()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    (out / ".lock").write_text(json.dumps({"pid": int(dead.stdout), "host": "here", "since": "then"}))
    result = invoke(*eval_args(data, out))
    assert result.exit_code == 0, result.output
    assert f"took over a stale lock (pid {int(dead.stdout)} on here since then" in result.output
    assert not (out / ".lock").exists()


def test_interrupted_run_is_recorded_and_resumes(tmp_path, monkeypatch):
    from ava.runs import read_run

    data, out = goqa_csv(tmp_path / "g.csv"), tmp_path / "run"

    def interrupted(self, requests, progress=False):
        raise KeyboardInterrupt

    monkeypatch.setattr("ava.models.scorer.UniformScorer.score", interrupted)
    assert_error(invoke(*eval_args(data, out)), "interrupted; nothing scored is lost", code=130)
    assert read_run(out).status == "interrupted" and not (out / "results.json").exists()
    monkeypatch.undo()
    assert invoke(*eval_args(data, out)).exit_code == 0 and read_run(out).complete


def test_unreadable_run_record_is_refused(tmp_path):
    data, out = goqa_csv(tmp_path / "g.csv"), tmp_path / "run"
    out.mkdir()
    (out / "run.json").write_text('{"status": "complete",\n oops')
    assert_error(invoke(*eval_args(data, out)), f"{out / 'run.json'}:2: not JSON", "not a readable run record",
                 "--restart")


def test_run_record_of_an_unknown_schema_is_refused(tmp_path):
    data, out = goqa_csv(tmp_path / "g.csv"), tmp_path / "run"
    out.mkdir()
    (out / "run.json").write_text(json.dumps({"schema_version": "7", "kind": "eval", "status": "complete"}))
    assert_error(invoke(*eval_args(data, out)), "run record schema '7' (written by another ava version)",
                 "--restart")


def test_run_directory_of_the_previous_ava_resumes_from_its_cache(tmp_path, monkeypatch):
    data, out = goqa_csv(tmp_path / "g.csv"), tmp_path / "run"
    assert invoke(*eval_args(data, out)).exit_code == 0
    legacy = {"schema_version": "1.0", "model": "uniform", "adapter": None, "identity": "uniform",
              "backend": "uniform", "status": "complete", "tasks": ["globalopinionqa"], "updated_at": "then"}
    (out / "run.json").write_text(json.dumps(legacy))  # what ava wrote before run records
    result = invoke(*eval_args(data, out))
    assert result.exit_code == 0, result.output
    info = json.loads((out / "results.json").read_text())["tasks"]["globalopinionqa"]["task_info"]
    assert info["n_cached"] == 6 and json.loads((out / "run.json").read_text())["schema_version"] == "1"
    (out / "run.json").write_text(json.dumps(legacy))
    forbid_model_loading(monkeypatch)
    assert_error(invoke(*eval_args(data, out, model="tiny")), "model: uniform -> builtin:tiny")


# -- benchmark data -------------------------------------------------------------------------
def test_non_utf8_benchmark_file_names_file_and_line(tmp_path):
    data = goqa_csv(tmp_path / "g.csv")
    raw = data.read_bytes().replace(b"Question 1?", b"Questi\xf3n 1?")
    data.write_bytes(raw)
    assert_error(invoke(*eval_args(data, tmp_path / "o")), f"{data}:3: not UTF-8 text (byte 0xf3)")
    assert not (tmp_path / "o").exists()


def test_non_utf8_culturenli_file(tmp_path):
    data = tmp_path / "data.tsv"
    data.write_bytes(b"premise\thypothesis\tus_ratings\tin_ratings\nA \xff man.\tA man.\t['E']\t['E']\n")
    assert_error(invoke("eval", "--model", "uniform", "--benchmark", "culturenli", "--data", str(data), "--out",
                        str(tmp_path / "o")), f"{data}:2: not UTF-8 text (byte 0xff)")


@pytest.mark.parametrize("content", ["", GOQA_HEADER])
def test_empty_or_header_only_benchmark_file(tmp_path, content):
    data = tmp_path / "g.csv"
    data.write_text(content)
    line = assert_error(invoke(*eval_args(data, tmp_path / "o")))
    assert ("no usable GlobalOpinionQA questions: " if content else "missing column(s)") in line
    assert str(data) in line


def test_missing_benchmark_data_says_how_to_get_it(tmp_path):
    assert_error(invoke(*eval_args(tmp_path / "absent.csv", tmp_path / "o")),
                 f"data not found at {tmp_path / 'absent.csv'}", "llm_global_opinions")


def test_survey_data_with_every_group_empty_is_refused(tmp_path, monkeypatch):
    from dataclasses import replace

    from test_opinionqa import fixtures

    empty = [replace(q, groups=tuple(g for g in q.groups if g.attribute == "Overall")) for q in fixtures()]
    monkeypatch.setattr("ava.evals.tasks.opinionqa.load_questions", lambda name, data: empty)
    assert_error(invoke("eval", "--model", "uniform", "--benchmark", "opinionqa", "--out", str(tmp_path / "o")),
                 "opinionqa: every demographic group is empty")
    assert not (tmp_path / "o" / "results.json").exists()


def test_survey_data_without_a_scorable_question_is_refused(tmp_path, monkeypatch):
    from test_opinionqa import fixtures

    monkeypatch.setattr("ava.evals.tasks.opinionqa.load_questions", lambda name, data: fixtures()[2:])
    assert_error(invoke("eval", "--model", "uniform", "--benchmark", "opinionqa", "--out", str(tmp_path / "o")),
                 "opinionqa: no scorable question", "1 degenerate ordinals", "1 no Overall distribution")


# -- the readers never crash: every input is read, refused with a DataError, or counted ------
_CSV_ALPHABET = "ab ,\"'[]{}():01.-\n\te<>"


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.text(alphabet=_CSV_ALPHABET, max_size=300), raw=st.binary(max_size=40))
def test_fuzz_globalopinionqa_reader(tmp_path, body, raw):
    from ava.evals.data import DataError
    from ava.evals.tasks.globalopinionqa import load_globalopinionqa

    path = tmp_path / "g.csv"
    for content in (GOQA_HEADER.encode() + body.encode(), GOQA_HEADER.encode() + raw):
        path.write_bytes(content)
        try:
            questions, report = load_globalopinionqa(path)
        except DataError as exc:
            assert str(path) in str(exc)
            continue
        assert report.kept == len(questions) <= report.rows
        assert all(q.selections and all(abs(sum(d) - 1) < 1e-9 for d in q.selections.values()) for q in questions)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.text(alphabet=_CSV_ALPHABET + "ENC", max_size=300))
def test_fuzz_culturenli_reader(tmp_path, body):
    from ava.evals.data import DataError
    from ava.evals.tasks.culturenli import load_culturenli

    path = tmp_path / "data.tsv"
    path.write_text("premise\thypothesis\tus_ratings\tin_ratings\n" + body, encoding="utf-8")
    try:
        pairs, report = load_culturenli(path)
    except DataError as exc:
        assert str(path) in str(exc)
        return
    assert report.kept == len(pairs) and report.rows == len(pairs) + sum(report.dropped.values())
    assert all(set(p.gold.values()) <= {"E", "N", "C"} for p in pairs)


# -- option orders (--set orders=K, order_kind, debias): refused before anything is scored ---
@pytest.mark.parametrize(("setting", "needles"), [
    ("orders=7", ("--set orders=7: no question has that many cyclic orders; the most is 6 (SAFE_W26, 3 options)",
                  "ask for at most 6")),
    ("orders=two", ("--set orders='two': expected a whole number of orders",)),
    ("orders=0", ("--set orders=0: expected at least 1",)),
    ("order_kind=shuffled", ("--set order_kind='shuffled': unknown; use one of cyclic, permutations",)),
    ("debias=calibrate", ("--set debias='calibrate': unknown; use one of none, pride",)),
])
def test_bad_option_order_setting_is_refused_before_scoring(tmp_path, monkeypatch, setting, needles):
    from test_opinionqa import fixtures

    forbid_model_loading(monkeypatch)
    monkeypatch.setattr("ava.evals.tasks.opinionqa.load_questions", lambda name, data: fixtures())
    out = tmp_path / "o"
    assert_error(invoke("eval", "--model", "smollm2", "--benchmark", "opinionqa", "--set", setting, "--out", str(out),
                        "--no-progress"), *needles)
    assert not (out / "results.json").exists()


def test_permutations_beyond_what_exist_are_refused(tmp_path, monkeypatch):
    from test_opinionqa import fixtures

    forbid_model_loading(monkeypatch)
    monkeypatch.setattr("ava.evals.tasks.opinionqa.load_questions", lambda name, data: fixtures())
    assert_error(invoke("eval", "--model", "smollm2", "--benchmark", "opinionqa", "--set", "orders=7", "--set",
                        "order_kind=permutations", "--out", str(tmp_path / "o"), "--no-progress"),
                 "no question has that many distinct permutations; the most is 6")


# -- an interrupted run resumes to the uninterrupted scores, bit for bit --------------------------------
@pytest.mark.slow
def test_torn_score_cache_resumes_bit_for_bit(tmp_path, monkeypatch):
    """Before: the chunk size grew with the seconds a step took, the missing prompts were re-chunked
    from where the cache ended, and the CPU thread count followed the machine's load: a resumed run's
    SmolLM2 scores differed from an uninterrupted one's in their last bits (so did two uninterrupted runs)."""
    from ava.models.engine import LetterEngine
    from ava.runs import ChunkPolicy

    rows = [GOQA_HEADER]
    sel = "defaultdict(<class 'list'>, {'Spain': [0.6, 0.4], 'Chad': [0.2, 0.8]})"
    for i in range(30):
        question = " ".join(["Should the government spend more on schools"] * (1 + i % 4)) + f" (item {i})?"
        rows.append(f'"{question}","{sel}","[\'Yes\', \'No\']",GAS\n')
    data = tmp_path / "goqa.csv"
    data.write_text("".join(rows), encoding="utf-8")
    monkeypatch.setattr("ava.evals.runner.CHUNKS", ChunkPolicy(8, 8))
    monkeypatch.setattr("ava.models.threads.free_threads", lambda wait=0.5: 1)
    whole, out = tmp_path / "whole", tmp_path / "out"
    assert invoke(*eval_args(data, whole, model="smollm2")).exit_code == 0
    real, calls = LetterEngine.score, []

    def interrupted(self, requests, progress=False):
        if len(calls) >= 3:
            raise KeyboardInterrupt
        calls.append(len(requests))
        return real(self, requests, progress)

    with monkeypatch.context() as m:
        m.setattr(LetterEngine, "score", interrupted)
        assert invoke(*eval_args(data, out, model="smollm2")).exit_code == 130
    cache = out / "cache" / "scores.jsonl"
    lines = cache.read_bytes().splitlines(keepends=True)
    assert len(lines) == 24
    cache.write_bytes(b"".join(lines[:20]) + lines[20][:40])  # killed while writing the third chunk
    result = invoke(*eval_args(data, out, model="smollm2"))
    assert result.exit_code == 0, result.output

    def scores(run: Path) -> dict[str, list[float]]:
        lines = (run / "cache" / "scores.jsonl").read_text().splitlines()
        return {r["key"]: r["logprobs"] for r in map(json.loads, lines)}

    assert scores(out) == scores(whole) and len(scores(whole)) == 60  # a prompt per question and country
    assert [p.read_bytes() for p in sorted((out / "scores").glob("*.jsonl"))] == \
        [p.read_bytes() for p in sorted((whole / "scores").glob("*.jsonl"))]
    assert json.loads((out / "run.json").read_text())["info"]["threads"] == 1
