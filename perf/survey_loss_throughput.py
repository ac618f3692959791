"""Time one optimiser step of the survey loss against the naive ways, and a behaviour SFT step.

Every row takes the same seeded batch of real survey prompts (bundled OpinionQA-XL, disjoint from
OpinionQA, the steering personas), the same LoRA model and AdamW, and times forward + backward +
step (median of ``--steps`` after one warm-up):

* ``ava survey loss``: one forward per prompt, left-padded, the LM head on the answer position only
  (``logits_to_keep=1``), a log-softmax over the option letters (:mod:`ava.training.survey_loss`);
* ``full-vocab softmax (SubPOP)``: one forward with logits at every position, a softmax over the
  whole vocabulary everywhere, the answer position's option tokens picked and renormalised, as
  SubPOP's training loop does;
* ``one forward per option``: each option scored by its own forward of prompt + letter (the way a
  multiple-choice log-likelihood is often computed), K forwards per prompt, one spelling per letter
  (so its loss differs: it reads another distribution than the scorer);
* ``behaviour SFT step``: the causal-LM cross-entropy (TRL's loss) on the same token rows, each
  prompt followed by its most likely letter, i.e. same batch and length.

The first two losses agree (printed); only the cost differs.

    OMP_NUM_THREADS=2 flock -x /tmp/ava-cpu.lock python perf/survey_loss_throughput.py --model smollm2 --batch 8
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def _examples(n: int, seed: int) -> list[Any]:
    from ava.evals.prompts.personas import opinionqa_personas
    from ava.evals.tasks.opinion_items import make_request
    from ava.surveys import load_benchmark
    from ava.training.survey_data import survey_examples

    examples, _ = survey_examples(load_benchmark("opinionqa-xl"), load_benchmark("opinionqa"), opinionqa_personas(),
                                  make_request, seed=seed, limit=n)
    return examples


def _subpop_loss(model: Any, batch: dict[str, Any]) -> Any:
    """Full-vocabulary softmax at every position, then the answer position's letters (SubPOP's way)."""
    import torch

    from ava.training.survey_loss import forward_kl

    position_ids = (batch["attention_mask"].cumsum(-1) - 1).clamp(min=0)
    logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                   position_ids=position_ids).logits.float()
    probs = torch.softmax(logits, dim=-1)[:, -1, :]
    ids, mask = batch["letter_ids"], batch["option_mask"]
    b, k, s = ids.shape
    picked = probs.gather(1, ids.clamp(min=0).reshape(b, k * s)).reshape(b, k, s) * (ids >= 0)
    q = picked.sum(-1) * mask
    q = q / q.sum(-1, keepdim=True)
    log_q = torch.log(q + 1e-8)
    return forward_kl(batch["target"], log_q).mean()


def _per_option_loss(model: Any, rows: list[dict[str, Any]], pad_id: int) -> Any:
    """Each option's letter scored by its own forward of prompt + letter (first spelling)."""
    import torch

    from ava.training.survey_loss import forward_kl

    seqs, index = [], []
    for i, r in enumerate(rows):
        for j, spelled in enumerate(r["letter_ids"]):
            seqs.append(r["input_ids"] + [spelled[0]])
            index.append((i, j))
    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), pad_id)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for n, s in enumerate(seqs):
        ids[n, width - len(s):], mask[n, width - len(s):] = torch.tensor(s), 1
    position_ids = (mask.cumsum(-1) - 1).clamp(min=0)
    logp = torch.log_softmax(model(input_ids=ids, attention_mask=mask, position_ids=position_ids).logits[:, -2].float(),
                             dim=-1)
    k = max(len(r["target"]) for r in rows)
    option_lp = torch.full((len(rows), k), float("-inf"))
    target = torch.zeros((len(rows), k))
    for n, (i, j) in enumerate(index):
        option_lp[i, j] = logp[n, seqs[n][-1]]
        target[i, j] = rows[i]["target"][j]
    return forward_kl(target, torch.log_softmax(option_lp, dim=-1)).mean()


def _sft_batch(rows: list[dict[str, Any]], pad_id: int) -> dict[str, Any]:
    from ava.training.survey_batches import collate

    sft = [{"kind": 0, "input_ids": r["input_ids"] + [r["letter_ids"][0][0]],
            "labels": [-100] * len(r["input_ids"]) + [r["letter_ids"][0][0]]} for r in rows]
    return collate(sft, pad_id)


def _time(step: Callable[[], Any], model: Any, n: int) -> tuple[float, float]:
    import torch

    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=0.0)  # the same work, unchanged weights: losses comparable
    times, loss = [], float("nan")
    for i in range(n + 1):
        t0 = time.perf_counter()
        out = step()
        out.backward()
        opt.step()
        opt.zero_grad()
        if i:  # the first step warms up
            times.append(time.perf_counter() - t0)
        loss = float(out.detach())
    return statistics.median(times), loss


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    import torch
    from peft import LoraConfig, get_peft_model

    from ava.models import load_model
    from ava.training.survey_batches import collate
    from ava.training.survey_loss import encode_examples, survey_loss

    torch.manual_seed(args.seed)
    model, tok = load_model(args.model)
    model = get_peft_model(model, LoraConfig(r=16, lora_alpha=32, lora_dropout=0.0, target_modules="all-linear"))
    model.train()
    rows, info = encode_examples(_examples(args.batch, args.seed), tok, False, None)
    pad_id = next((t for t in (tok.pad_token_id, tok.eos_token_id) if t is not None), 0)
    batch, sft = collate(rows, pad_id), _sft_batch(rows, pad_id)
    n_options = sum(len(r["target"]) for r in rows)
    methods = [
        ("ava survey loss", lambda: survey_loss(model, batch), f"{len(rows)} forwards, LM head on 1 position"),
        ("full-vocab softmax (SubPOP)", lambda: _subpop_loss(model, batch), "LM head + softmax at every position"),
        ("one forward per option", lambda: _per_option_loss(model, rows, pad_id), f"{n_options} forwards"),
        ("behaviour SFT step", lambda: model(**sft).loss, "causal-LM CE, same rows + 1 letter"),
    ]
    print(f"model {args.model}, torch threads {torch.get_num_threads()}, batch {len(rows)}, "
          f"{info['n_tokens']} prompt tokens (max {info['max_length_seen']}), median of {args.steps} steps")
    print(f"{'method':30s} {'s/step':>8s} {'vs ava':>7s} {'loss':>8s}  note")
    base = None
    for name, step, note in methods:
        seconds, loss = _time(step, model, args.steps)
        base = base or seconds
        print(f"{name:30s} {seconds:8.3f} {seconds / base:6.2f}x {loss:8.4f}  {note}")


if __name__ == "__main__":
    main()
