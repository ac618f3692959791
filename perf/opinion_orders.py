"""What option orders cost: OpinionQA with ``--set orders=4`` against ``orders=1``, in one run.

* orders=1 -- the published protocol: one prompt per question;
* orders=4 -- four cyclic orders per question (an ordinal scale: the scale both ways and shifted),
              one run: a question's prompts share the chat header and the question text, so the
              engine's prefix tree computes that prefix once per question, not once per order;
* naive    -- four separate passes of one order each (what a user without the setting would run):
              4 x the orders=1 time, every shared prefix recomputed per pass.

Each pass scores into a fresh run directory (nothing cached) with the same model loaded once.
The issue's bound: orders=4 costs at most 4x orders=1 (the prompts: 4x, minus the 2-option
questions, which have only 2 orders). Prints seconds, prompts, prompts/s and the ratios; also the
letter prior's position bias of both runs. Usage (timings under the exclusive CPU lock):

    OMP_NUM_THREADS=2 flock -x /tmp/ava-cpu.lock .venv/bin/python perf/opinion_orders.py --limit 40
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="smollm2")
    parser.add_argument("--limit", type=int, default=40, help="first N questions (default 40)")
    parser.add_argument("--orders", type=int, default=4)
    parser.add_argument("--plain", action="store_true", help="plain framing (default: chat, as --framing auto)")
    args = parser.parse_args()

    from rich.console import Console
    from rich.table import Table

    from ava.evals.runner import run_tasks
    from ava.evals.task import TaskOptions
    from ava.evals.tasks.opinionqa import make_tasks
    from ava.models.scorer import load_scorer

    scorer = load_scorer(args.model, chat=not args.plain)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        (warm,) = make_tasks(TaskOptions(limit=2))  # load and warm the engine before anything is timed
        run_tasks([warm], scorer, Path(tmp) / "warm-up", progress=False)
        for k in (1, args.orders):
            (task,) = make_tasks(TaskOptions(limit=args.limit, settings={"orders": str(k)}))
            t0 = time.perf_counter()
            res = run_tasks([task], scorer, Path(tmp) / f"orders{k}", progress=False)["tasks"]["opinionqa"]
            wall = time.perf_counter() - t0
            info = res["task_info"]
            rows.append((k, info["n_items"], info["scoring_s"], wall, res["details"]["letter_prior"]["position_bias"],
                         res["headline"]["representativeness"]))
    (k1, n1, s1, w1, b1, r1), (k4, n4, s4, w4, b4, r4) = rows
    table = Table(title=f"OpinionQA, first {args.limit} questions, {args.model} "
                        f"({'plain' if args.plain else 'chat'}), load {os.getloadavg()[0]:.1f}")
    for col in ("method", "prompts", "scoring s", "wall s", "prompts/s", "x orders=1 (scoring)",
                "position bias", "representativeness"):
        table.add_column(col)
    table.add_row("orders=1", str(n1), f"{s1:.2f}", f"{w1:.2f}", f"{n1 / s1:.2f}", "1.00", f"{b1:.3f}", f"{r1:.3f}")
    table.add_row(f"orders={k4}", str(n4), f"{s4:.2f}", f"{w4:.2f}", f"{n4 / s4:.2f}", f"{s4 / s1:.2f}",
                  f"{b4:.3f}", f"{r4:.3f}")
    table.add_row(f"naive ({k4} passes)", str(k4 * n1), f"{k4 * s1:.2f}", f"{k4 * w1:.2f}", f"{n1 / s1:.2f}",
                  f"{k4:.2f}", "", "")
    Console(width=160).print(table)
    verdict = "within" if s4 <= k4 * s1 else "OVER"
    print(f"orders={k4} scoring cost {s4 / s1:.2f}x orders=1 ({verdict} the {k4}x bound); "
          f"prompts {n4 / n1:.2f}x")


if __name__ == "__main__":
    main()
