"""GPU check: render $OUT/gpu-check.json as markdown tables (gpu-check.md), and fold the GPU
tests' results (pytest's junit XML and the values the tests measured) into the JSON.

    python3 scripts/gpu/gpu_report.py --tests JUNIT_XML MEASURED_JSON PYTEST_LOG
"""

from __future__ import annotations

import argparse
import json
import os
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

NAIVE, LM_EVAL, TRL = "naive (per option, batch 1)", "lm-eval 0.4.13 HFLM (strings)", "plain TRL SFTTrainer (LoRA)"


def render(data: dict[str, Any], path: Path) -> None:
    lines = ["# GPU check", ""]
    lines += _card(data.get("card", {}), data.get("setup", {}))
    lines += _tests(data.get("tests", {}))
    lines += _scoring(data.get("scoring", {}))
    lines += _training(data.get("training", {}))
    errors = {f"{section}/{name}": why for section, values in data.items() if isinstance(values, dict)
              for name, why in values.get("errors", {}).items()}
    if errors:
        lines += ["## Errors", "", *[f"* `{k}`: {v}" for k, v in sorted(errors.items())], ""]
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("\n".join(lines) + "\n")
    os.replace(tmp, path)


def _shape(shape: dict | None) -> str:
    if not shape:
        return "?"
    return (f"hidden {shape.get('hidden_size')}, {shape.get('num_hidden_layers')} layers, "
            f"{shape.get('num_attention_heads')} heads, MLP {shape.get('intermediate_size')}")


