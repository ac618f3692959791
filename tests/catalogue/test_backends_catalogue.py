"""``ava score`` / ``ava eval`` against a server: bad input and faults, one case each.

Real vLLM server where the fault is the server's own (wrong model name, tokenizer mismatch,
top-k above its limit); a fault-injecting proxy in front of it (tests/servers.py) for what a
healthy server will not do on demand (429 storms, NaN, missing fields, ignored echo, dying).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from catalogue import assert_error, forbid_model_loading, invoke
from servers import free_port

pytestmark = pytest.mark.slow


def requests_file(path: Path, n: int = 6) -> Path:
    """Real OpinionQA steering prompts (the product's own format)."""
    from ava.evals.tasks.opinionqa import steering_requests

    rows = steering_requests(1)[:n]
    path.write_text("".join(json.dumps({"id": r.id, "segments": list(r.segments), "options": list(r.options)}) + "\n"
                            for r in rows), encoding="utf-8")
    return path


def score(inp: Path, out: Path, base_url: str, *extra: str, model: str = "smollm2"):
    return invoke("score", "--model", model, "--input", str(inp), "--out", str(out), "--no-progress",
                  "--backend", "openai", "--base-url", base_url, "--served-model", "smollm2", *extra)


def nothing_scored(out: Path) -> None:
    assert not out.exists()
    partial = out.with_name(out.name + ".partial")
    assert not partial.exists() or partial.read_text() == ""
    record = out.with_name(out.name + ".run.json")
    assert not record.exists() or json.loads(record.read_text())["status"] != "complete"


def rows(path: Path) -> dict[str, dict]:
    return {r["id"]: r for r in map(json.loads, path.read_text().splitlines())}


# -- refused before anything is scored -------------------------------------------------------
def test_unreachable_server(tmp_path):
    url = f"http://127.0.0.1:{free_port()}/v1"
    inp, out = requests_file(tmp_path / "in.jsonl", 2), tmp_path / "out.jsonl"
    assert_error(score(inp, out, url, "--retries", "1"), f"server {url}", "request GET /models", "cannot connect",
                 "after 2 tries", "rerun the same command")
    nothing_scored(out)


def test_wrong_served_model(tmp_path, vllm_server):
    inp, out = requests_file(tmp_path / "in.jsonl", 2), tmp_path / "out.jsonl"
    result = invoke("score", "--model", "smollm2", "--input", str(inp), "--out", str(out), "--no-progress",
                    "--backend", "openai", "--base-url", vllm_server.base_url, "--served-model", "llama-70b")
    assert_error(result, f"server {vllm_server.base_url}", "serves smollm2, not 'llama-70b'", "--served-model")
    nothing_scored(out)


def test_tokenizer_that_does_not_match_the_served_model(tmp_path, vllm_server):
    inp, out = requests_file(tmp_path / "in.jsonl", 2), tmp_path / "out.jsonl"
    assert_error(score(inp, out, vllm_server.base_url, model="tiny"), "request probe",
                 "another tokenizer", "--model")
    nothing_scored(out)


def test_top_k_above_the_servers_limit(tmp_path, vllm_server):
    inp, out = requests_file(tmp_path / "in.jsonl", 2), tmp_path / "out.jsonl"
    assert_error(score(inp, out, vllm_server.base_url, "--mode", "topk", "--top-k", "100"),
                 "HTTP 400", "greater than max allowed: 64", "request probe")
    nothing_scored(out)


@pytest.mark.parametrize("mode", ["topk", "exact"])
def test_logprobs_disabled(tmp_path, fault_proxy, mode):
    fault_proxy.reset(drop_field="logprobs", no_chosen_ids=True)
    inp, out = requests_file(tmp_path / "in.jsonl", 2), tmp_path / "out.jsonl"
    assert_error(score(inp, out, fault_proxy.base_url, "--mode", mode), f"server {fault_proxy.base_url}",
                 "request probe", "no 'logprobs'")
    nothing_scored(out)


def test_echo_ignored_refuses_exact_mode(tmp_path, fault_proxy):
    """llama.cpp's server ignores echo: exact scores cannot be had there, top-k ones can."""
    fault_proxy.reset(ignore_echo=True, no_chosen_ids=True)
    inp, out = requests_file(tmp_path / "in.jsonl", 2), tmp_path / "out.jsonl"
    assert_error(score(inp, out, fault_proxy.base_url), "exact scores need the prompt's echoed log-probabilities",
                 "does not echo", "--mode topk")
    nothing_scored(out)
    topk = tmp_path / "topk.jsonl"  # (the refused run's record binds out.jsonl to exact mode)
    assert score(inp, topk, fault_proxy.base_url, "--mode", "topk", "--min-coverage", "0").exit_code == 0
    assert all(0 < r["covered_mass"] <= 1 for r in rows(topk).values())


# -- broken replies mid-run ------------------------------------------------------------------
@pytest.mark.parametrize("fault, needle", [({"nan": True}, "nan"), ({"drop_field": "logprobs"}, "no 'logprobs'")])
def test_broken_reply_names_the_request(tmp_path, fault_proxy, fault, needle):
    inp, out = requests_file(tmp_path / "in.jsonl", 3), tmp_path / "out.jsonl"
    first = next(iter(rows(inp)))
    fault_proxy.reset(after=3, **fault)  # the probe's three requests pass, the first scoring one is broken
    line = assert_error(score(inp, out, fault_proxy.base_url, "--concurrency", "1"),
                        f"server {fault_proxy.base_url}", needle, "rerun the same command to resume")
    assert f"request {first}" in line
    nothing_scored(out)


# -- a dying server, rate limits -------------------------------------------------------------
def test_server_dies_mid_run_then_resume(tmp_path, fault_proxy, vllm_server):
    inp = requests_file(tmp_path / "in.jsonl", 24)
    whole = tmp_path / "whole.jsonl"
    assert score(inp, whole, vllm_server.base_url).exit_code == 0
    out = tmp_path / "out.jsonl"
    fault_proxy.reset(die_after=3 + 14)  # the probe, then 14 of the 24 prompts
    args = ("--chunk", "24", "--concurrency", "4", "--retries", "1")
    line = assert_error(score(inp, out, fault_proxy.base_url, *args), f"server {fault_proxy.base_url}",
                        "cannot connect", "after 2 tries", "rerun the same command to resume")
    assert "request " in line
    kept = rows(out.with_name("out.jsonl.partial"))
    assert 14 - 4 <= len(kept) <= 14  # at most the requests in flight (--concurrency 4) were lost
    assert json.loads(out.with_name("out.jsonl.run.json").read_text())["status"] != "complete"
    fault_proxy.reset()  # the server is back
    result = score(inp, out, fault_proxy.base_url, *args)
    assert result.exit_code == 0, result.output
    assert f"resuming: {len(kept)} already scored, {24 - len(kept)} to go" in result.output
    assert fault_proxy.faults.completions <= 3 + 24 - len(kept)  # only what was lost is asked again
    resumed, fresh = rows(out), rows(whole)
    assert list(resumed) == list(fresh)
    assert max(abs(a - b) for i in fresh for a, b in zip(resumed[i]["probs"], fresh[i]["probs"], strict=True)) < 1e-5


def test_429_storm_is_retried(tmp_path, fault_proxy):
    fault_proxy.reset(too_many=3)  # (backoff 0.5 + 1 + 2 s)
    inp, out = requests_file(tmp_path / "in.jsonl", 4), tmp_path / "out.jsonl"
    result = score(inp, out, fault_proxy.base_url, "--retries", "4", "--concurrency", "2")
    assert result.exit_code == 0, result.output
    assert fault_proxy.faults.rate_limited == 3 and len(rows(out)) == 4


def test_429_that_never_ends_fails_bounded(tmp_path, fault_proxy):
    fault_proxy.reset(always_429=True)
    inp, out = requests_file(tmp_path / "in.jsonl", 2), tmp_path / "out.jsonl"
    assert_error(score(inp, out, fault_proxy.base_url, "--retries", "2"), "HTTP 429", "after 3 tries")
    assert fault_proxy.faults.rate_limited == 3
    nothing_scored(out)


# -- keys, coverage, flags -------------------------------------------------------------------
def test_api_key_from_the_environment_is_never_written(tmp_path, fault_proxy, monkeypatch):
    key = "sk-ava-test-0123456789"
    fault_proxy.reset(need_key=key)
    monkeypatch.setenv("AVA_TEST_SERVER_KEY", key)
    inp, out = requests_file(tmp_path / "in.jsonl", 2), tmp_path / "out.jsonl"
    assert_error(score(inp, out, fault_proxy.base_url), "HTTP 401", "--api-key-env")
    result = score(inp, out, fault_proxy.base_url, "--api-key-env", "AVA_TEST_SERVER_KEY")
    assert result.exit_code == 0, result.output
    assert f"Bearer {key}" in fault_proxy.faults.seen_auth
    assert key not in result.output
    for path in tmp_path.iterdir():
        assert key not in path.read_text(), path
    assert json.loads((tmp_path / "out.jsonl.run.json").read_text())["info"]["api_key_env"] == "AVA_TEST_SERVER_KEY"


def test_topk_coverage_below_threshold_fails(tmp_path, vllm_server):
    inp, out = requests_file(tmp_path / "in.jsonl", 4), tmp_path / "out.jsonl"
    assert_error(score(inp, out, vllm_server.base_url, "--mode", "topk", "--top-k", "1", "--min-coverage", "0.99"),
                 f"server {vllm_server.base_url}", "top-1 log-probabilities showed only", "--min-coverage")
    nothing_scored(out)


@pytest.mark.parametrize("args, needle", [
    (["--mode", "topk"], "reads every letter exactly"),
    (["--base-url", "http://127.0.0.1:1/v1"], "use them with --backend openai"),
    (["--backend", "openai"], "needs --base-url"),
    (["--backend", "openai", "--base-url", "http://127.0.0.1:1/v1", "--dtype", "bf16"], "a server's are its own"),
    (["--backend", "openai", "--base-url", "http://127.0.0.1:1/v1", "--api-key-env", "AVA_UNSET_VAR"], "is not set"),
    (["--backend", "vllm", "--device-map", "auto"], "vLLM places weights itself"),
])
def test_backend_flags_refused_before_loading(tmp_path, monkeypatch, args, needle):
    forbid_model_loading(monkeypatch)
    inp, out = requests_file(tmp_path / "in.jsonl", 2), tmp_path / "out.jsonl"
    result = invoke("score", "--model", "smollm2", "--input", str(inp), "--out", str(out), *args)
    assert_error(result, needle)
    nothing_scored(out)


def test_uniform_has_no_server(tmp_path, monkeypatch):
    forbid_model_loading(monkeypatch)
    result = invoke("eval", "--model", "uniform", "--benchmark", "opinionqa", "--out", str(tmp_path / "r"),
                    "--backend", "openai", "--base-url", "http://127.0.0.1:1/v1")
    assert_error(result, "the uniform baseline reads no model")


def test_ava_tasks_needs_weights_in_process(tmp_path, monkeypatch):
    forbid_model_loading(monkeypatch)
    result = invoke("eval", "--model", "smollm2", "--benchmark", "ava-tasks", "--out", str(tmp_path / "r"),
                    "--backend", "openai", "--base-url", "http://127.0.0.1:1/v1")
    assert_error(result, "ava-tasks also measures perplexities", "--backend transformers")


def test_eval_run_is_bound_to_its_backend(tmp_path, vllm_server):
    """An eval through the server, then the same folder with transformers: refused (caches never
    mix backends); the server's scores equal the in-process engine's in a folder of its own."""
    served, local = tmp_path / "served", tmp_path / "local"
    base = ("eval", "--model", "smollm2", "--benchmark", "opinionqa", "--limit", "2", "--no-progress")
    result = invoke(*base, "--out", str(served), "--backend", "openai", "--base-url", vllm_server.base_url,
                    "--served-model", "smollm2")
    assert result.exit_code == 0, result.output
    assert_error(invoke(*base, "--out", str(served)), "other settings", "openai:exact:smollm2|", "--restart")
    assert invoke(*base, "--out", str(local)).exit_code == 0
    a, b = (rows(d / "items" / "opinionqa.jsonl") for d in (served, local))
    assert a.keys() == b.keys()
    assert max(abs(x - y) for i in a for x, y in zip(a[i]["probs"], b[i]["probs"], strict=True)) <= 1e-4
    config = json.loads((served / "results.json").read_text())["run"]
    assert config["backend"] == "openai" and config["config"]["backend"]["base_url"] == vllm_server.base_url


def test_eval_server_dies_mid_chunk_then_resume(tmp_path, fault_proxy):
    """``ava eval``: the score cache keeps every chunk before the failure and the items the dying
    server finished within its chunk; the rerun asks the server only for the rest."""
    out = tmp_path / "run"
    args = ("eval", "--model", "smollm2", "--benchmark", "opinionqa", "--steer", "--limit", "1", "--no-progress",
            "--out", str(out), "--backend", "openai", "--base-url", fault_proxy.base_url, "--served-model", "smollm2",
            "--concurrency", "4", "--retries", "1")
    # the probe (3 requests), opinionqa's 1 prompt, the steering task's first chunk (32), 7 of its next
    fault_proxy.reset(die_after=3 + 1 + 32 + 7)
    assert_error(invoke(*args), f"server {fault_proxy.base_url}", "cannot connect", "rerun the same command")
    cached = len((out / "cache" / "scores.jsonl").read_text().splitlines())
    assert 1 + 32 + 7 - 4 <= cached <= 1 + 32 + 7  # at most the 4 in flight were lost
    fault_proxy.reset()
    result = invoke(*args)
    assert result.exit_code == 0, result.output
    total = sum(len((out / "items" / f"{t}.jsonl").read_text().splitlines()) for t in ("opinionqa", "opinionqa-steer"))
    assert total == 1 + 67
    assert fault_proxy.faults.completions <= 3 + total - cached  # only what was lost is asked again
