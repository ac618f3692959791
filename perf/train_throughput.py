"""Training throughput of ``ava train`` against a plain TRL SFT run of the same data, and generation.

1. **Training tokens/s.** The same seeded sample of instruction pairs (``--samples``), the same
   model, LoRA recipe, batch size and ``max_length``, one epoch each:

   * ``plain TRL`` -- what a TRL user writes: the Parquet parts read into Python rows, a
     ``datasets.Dataset.from_list`` of prompt-completion rows, ``SFTTrainer`` with its defaults
     (TRL tokenises, cuts at ``max_length`` from the right, pads every batch to its longest row);
   * ``ava`` -- ``ava train``'s code path (memory-mapped split, its own tokenisation with the
     middle-of-prompt cut) under each batching setting given in ``--settings``: ``padded`` (TRL's
     collator as above), ``padding_free`` (each batch one row, no pad tokens; attention kept inside
     each pair by the position ids), ``group_by_length`` (batches of similar length), ``packing``
     (TRL's best-fit-decreasing packing into ``max_length`` rows; changes how many pairs a step sees),
     ``arm`` (padded, counting non-padding tokens as ``ava experiment`` arms do for their budget).

   Tokens/s counts the real (non-padding) tokens of the epoch over the Trainer's ``train_runtime``.
2. **Generation** of ``ava-tasks`` (batched, left-padded greedy decoding) vs one prompt at a time,
   on the same prompts; the outputs must be identical.

Usage (``--data``: an ``ava build`` output folder; time it on a quiet machine):

    OMP_NUM_THREADS=1 python perf/train_throughput.py --data runs/ads-build --model smollm2 \
        --samples 48 --batch 8 --max-length 512 --settings padded,padding_free,group_by_length
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

SETTINGS = {
    "padded": {},
    "padding_free": {"padding_free": True},
    "group_by_length": {"train_sampling_strategy": "group_by_length"},
    "packing": {"packing": True},
    # an experiment arm's run: padded, plus the Trainer's count of non-padding tokens (the budget
    # every arm states; ava.experiments.arm_steps.TOKENS)
    "arm": {"include_num_input_tokens_seen": "non_padding"},
}


def _common(args: argparse.Namespace) -> dict[str, Any]:
    common = {"per_device_train_batch_size": args.batch, "gradient_accumulation_steps": 1, "num_train_epochs": 1,
              "max_steps": -1, "save_strategy": "no", "logging_steps": 1000, "disable_tqdm": True,
              "warmup_steps": 0, "report_to": "none"}
    if args.bf16:
        common.update({"bf16": True, "use_cpu": True})
    return common


def ava_rate(args: argparse.Namespace, setting: str) -> dict[str, Any]:
    """Tokens/s of ``ava train`` (LoRA) under one batching setting."""
    from ava.training.config import load_config
    from ava.training.trainer import train

    with tempfile.TemporaryDirectory() as tmp:
        cfg = load_config(args.model, args.data, Path(tmp) / "run", overrides={"limit": args.samples},
                          sft_overrides={**_common(args), "max_length": args.max_length, **SETTINGS[setting]})
        outcome = train(cfg)
    rule = outcome.card["data"]["length_rule"]
    runtime = float(outcome.metrics["train_runtime"])
    return {"method": f"ava ({setting})", "tokens": rule["n_tokens"], "rows": rule["n_rows"], "seconds": runtime,
            "steps": outcome.card["result"]["global_step"], "tok_s": rule["n_tokens"] / runtime,
            "note": f"{rule['n_prompt_truncated']} prompt(s) cut"}


def plain_trl_rate(args: argparse.Namespace) -> dict[str, Any]:
    """Tokens/s of a plain TRL SFT run on the same pairs (the tool a user would pick)."""
    import pyarrow.parquet as pq
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer, set_seed
    from trl import SFTConfig, SFTTrainer

    from ava.instructions.dataset import split_files
    from ava.instructions.prompt_format import training_record
    from ava.instructions.selection import stratified_indices
    from ava.models.loading import resolve_model, weights_dir
    from ava.training.config import load_config

    recipe = load_config(args.model, args.data, "unused")
    rows = [r for path in split_files(args.data, "train") for r in pq.read_table(path).to_pylist()]
    chosen = stratified_indices([r["task"] for r in rows], args.samples, seed=0)
    source = weights_dir(resolve_model(args.model))
    tokenizer = AutoTokenizer.from_pretrained(source)
    data = Dataset.from_list([training_record(tokenizer, rows[i]["prompt"], rows[i]["response"]) for i in chosen])
    set_seed(0)
    model = AutoModelForCausalLM.from_pretrained(source)
    sft = {k: v for k, v in recipe.sft.items() if k != "packing"}  # the recipe, as ava's runs get it
    sft.update(_common(args), max_length=args.max_length, seed=0, dataloader_pin_memory=False)
    sft.setdefault("bf16", False)
    with tempfile.TemporaryDirectory() as tmp:
        trainer = SFTTrainer(model=model, args=SFTConfig(output_dir=tmp, **sft), train_dataset=data,
                             processing_class=tokenizer, peft_config=LoraConfig(**recipe.lora))
        result = trainer.train()
    tokens = sum(len(ids) for ids in trainer.train_dataset["input_ids"])
    runtime = float(result.metrics["train_runtime"])
    return {"method": "plain TRL SFT", "tokens": tokens, "rows": len(trainer.train_dataset), "seconds": runtime,
            "steps": trainer.state.global_step, "tok_s": tokens / runtime,
            "note": f"{len(data) - len(trainer.train_dataset)} pair(s) dropped by TRL"}


def generation_throughput(model: str, data: Path, n: int, max_new_tokens: int, batch: int) -> tuple[float, float, bool]:
    from ava.evals.tasks.ava_tasks import generate
    from ava.instructions.dataset import read_split
    from ava.instructions.selection import stratified_sample
    from ava.models import load_model

    prompts = [s.prompt for s in stratified_sample(read_split(data, "test_temporal"), n, seed=0)]
    lm, tok = load_model(model)
    if tok.pad_token_id is None:
        tok.pad_token = tok.eos_token
    generate(lm, tok, prompts[:1], 4, 1)  # warm-up
    rates, outputs = [], []
    for size in (batch, 1):
        start = time.perf_counter()
        out = generate(lm, tok, prompts, max_new_tokens, size)
        elapsed = time.perf_counter() - start
        rates.append(sum(len(tok(o, add_special_tokens=False)["input_ids"]) for o in out) / elapsed)
        outputs.append(out)
    return rates[0], rates[1], outputs[0] == outputs[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="ava data build-ads output folder")
    parser.add_argument("--model", default="smollm2")
    parser.add_argument("--samples", type=int, default=48, help="instruction pairs per run (one epoch)")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--max-length", type=int, default=512)
    parser.add_argument("--settings", default="padded,padding_free,group_by_length,packing")
    parser.add_argument("--bf16", action="store_true", help="bf16 autocast on CPU (needs avx512_bf16/AMX to pay)")
    parser.add_argument("--generation", action="store_true", help="also time batched vs one-by-one generation")
    parser.add_argument("--prompts", type=int, default=16)
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--gen-batch", type=int, default=8)
    args = parser.parse_args()

    import torch

    rows = [plain_trl_rate(args)] + [ava_rate(args, s) for s in args.settings.split(",") if s]
    base = rows[0]["tok_s"]
    print(f"model {args.model}, {os.cpu_count()} CPU(s), torch threads {torch.get_num_threads()}, "
          f"{args.samples} pairs, batch {args.batch}, max_length {args.max_length}, bf16 {args.bf16}")
    print(f"{'method':<24} {'steps':>5} {'tokens':>7} {'seconds':>8} {'tokens/s':>9} {'vs TRL':>7}  note")
    for r in rows:
        print(f"{r['method']:<24} {r['steps']:>5} {r['tokens']:>7} {r['seconds']:>8.1f} {r['tok_s']:>9.1f} "
              f"{r['tok_s'] / base:>6.2f}x  {r['note']}")
    report: dict[str, Any] = {"training": rows}
    if args.generation:
        batched, single, same = generation_throughput(args.model, args.data, args.prompts, args.max_new_tokens,
                                                      args.gen_batch)
        print(f"generation new tokens/s ({args.prompts} prompts): batched x{args.gen_batch} {batched:.1f}, "
              f"one by one {single:.1f} ({batched / single:.2f}x); identical: {same}")
        report["generation"] = {"batched_tok_s": batched, "single_tok_s": single, "identical": same}
    print(json.dumps(report))


if __name__ == "__main__":
    main()
