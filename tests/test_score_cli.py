"""``ava score``: JSONL in, JSONL out, resumable, malformed lines reported by number."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from ava.cli import app

runner = CliRunner()


def _write(path, lines):
    path.write_text("".join(lines), encoding="utf-8")


def _req(i, options=("A", "B")):
    return (
        json.dumps(
            {"id": f"r{i}", "segments": [f"Question {i}: yes?\nA. yes\nB. no\n", "Answer:"], "options": list(options)}
        )
        + "\n"
    )


def test_scores_in_input_order(tmp_path):
    inp, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    _write(inp, [_req(i) for i in range(5)] + [json.dumps({"id": "p", "prompt": "Pick:", "options": ["A"]}) + "\n"])
    result = runner.invoke(app, ["score", "--model", "tiny", "-i", str(inp), "-o", str(out)])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["id"] for r in rows] == [f"r{i}" for i in range(5)] + ["p"]
    assert all(abs(sum(r["probs"]) - 1) < 1e-9 and 0 < r["letter_mass"] < 1 for r in rows)
    assert not (tmp_path / "out.jsonl.partial").exists()


def test_truncated_file_is_reported_and_nothing_is_written(tmp_path):
    inp, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    _write(inp, [_req(0), _req(1), '{"id": "r2", "prompt": "x", "opt'])
    result = runner.invoke(app, ["score", "--model", "uniform", "-i", str(inp), "-o", str(out)])
    assert result.exit_code == 2
    assert "line 3: truncated JSON" in result.output
    assert not out.exists()


def test_malformed_lines_skipped_on_request(tmp_path):
    inp, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    _write(inp, [_req(0), '{"id": "x", "options": ["A"]}\n', _req(0), _req(1)])
    result = runner.invoke(app, ["score", "--model", "uniform", "-i", str(inp), "-o", str(out), "--skip-bad"])
    assert result.exit_code == 0, result.output
    assert "line 2 (id 'x'): give \"segments\"" in result.output
    assert "line 3 (id 'r0'): duplicate id" in result.output
    assert [json.loads(x)["id"] for x in out.read_text().splitlines()] == ["r0", "r1"]


class StopAfter:
    """The uniform scorer, interrupted (like Ctrl-C) once it has scored ``n`` requests."""

    identity, backend = "uniform", "uniform"

    def __init__(self, n: int) -> None:
        self.n, self.seen = n, []

    def score(self, requests, progress=False):
        from ava.models.scorer import UniformScorer

        if len(self.seen) >= self.n:
            raise KeyboardInterrupt
        self.seen += [r.id for r in requests]
        return UniformScorer().score(requests)


def test_interrupted_run_resumes_without_rescoring(tmp_path, monkeypatch):
    from ava.runs import read_run

    inp, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    _write(inp, [_req(i) for i in range(4)])
    first = StopAfter(2)
    monkeypatch.setattr("ava.models.scorer.load_scorer", lambda *a, **k: first)
    result = runner.invoke(app, ["score", "--model", "uniform", "-i", str(inp), "--out", str(out), "--chunk", "2"])
    assert result.exit_code == 130 and "rerun the same command to resume" in result.output
    assert read_run(out).status == "interrupted" and not out.exists()
    second = StopAfter(99)
    monkeypatch.setattr("ava.models.scorer.load_scorer", lambda *a, **k: second)
    result = runner.invoke(app, ["score", "--model", "uniform", "-i", str(inp), "--out", str(out), "--chunk", "2"])
    assert result.exit_code == 0, result.output
    assert "resuming: 2 already scored, 2 to go" in result.output and second.seen == ["r2", "r3"]
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    assert [r["id"] for r in rows] == ["r0", "r1", "r2", "r3"] and rows[3]["probs"] == [0.5, 0.5]
    assert read_run(out).complete and not (tmp_path / "out.jsonl.partial").exists()
    again = runner.invoke(app, ["score", "--model", "uniform", "-i", str(inp), "--out", str(out)])
    assert again.exit_code == 0 and "all 4 requests already scored" in again.output


def test_unknown_model_is_a_one_line_error(tmp_path):
    inp, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    _write(inp, [_req(0)])
    result = runner.invoke(app, ["score", "--model", "llama-99", "-i", str(inp), "-o", str(out)])
    assert result.exit_code == 2
    assert "unknown model 'llama-99'" in result.output
    assert not out.exists()


def test_option_the_tokenizer_cannot_spell(tmp_path):
    inp, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    _write(inp, [_req(0, options=("A", "Xylophone"))])
    result = runner.invoke(app, ["score", "--model", "tiny", "-i", str(inp), "-o", str(out)])
    assert result.exit_code == 2
    assert "request 'r0': option 'Xylophone' cannot be read as one token after the prompt" in result.output
    assert not out.exists()


def test_over_long_prompt_refused_by_default_and_scored_with_truncate_left(tmp_path):
    """tiny's context window is 2048 positions; a longer prompt is refused naming id, length and
    limit, and with --truncate left scored on its last 2048 tokens (recorded in the binding)."""
    from ava.models.loading import load_model
    from ava.runs import read_run

    _, tokenizer = load_model("tiny")
    prompt = "Question: " + "why " * 2100 + "?\n"
    n = len(tokenizer(prompt + "Answer:").input_ids)
    assert n > 2048
    inp, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    long = {"id": "long-1", "segments": [prompt, "Answer:"], "options": ["A", "B"]}
    _write(inp, [_req(0), json.dumps(long) + "\n"])
    refused = runner.invoke(app, ["score", "--model", "tiny", "-i", str(inp), "-o", str(out), "--no-progress"])
    assert refused.exit_code == 2 and "Traceback" not in refused.output
    assert (f"request 'long-1': the prompt is {n} tokens, longer than the model's context window of 2048; "
            "shorten it or truncate from the left (ava score --truncate left)") in refused.output
    assert not out.exists() and read_run(out).status == "failed"
    cut = runner.invoke(app, ["score", "--model", "tiny", "-i", str(inp), "-o", str(out), "--no-progress",
                              "--truncate", "left"])
    assert cut.exit_code == 2 and "option truncate: None -> 'left'" in cut.output  # bound, even when failed
    cut = runner.invoke(app, ["score", "--model", "tiny", "-i", str(inp), "-o", str(out), "--no-progress",
                              "--truncate", "left", "--restart"])
    assert cut.exit_code == 0, cut.output
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["id"] for r in rows] == ["r0", "long-1"] and abs(sum(rows[1]["probs"]) - 1) < 1e-9
    assert read_run(out).binding.options == {"chat": False, "truncate": "left"}
    again = runner.invoke(app, ["score", "--model", "tiny", "-i", str(inp), "-o", str(out), "--no-progress"])
    assert again.exit_code == 2 and "option truncate: 'left' -> None" in again.output
    bad = runner.invoke(app, ["score", "--model", "tiny", "-i", str(inp), "-o", str(out), "--truncate", "right"])
    assert bad.exit_code == 2 and "--truncate 'right': the one choice is left" in bad.output


def test_model_options_are_recorded_and_the_dtype_binds(tmp_path):
    """--dtype, --device-map and --revision: one definition (ava.models.options); the dtype is
    part of the weights' identity the output is bound to; all three are in the record's info."""
    from ava.models.options import ModelOptions
    from ava.runs import read_run

    inp, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    _write(inp, [_req(0)])
    done = runner.invoke(app, ["score", "--model", "tiny", "-i", str(inp), "-o", str(out), "--dtype", "fp32"])
    assert done.exit_code == 0, done.output
    record = read_run(out)
    assert record.binding.model == ModelOptions("tiny", dtype="fp32").identity() == ModelOptions("tiny").identity()
    bf16 = runner.invoke(app, ["score", "--model", "tiny", "-i", str(inp), "-o", str(out), "--dtype", "bf16"])
    assert bf16.exit_code == 2 and f"model: {record.binding.model} -> {record.binding.model}:bf16" in bf16.output
    assert {k: record.info[k] for k in ("dtype", "device_map", "revision")} == {
        "dtype": "fp32", "device_map": None, "revision": None}
    bad = runner.invoke(app, ["score", "--model", "tiny", "-i", str(inp), "-o", str(out), "--dtype", "fp8"])
    assert bad.exit_code == 2 and "unknown --dtype 'fp8'" in bad.output
    revision = runner.invoke(app, ["score", "--model", "tiny", "-i", str(inp), "-o", str(out), "--revision", "v1"])
    assert revision.exit_code == 2 and "Traceback" not in revision.output
