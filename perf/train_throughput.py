"""Training and generation throughput on this machine, each against its naive alternative.

1. Tokens/s of LoRA training (``ava train``'s code path, TRL SFT) vs full fine-tuning of the same
   model on the same batches: the ratio says what LoRA buys here.
2. Generation throughput of ``ava-tasks`` (batched, left-padded greedy decoding) vs one prompt
   at a time, on the same prompts; the outputs must be identical.

Usage (``--data``: an ``ava build`` output folder):

    nice .venv/bin/python benchmarks/train_throughput.py --data runs/ads-build --model smollm2
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def train_tokens_per_second(model: str, data: Path, method: str, steps: int, batch: int, max_length: int) -> float:
    from ava.training.config import load_config
    from ava.training.trainer import train

    with tempfile.TemporaryDirectory() as tmp:
        cfg = load_config(
            model, data, Path(tmp) / "run", method=method, overrides={"limit": steps * batch},
            sft_overrides={"max_steps": steps, "per_device_train_batch_size": batch, "gradient_accumulation_steps": 1,
                           "max_length": max_length, "logging_steps": steps, "save_strategy": "no",
                           "include_num_input_tokens_seen": "non_padding", "disable_tqdm": True},
        )
        outcome = train(cfg)
    tokens = outcome.log_history[-1].get("num_input_tokens_seen") or outcome.metrics.get("num_input_tokens_seen")
    if not tokens:
        tokens = max(h.get("num_input_tokens_seen", 0) for h in outcome.log_history)
    return float(tokens) / float(outcome.metrics["train_runtime"])


def generation_throughput(model: str, data: Path, n: int, max_new_tokens: int, batch: int) -> tuple[float, float, bool]:
    from ava.evals.tasks.ava_tasks import generate
    from ava.models import load_model
    from ava.training.data import read_split, stratified_sample

    samples = stratified_sample(read_split(data, "test_temporal"), n, seed=0)
    prompts = [s.prompt for s in samples]
    lm, tok = load_model(model)
    if tok.pad_token_id is None:
        tok.pad_token = tok.eos_token
    generate(lm, tok, prompts[:1], 4, 1)  # warm-up
    rates, outputs = [], []
    for size in (batch, 1):
        start = time.perf_counter()
        out = generate(lm, tok, prompts, max_new_tokens, size)
        elapsed = time.perf_counter() - start
        new_tokens = sum(len(tok(o, add_special_tokens=False)["input_ids"]) for o in out)
        rates.append(new_tokens / elapsed)
        outputs.append(out)
    return rates[0], rates[1], outputs[0] == outputs[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="ava build output folder")
    parser.add_argument("--model", default="smollm2")
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--prompts", type=int, default=16)
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--gen-batch", type=int, default=8)
    args = parser.parse_args()

    lora = train_tokens_per_second(args.model, args.data, "lora", args.steps, args.batch, args.max_length)
    full = train_tokens_per_second(args.model, args.data, "full", args.steps, args.batch, args.max_length)
    batched, single, same = generation_throughput(
        args.model, args.data, args.prompts, args.max_new_tokens, args.gen_batch
    )
    rows = [
        ("training tokens/s (non-padding)", "LoRA", "full fine-tuning", lora, full),
        (f"generation new tokens/s ({args.prompts} prompts)", f"batched x{args.gen_batch}", "one by one",
         batched, single),
    ]
    print(f"model {args.model}, {os.cpu_count()} CPU(s), torch threads {__import__('torch').get_num_threads()}")
    print(f"{'measure':<40} {'method':<14} {'rate':>9}   {'naive':<18} {'rate':>9}   {'ratio':>6}")
    for name, ours, naive, a, b in rows:
        print(f"{name:<40} {ours:<14} {a:>9.1f}   {naive:<18} {b:>9.1f}   {a / b:>5.2f}x")
    print(f"batched outputs identical to one-by-one: {same}")
    print(json.dumps({"lora_tok_s": lora, "full_tok_s": full, "gen_batched_tok_s": batched,
                      "gen_single_tok_s": single, "identical": same}))


if __name__ == "__main__":
    main()
