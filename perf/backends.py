"""Scoring through a server vs in process: exactness, coverage and speed of every route.

Scores OpinionQA's real steering workload (the first ``--questions`` questions of the
500-question steering set, unsteered and under 22 groups x QA / BIO / PORTRAY personas, plain
framing, built by the product's own ``opinionqa`` task, as in perf/scoring.py) with ``smollm2``
(fp32) in one run:

* ava in process -- the letter engine (transformers, prefix tree); the reference here;
* server, exact (chosen ids) -- one request per prompt asking vLLM for the letters' own
  log-probabilities at the next position (``logprob_token_ids``);
* server, exact (top-k + echo) -- the route for servers without chosen ids: the next token's
  top-20, then one echo request (prompt + letter, ``echo`` + ``logprobs``) per spelling missed;
* server, exact (echo only) -- lm-eval's ``local-completions`` route: one echo request per
  spelling (timed on ``--echo-sample`` prompts: it is slow);
* server, top-k mode -- the next token's top-20 only, missing letters filled by the OpinionQA
  rule; its covered mass and error are reported.

The server is vLLM's CPU build (``make vllm-server``) launched here as the tests launch it
(tests/servers.py: fp32, ``--enforce-eager``, 127.0.0.1), with its prefix cache reset before
every method so that no method reuses another's work, and paused while the in-process engine
is timed. ``--modes quiet,busy`` measures on the
machine as it is and again with a background process burning one core (perf/scoring.py's
``busy_core``). Prints one table per mode: prompts/s, requests per prompt, x in-process, max
|dp| against in-process, and for top-k the covered mass and letters filled. Usage:

    python perf/backends.py [--questions 4] [--modes quiet,busy] [--echo-sample 24] [--concurrency 16]
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "perf"), str(ROOT / "tests")]

from scoring import busy_core, max_prob_diff, opinionqa_requests  # noqa: E402
from servers import launch  # noqa: E402


class Counting:
    """Counts the HTTP requests a transport sends (requests per prompt)."""

    def __init__(self, transport) -> None:
        self.n = 0
        post = transport.post

        def counted(call):
            self.n += 1
            return post(call)

        transport.post = counted


def server_scorer(base_url: str, mode: str, top_k: int, concurrency: int, chosen: bool):
    from ava.models.backends.factory import load_backend_scorer
    from ava.models.backends.settings import BackendSettings
    from ava.models.options import ModelOptions

    where = BackendSettings("openai", mode=mode, base_url=base_url, served_model="smollm2", top_k=top_k,
                            min_coverage=0.0, concurrency=concurrency)
    scorer = load_backend_scorer(ModelOptions("smollm2"), where)
    return scorer, chosen


def run_server(scorer, chosen: bool, requests, base_url: str):
    """(items, seconds, requests sent) for one method, prefix cache reset, probe not timed."""
    import requests as http

    scorer.check(requests[0])
    scorer.source.chosen_ids = scorer.source.chosen_ids and chosen
    http.post(base_url.removesuffix("/v1") + "/reset_prefix_cache", timeout=60).raise_for_status()
    counter = Counting(scorer.source.transport)
    start = time.perf_counter()
    items = scorer.score(requests)
    return items, time.perf_counter() - start, counter.n


def measure(engine_scorer, requests, echo_sample, server, args):
    """One row per method; the server is paused (SIGSTOP) while the in-process engine is timed,
    so that its idle processes take no CPU from it."""
    base_url = server.base_url
    os.killpg(server.proc.pid, signal.SIGSTOP)
    try:
        start = time.perf_counter()
        ref = engine_scorer.score(requests)
        t_ref = time.perf_counter() - start
    finally:
        os.killpg(server.proc.pid, signal.SIGCONT)
    ref_by_id = {s.id: s for s in ref}
    rows = [("ava in process (transformers)", len(requests) / t_ref, 0.0, "", "")]
    methods = [
        ("server, exact (chosen ids)", requests, "exact", 20, True),
        ("server, exact (top-20 + echo)", requests, "exact", 20, False),
        (f"server, exact (echo only; {len(echo_sample)} prompts)", echo_sample, "exact", 0, False),
        ("server, top-20 mode", requests, "topk", 20, False),
    ]
    for name, reqs, mode, k, chosen in methods:
        scorer, chosen = server_scorer(base_url, mode, k, args.concurrency, chosen)
        items, seconds, sent = run_server(scorer, chosen, reqs, base_url)
        diff = max_prob_diff([ref_by_id[s.id] for s in items], items)
        extra = ""
        if mode == "topk":
            mass = sorted(s.covered_mass for s in items)
            missing = sum(s.letters_missing for s in items)
            letters = sum(len(r.options) for r in reqs)
            extra = f"covered mass median {mass[len(mass) // 2]:.3f}, min {mass[0]:.3f}; {missing}/{letters} filled"
        rows.append((name, len(reqs) / seconds, diff, f"{sent / len(reqs):.1f}", extra))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--questions", type=int, default=4, help="steering questions (x 67 prompts each)")
    parser.add_argument("--echo-sample", type=int, default=24, help="prompts timed on the echo-only route")
    parser.add_argument("--concurrency", type=int, default=16, help="requests in flight")
    parser.add_argument("--modes", default="quiet,busy")
    args = parser.parse_args()

    from rich.console import Console
    from rich.table import Table

    from ava.models.loading import resolve_model, weights_dir
    from ava.models.scorer import load_scorer

    os.environ["VLLM_SERVER_DEV_MODE"] = "1"  # for /reset_prefix_cache between methods
    log = ROOT / "runs" / "perf-backends-vllm.log"
    log.parent.mkdir(exist_ok=True)
    server = launch(weights_dir(resolve_model("smollm2")), log)
    try:
        engine_scorer = load_scorer("smollm2")
        requests = opinionqa_requests(args.questions)
        step = max(1, len(requests) // args.echo_sample)
        echo_sample = requests[::step][: args.echo_sample]
        engine_scorer.score(requests[:4])  # warm-up
        server.ready()
        print(f"vLLM server ready {server.ready_after_s:.0f} s after launch (log: {log})")
        console = Console(width=160)
        for mode in args.modes.split(","):
            before = os.getloadavg()[0]
            with busy_core(mode == "busy"):
                rows = measure(engine_scorer, requests, echo_sample, server, args)
            table = Table(title=f"smollm2 fp32, {mode} machine ({os.cpu_count()} cores, load {before:.2f} before, "
                          f"{os.getloadavg()[0]:.2f} after; OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}): "
                          f"{len(requests)} OpinionQA steering prompts, vLLM CPU 0.32.0 server, "
                          f"{args.concurrency} in flight")
            for col in ("method", "prompts/s", "x in-process", "max |dp| vs in-process", "requests/prompt", "top-k"):
                table.add_column(col, justify="right")
            base = rows[0][1]
            for name, rate, diff, sent, extra in rows:
                table.add_row(name, f"{rate:.2f}", f"{rate / base:.2f}", f"{diff:.1e}", sent, extra)
            console.print(table)
    finally:
        server.stop()


if __name__ == "__main__":
    main()