def _table(header: list[str], rows: list[list[Any]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join("" if v is None else str(v) for v in row) + " |" for row in rows]
    return out + [""]


def _card(card: dict, setup: dict) -> list[str]:
    out = []
    if setup:
        versions = ", ".join(f"{k} {v}" for k, v in setup.get("versions", {}).items())
        failed = [f"{k}: {v}" for k, v in setup.get("imports", {}).items() if v != "ok"]
        out += ["## Setup", "", f"Libraries: {versions}.", "", *[f"* import {f}" for f in failed], ""]
    if not card:
        return out
    header = ["device", "capability", "memory GiB", "torch", "CUDA", "transformers", "python",
              "bf16 peak TFLOP/s (data sheet)", "bf16 matmul TFLOP/s (measured, 8192^3)"]
    return out + ["## Device", ""] + _table(header, [[card.get("name"), card.get("capability"), card.get("memory_gib"),
                                                card.get("torch"), card.get("cuda"), card.get("transformers"),
                                                card.get("python"), card.get("peak_bf16_tflops"),
                                                card.get("matmul_bf16_tflops_measured")]])


def _tests(tests: dict) -> list[str]:
    if not tests:
        return []
    rows = [[name, t["outcome"], t["seconds"], t.get("message", "")] for name, t in tests.get("cases", {}).items()]
    out = ["## GPU tests (tests/gpu, `pytest -m gpu`)", ""] + _table(["test", "outcome", "s", "message"], rows)
    measured = tests.get("measured", {})
    if measured:
        out += _table(["measured", "value"], [[k, v] for k, v in sorted(measured.items())])
    return out


def _scoring(s: dict) -> list[str]:
    if not s:
        return []
    model, work = s.get("model", {}), s.get("workload", {})
    out = [f"## Scoring: OpinionQA steering workload, {s.get('shape')} shape, bf16 ({s.get('status')})", ""]
    if model:
        size = f"{model.get('parameters', 0) / 1e9:.2f} B parameters"
        blocks = f"{model.get('block_parameters', 0) / 1e9:.2f} B in the blocks"
        out += [f"Model: randomly initialised Llama, {_shape(model.get('shape'))}, vocab {model.get('vocab_size')} "
                f"({model.get('tokenizer')} tokenizer), {size} ({blocks}), built on the device in "
                f"{model.get('init_s')} s.", ""]
    if work:
        out += [f"Workload: {work.get('prompts')} prompts ({work.get('questions')} questions x "
                f"({work.get('formats')})), {work.get('mean_prompt_tokens')} tokens per prompt on average.", ""]
    methods = s.get("methods", {})
    base, lme = methods.get(NAIVE, {}).get("prompts_per_s"), methods.get(LM_EVAL, {}).get("prompts_per_s")
    rows = []
    for name, m in methods.items():
        rate = m.get("prompts_per_s")
        frac = m.get("fraction_of_peak")
        rows.append([name, m.get("prompts"), rate, m.get("prompt_tokens_per_s"), m.get("forwarded_tokens_per_s"),
                     f"{rate / base:.1f}" if base and rate else None, f"{rate / lme:.2f}" if lme and rate else None,
                     m.get("tflops_per_s"), f"{100 * frac:.1f}%" if frac is not None else None,
                     f"{m['max_dp_vs_naive']:.2e}" if "max_dp_vs_naive" in m else None])
    header = ["method", "prompts", "prompts/s", "prompt tokens/s", "forwarded tokens/s", "x naive", "x lm-eval",
              "TFLOP/s", "of bf16 peak", "max abs dp vs naive"]
    out += _table(header, rows)
    out += ["Prompt tokens/s: the workload's tokens (each prompt once) per second, comparable across methods; "
            "forwarded tokens/s: tokens the forward passes actually computed (naive repeats a prompt per option, "
            "the prefix tree computes shared runs once). FLOPs: 2 x block parameters per computed token (padding "
            "included) + 2 x head parameters per logit position; attention's score products are not counted.", ""]
    return out


def _training(t: dict) -> list[str]:
    if not t:
        return []
    methods = t.get("methods", {})
    trl = methods.get(TRL, {}).get("tokens_per_s")
    rows = [[name, m.get("global_step"), m.get("tokens"), m.get("train_runtime_s"), m.get("tokens_per_s"),
             f"{m['tokens_per_s'] / trl:.2f}" if trl and m.get("tokens_per_s") else None, m.get("train_loss")]
            for name, m in methods.items()]
    model = t.get("model", {})
    out = [f"## Training: LoRA, {t.get('shape')} shape, {t.get('steps')} steps of batch {t.get('batch')} "
           f"({t.get('status')})", ""]
    if model:
        out += [f"Model: randomly initialised Llama, {_shape(model.get('shape'))}, vocab {model.get('vocab_size')} "
                f"({model.get('tokenizer')} tokenizer); saved for ava's loader in {model.get('save_s')} s. "
                "tokens/s = non-padding tokens seen / the Trainer's train_runtime (same rows, settings, steps; "
                "one warm-up forward/backward before the first run).", ""]
    header = ["method", "steps", "tokens (non-padding)", "train_runtime s", "tokens/s", "x TRL", "train loss"]
    out += _table(header, rows)
    return out


def fold_tests(junit: Path, measured: Path, log: Path, results: Path) -> None:
    """Add the tests' outcomes and measured values to the results file, then re-render. Without
    the junit file (pytest killed at its time limit) the outcomes come from pytest's -v log."""
    cases: dict[str, dict[str, Any]] = {}
    if not junit.exists() and log.exists():
        for match in re.finditer(r"::(\S+) (PASSED|FAILED|SKIPPED|ERROR)", log.read_text(errors="replace")):
            cases[match[1]] = {"outcome": match[2].lower(), "seconds": None, "message": "from the log"}
        cases["(pytest)"] = {"outcome": "stopped", "seconds": None, "message": "no junit file: killed at its limit?"}
    if junit.exists():
        for case in ET.parse(junit).getroot().iter("testcase"):
            outcome, message = "passed", ""
            for tag in ("failure", "error", "skipped"):
                node = case.find(tag)
                if node is not None:
                    outcome = {"failure": "FAILED", "error": "ERROR", "skipped": "skipped"}[tag]
                    message = (node.get("message") or "").splitlines()[0][:200] if node.get("message") else ""
            cases[case.get("name", "?")] = {"outcome": outcome, "seconds": round(float(case.get("time", 0)), 1),
                                            "message": message.replace("|", "/")}
    data = json.loads(results.read_text()) if results.exists() else {}
    data["tests"] = {"cases": cases, "measured": json.loads(measured.read_text()) if measured.exists() else {}}
    tmp = results.with_name(results.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True))
    os.replace(tmp, results)
    render(data, results.with_name("gpu-check.md"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tests", nargs=3, type=Path, metavar=("JUNIT_XML", "MEASURED_JSON", "PYTEST_LOG"))
    args = parser.parse_args()
    results = Path(os.environ.get("OUT") or "/tmp/gpu-out") / "gpu-check.json"
    if args.tests:
        fold_tests(*args.tests, results)
    elif results.exists():
        render(json.loads(results.read_text()), results.with_name("gpu-check.md"))


if __name__ == "__main__":
    main()
