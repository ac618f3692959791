"""GPU check, scoring: OpinionQA's steering workload on a randomly initialised Llama-2-7B-shaped
model in bf16, three ways (plus ava without its prefix tree), one run, same prompts.

* naive   -- one forward pass per option, batch 1 (ava.models.reference, the published method);
* lm-eval -- lm-evaluation-harness 0.4.13's HFLM given strings (context, " A"/"A"), as a user would;
* ava     -- the letter engine (one pass per prompt, prefix tree, CUDA batch defaults).

For each: prompts/s, prompt tokens/s (the workload's tokens, the same for every method),
forwarded tokens/s, and the fraction of the card's bf16 peak the forward passes reach. Writes
the "scoring" section of $OUT/gpu-check.json (+ .md) after every step.
"""

from __future__ import annotations

import math
import os
import time

import gpu_common as g

SECTION = "scoring"


def main() -> None:
    budget = g.Budget(SECTION, 150)
    import torch
    from transformers import AutoTokenizer

    from ava.models.engine import EngineConfig, LetterEngine
    from scoring import opinionqa_requests

    dev = g.device()
    g.update(SECTION, {"status": "running", "shape": g.SHAPE, "device": dev})
    with g.step(SECTION, "card"):
        g.update("card", {**g.card(), "matmul_bf16_tflops_measured": g.measured_matmul_tflops()})
    folder, label = g.tokenizer_dir()
    tokenizer = AutoTokenizer.from_pretrained(folder)
    start = time.perf_counter()
    model = g.random_llama(len(tokenizer), tokenizer, dev, torch.bfloat16)
    g.sync()
    blocks, head = g.block_parameters(model), g.head_parameters(model)
    g.update(SECTION, {"model": {
        "shape": g.SHAPES[g.SHAPE], "vocab_size": len(tokenizer), "tokenizer": label, "dtype": "bf16",
        "parameters": sum(p.numel() for p in model.parameters()), "block_parameters": blocks,
        "init_s": round(time.perf_counter() - start, 1), "weights": "random (seed 0), built on the device",
    }})

    n_questions = int(os.environ.get("GPU_CHECK_QUESTIONS", 40 if g.SHAPE == "7b" else 2))
    requests = opinionqa_requests(n_questions)
    prompt_tokens = {r.id: len(tokenizer("".join(r.segments)).input_ids) for r in requests}
    g.update(SECTION, {"workload": {
        "prompts": len(requests), "questions": n_questions, "formats": "unsteered + 22 groups x qa,bio,portray",
        "mean_prompt_tokens": round(sum(prompt_tokens.values()) / len(requests), 1),
    }})
    engine = LetterEngine(model, tokenizer, EngineConfig())
    counter = g.ForwardCounter(model)
    peak = g.card().get("peak_bf16_tflops")
    scores: dict[str, dict[str, tuple[float, ...]]] = {}

    def timed(name: str, subset: list, run) -> None:
        """Warm up on two prompts, then time ``run(subset)`` and record its rates."""
        run(subset[:2])
        g.sync()
        counter.reset()
        start = time.perf_counter()
        out = run(subset)
        g.sync()
        seconds = time.perf_counter() - start
        scores[name] = out
        flops = counter.flops(blocks, head)
        row = {
            "prompts": len(subset), "seconds": round(seconds, 3), "prompts_per_s": round(len(subset) / seconds, 2),
            "prompt_tokens_per_s": round(sum(prompt_tokens[r.id] for r in subset) / seconds, 1),
            "forwarded_tokens_per_s": round(counter.real() / seconds, 1), "forward_calls": counter.calls,
            "padded_tokens": counter.computed, "tflops_per_s": round(flops / seconds / 1e12, 2),
            "fraction_of_peak": round(flops / seconds / 1e12 / peak, 4) if peak else None,
        }
        methods = _methods()
        methods[name] = row
        g.update(SECTION, {"methods": methods})

    from ava.models.reference import reference_score

    n_naive = int(os.environ.get("GPU_CHECK_NAIVE", 24 if g.SHAPE == "7b" else 6))
    sample = requests[:: max(1, len(requests) // n_naive)][:n_naive]
    with g.step(SECTION, "naive"):
        timed("naive (per option, batch 1)", sample,
              lambda rs: {s.id: s.logprobs for s in reference_score(engine, rs)})
    with g.step(SECTION, "ava"):
        timed("ava", requests, lambda rs: {s.id: s.logprobs for s in engine.score(rs)})
    flat = LetterEngine(model, tokenizer, EngineConfig(use_prefix_cache=False))
    if budget.left() > 30:
        with g.step(SECTION, "ava-flat"):
            timed("ava (no prefix tree)", requests, lambda rs: {s.id: s.logprobs for s in flat.score(rs)})
    subset = _lm_eval_subset(requests, budget)
    if subset:
        batch = int(os.environ.get("GPU_CHECK_LM_EVAL_BATCH", 32))
        with g.step(SECTION, "lm-eval"):
            timed("lm-eval 0.4.13 HFLM (strings)", subset, lambda rs: lm_eval_strings(model, tokenizer, rs, batch))
    counter.handle.remove()
    _accuracy(scores, sample)
    g.update(SECTION, {"status": "done", "seconds_used": round(budget.total - budget.left(), 1)})


def _methods() -> dict:
    import json

    data = json.loads(g.RESULTS.read_text()) if g.RESULTS.exists() else {}
    return data.get(SECTION, {}).get("methods", {})


def _lm_eval_subset(requests: list, budget: g.Budget) -> list:
    """As many prompts as lm-eval should finish in the time left (from the flat engine's rate,
    both one pass per prompt, with room for HFLM's own overhead); evenly spread."""
    left = budget.left() - 15
    if left <= 10:
        return []
    flat = _methods().get("ava (no prefix tree)") or _methods().get("ava")
    rate = flat["prompts_per_s"] * 0.3 if flat else 5.0
    n = min(len(requests), max(8, int(rate * left)))
    step = len(requests) / n
    return [requests[int(i * step)] for i in range(n)]


def lm_eval_strings(model, tokenizer, requests, batch_size: int) -> dict[str, tuple[float, ...]]:
    """lm-eval's HFLM on the strings a user would hand it: context = the whole prompt,
    continuation = each letter spelling ("A" and " A"); HFLM tokenises them itself."""
    from lm_eval.api.instance import Instance
    from lm_eval.models.huggingface import HFLM

    lm = HFLM(pretrained=model, tokenizer=tokenizer, batch_size=batch_size)
    instances, index = [], []
    for r, request in enumerate(requests):
        context = "".join(request.segments)
        for o, letter in enumerate(request.options):
            for spelling in (letter, " " + letter):
                instances.append(Instance("loglikelihood", doc={}, arguments=(context, spelling), idx=len(instances)))
                index.append((r, o))
    results = lm.loglikelihood(instances, disable_tqdm=True)
    values: list[list[list[float]]] = [[[] for _ in r.options] for r in requests]
    for (r, o), (logprob, _) in zip(index, results, strict=True):
        values[r][o].append(logprob)
    # a spelling pair that tokenises alike is one token: count it once (as the engine does)
    return {req.id: tuple(math.log(sum(math.exp(v) for v in set(per))) for per in values[r])
            for r, req in enumerate(requests)}


def _accuracy(scores: dict, sample: list) -> None:
    """Largest probability difference of each method against naive, on the naive sample."""
    from scoring import max_prob_diff

    naive = scores.get("naive (per option, batch 1)")
    if not naive:
        return
    methods = _methods()
    for name, got in scores.items():
        common = [r.id for r in sample if r.id in got]
        if common and name in methods:
            methods[name]["max_dp_vs_naive"] = max_prob_diff([naive[i] for i in common], [got[i] for i in common])
            methods[name]["compared_prompts"] = len(common)
    g.update(SECTION, {"methods": methods})


if __name__ == "__main__":
    main()
