"""A full OpinionQA representativeness pass: ava's runner vs the naive method, in one run.

* naive -- one forward pass per option, batch 1 (how the published scripts score), on an
           evenly spaced sample of the same prompts (a full naive pass takes ~N_options x longer);
* ava   -- ``run_tasks`` on every OpinionQA question: the letter engine (one pass per prompt,
           sorted batches), the cache, the metrics with 1,000 bootstrap resamples, and the
           run directory with its tables and plots (a fresh directory: nothing cached).

Prints prompts/s for each, the ratio, and the largest probability difference between the
two on the sample. Usage:

    python perf/eval_opinionqa.py [--model smollm2] [--naive-sample 40] [--data PATH] [--limit N]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path


def max_prob_diff(a, b) -> float:
    return max(abs(x - y) for sa, sb in zip(a, b, strict=True) for x, y in zip(sa.probs, sb.probs, strict=True))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="smollm2")
    parser.add_argument("--naive-sample", type=int, default=40, help="prompts scored by the naive method")
    parser.add_argument("--data", default=None, help="survey data (default: ava.surveys' default location)")
    parser.add_argument("--limit", type=int, default=None, help="first N questions only (default: all)")
    args = parser.parse_args()

    from rich.console import Console
    from rich.table import Table

    from ava.evals.runner import run_tasks
    from ava.evals.tables import print_headline
    from ava.evals.task import TaskOptions
    from ava.evals.tasks.opinionqa import make_tasks
    from ava.models.reference import reference_score
    from ava.models.scorer import load_scorer

    (task,) = make_tasks(TaskOptions(limit=args.limit, data=args.data))
    items = task.items()
    scorer = load_scorer(args.model)
    engine = scorer.engine
    step = max(1, len(items) // args.naive_sample)
    sample = [item.request for item in items[::step][: args.naive_sample]]
    engine.score(sample[:4])  # warm-up (allocator, tokenizer caches)

    print(f"naive: {len(sample)} prompts, one forward pass per option ...", file=sys.stderr)
    t0 = time.perf_counter()
    naive = reference_score(engine, sample)
    t_naive = time.perf_counter() - t0
    print(f"naive: {len(sample) / t_naive:.2f} prompts/s; now the full pass", file=sys.stderr)

    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        results = run_tasks([task], scorer, Path(tmp) / "run", config={"model": args.model, "limit": args.limit})
        t_full = time.perf_counter() - t0
    info = results["tasks"][task.name]["task_info"]
    ours = {s.id: s for s in engine.score(sample)}
    n_options = sum(len(r.options) for r in sample) / len(sample)

    naive_rate = len(sample) / t_naive
    full_rate = info["n_items"] / t_full
    scoring_rate = info["n_items"] / info["scoring_s"]
    table = Table(
        title=f"{args.model}: OpinionQA representativeness pass, {info['n_items']} prompts "
        f"(naive on {len(sample)}, {n_options:.1f} options per prompt)"
    )
    for col in ("method", "prompts", "prompts/s", "x naive", "max |dp| vs naive"):
        table.add_column(col, justify="right")
    table.add_row("naive (per option, batch 1)", str(len(sample)), f"{naive_rate:.3g}", "1.0", "0")
    diff = max_prob_diff(naive, [ours[r.id] for r in sample])
    table.add_row("ava scoring only", str(info["n_items"]), f"{scoring_rate:.3g}", f"{scoring_rate / naive_rate:.1f}",
                  f"{diff:.1e}")
    table.add_row("ava full pass (score + metrics + outputs)", str(info["n_items"]), f"{full_rate:.3g}",
                  f"{full_rate / naive_rate:.1f}", f"{diff:.1e}")
    console = Console(width=120)
    console.print(table)
    print_headline(results, title=f"{args.model} on OpinionQA")


if __name__ == "__main__":
    main()
