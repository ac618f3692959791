"""What ``--expression sampled`` costs per question: ava's sampler against transformers' own, in one run.

K answers (default 20) at temperature 1, at most 6 tokens each, to the first N OpinionQA
questions as ``sampled`` asks them, each question with its own seed:

* naive        -- K separate ``generate`` calls of one sample each (what a loop over samples does);
* transformers -- ``generate(do_sample=True, num_return_sequences=K)`` after
                  ``torch.manual_seed(seed)``, one question per call: the tool a user would
                  pick, and ava's sampler before ``draws`` v2. It repeats the prompt K times
                  *before* the forward pass, so every sample pays for its own prefill;
* ava          -- ``OpinionTextTask.generate_with`` (``draws`` v2): the chunk's questions
                  batched, each prompt run once and its key/value cache repeated for the K
                  samples, each question drawing from its own generator.

Prints seconds per question, the ratios to ava and how many questions got exactly the same K
replies as transformers (the same draws: one prefill and the question's own generator change
the cost, not the answers). Usage (under the exclusive CPU lock for a quiet number):

    OMP_NUM_THREADS=1 flock -x /tmp/ava-cpu.lock .venv/bin/python perf/sampled_draws.py --limit 16
"""

from __future__ import annotations

import argparse
import os
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="smollm2")
    parser.add_argument("--limit", type=int, default=16, help="first N questions (default 16)")
    parser.add_argument("--naive-limit", type=int, default=4, help="questions for the naive loop (default 4)")
    parser.add_argument("--chat", action="store_true", help="chat framing (default: plain)")
    args = parser.parse_args()

    import torch
    from rich.console import Console
    from rich.table import Table

    from ava.evals.task import TaskOptions
    from ava.evals.tasks.expression import templates
    from ava.evals.tasks.opinion_text import question_seed
    from ava.evals.tasks.opinionqa import make_tasks
    from ava.models.scorer import load_scorer

    scorer = load_scorer(args.model, chat=args.chat)
    model, encoder = scorer.engine.model, scorer.engine.encoder
    tokenizer = encoder.tokenizer
    (task,) = make_tasks(TaskOptions(limit=args.limit, settings={"expression": "sampled"}))
    items = task.items()
    k, tokens = task.expression.samples, int(templates()["sampled"]["max_new_tokens"])
    seeds = [question_seed(task.expression.seed, i.id) for i in items]
    encoded = encoder.tokenize([encoder.generation_text(i.prompt) for i in items])

    def reference(ids: list[int], seed: int, per_call: int) -> list[str]:
        """transformers' own sampling of K answers, ``per_call`` samples a call."""
        torch.manual_seed(seed)
        out: list[str] = []
        x = torch.tensor([ids])
        with torch.inference_mode():
            for _ in range(k // per_call):
                gen = model.generate(input_ids=x, attention_mask=torch.ones_like(x), max_new_tokens=tokens,
                                     do_sample=True, num_return_sequences=per_call, temperature=1.0, top_k=0,
                                     top_p=1.0, pad_token_id=scorer.engine.pad_id)
                out += [tokenizer.decode(g[len(ids):], skip_special_tokens=True) for g in gen]
        return out

    task.generate_with(scorer, items[:1])  # warm the model before anything is timed
    t0 = time.perf_counter()
    ours = [r["replies"] for r in task.generate_with(scorer, items)]
    t_ava = (time.perf_counter() - t0) / len(items)
    t0 = time.perf_counter()
    theirs = [reference(ids, seed, k) for ids, seed in zip(encoded, seeds, strict=True)]
    t_hf = (time.perf_counter() - t0) / len(items)
    n_naive = min(args.naive_limit, len(items))
    t0 = time.perf_counter()
    for ids, seed in zip(encoded[:n_naive], seeds[:n_naive], strict=True):
        reference(ids, seed, 1)
    t_naive = (time.perf_counter() - t0) / max(1, n_naive)

    same = sum(a == b for a, b in zip(ours, theirs, strict=True))
    table = Table(title=f"sampled, K = {k}, first {len(items)} OpinionQA questions, {args.model} "
                        f"({'chat' if args.chat else 'plain'}), {torch.get_num_threads()} thread(s), "
                        f"load {os.getloadavg()[0]:.1f}")
    for col in ("method", "questions", "s / question", "x ava", "replies = transformers'"):
        table.add_column(col)
    table.add_row("naive (K calls of 1 sample)", str(n_naive), f"{t_naive:.2f}", f"{t_naive / t_ava:.1f}", "-")
    table.add_row("transformers (num_return_sequences)", str(len(items)), f"{t_hf:.2f}", f"{t_hf / t_ava:.1f}",
                  "(reference)")
    table.add_row("ava (draws v2)", str(len(items)), f"{t_ava:.2f}", "1.0", f"{same} of {len(items)} questions")
    Console().print(table)


if __name__ == "__main__":
    main()
