"""Scoring speed and exactness: naive per-option scoring vs lm-evaluation-harness vs ava's engine.

Scores OpinionQA's real steering workload (questions of the 500-question set, unsteered and
under each of the 22 groups' QA / BIO / PORTRAY personas, built by the product's own
``opinionqa`` benchmark from the bundled survey build) with ``smollm2`` in one run:

* naive   -- one forward pass per option, batch 1 (how the published scripts do it);
* lm-eval -- lm-evaluation-harness 0.4.13's Hugging Face backend (HFLM) given strings, what its
             users run: (prompt, " A") and (prompt, "A") per option, logsumexp-combined;
* ava     -- the letter engine (one pass per prompt, last-position logits, every shared run of
             tokens computed once through a prefix tree); also without the prefix tree.

Every method reads the same canonical tokens (the prompt tokenised whole). ``--modes quiet,busy``
measures each method on the machine as it is and again with a background process burning one
core (started and stopped here), since users share machines and run evals beside training.
Prints prompts/s, tokens forwarded per prompt, ratios against naive and lm-eval, the largest
probability difference against the naive reference, the torch thread count and OMP_NUM_THREADS.
Usage:

    python benchmarks/scoring.py [--questions 10] [--modes quiet,busy] [--naive-sample 40]
"""

from __future__ import annotations

import argparse
import math
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager


def opinionqa_requests(n_questions: int, formats: str = "qa,bio,portray"):
    """OpinionQA's real steering workload, as ``ava eval --benchmark opinionqa --steer`` builds it.

    The first ``n_questions`` of the 500-question steering set, each asked unsteered and under
    every persona (22 groups x the chosen formats), in the product's own prompt format.
    """
    from ava.benchmarks.opinionqa import make_tasks

    (steer,) = [t for t in make_tasks(steer=True, formats=formats) if t.name == "opinionqa-steer"]
    keep = set(steer.ids[:n_questions])
    return [item.request for item in steer.items() if item.meta["unit"] in keep]


def lm_eval_score(engine, requests, batch_size: int = 16, verify: bool = False):
    """lm-eval 0.4.13's HFLM given strings: ``(prompt text, " A")`` and ``(prompt text, "A")`` per
    option through its public ``loglikelihood``, the two spellings combined with logsumexp, as
    ``ScoredItem`` s. The prompt text is the engine's (chat template applied when it uses one).

    ``verify`` also checks, outside lm-eval's own work, that lm-eval read each pair as one
    continuation token and the two spellings as two different tokens (else the sum is no letter
    reading): a ``ValueError`` names the request.
    """
    from lm_eval.api.instance import Instance
    from lm_eval.models.huggingface import HFLM

    from ava.contracts.scoring import ScoredItem

    lm = HFLM(pretrained=engine.model, tokenizer=engine.tokenizer, batch_size=batch_size, device=str(engine.device))
    pairs = [(engine.prompt_text(r), s) for r in requests for letter in r.options for s in (" " + letter, letter)]
    instances = [Instance("loglikelihood", doc={}, arguments=pair, idx=i) for i, pair in enumerate(pairs)]
    results = iter(lm.loglikelihood(instances, disable_tqdm=True))
    out = []
    for request in requests:
        values = [math.log(math.exp(next(results)[0]) + math.exp(next(results)[0])) for _ in request.options]
        out.append(ScoredItem(request.id, tuple(values)))
    if verify:
        spelled = iter([lm._encode_pair(*pair)[1] for pair in pairs])
        for request in requests:
            for _ in request.options:
                space, glued = next(spelled), next(spelled)
                if len(space) != 1 or len(glued) != 1 or space == glued:
                    raise ValueError(f"{request.id}: lm-eval reads the letter as {space} and {glued}, not two tokens")
    return out


def max_prob_diff(a, b) -> float:
    """Largest difference of any renormalised option probability between two lists of items."""
    return max(abs(p - q) for x, y in zip(a, b, strict=True) for p, q in zip(x.probs, y.probs, strict=True))


def timed(fn: Callable, repeats: int = 1):
    """Result and best wall time over ``repeats`` runs (the least disturbed by other load)."""
    best = math.inf
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - start)
    return out, best


@contextmanager
def busy_core(on: bool) -> Iterator[None]:
    """A background process spinning on one core for the duration (a user's other job)."""
    if not on:
        yield
        return
    proc = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(1.0)
        yield
    finally:
        proc.kill()
        proc.wait()


def segment_tokens(engine, request) -> list[int]:
    """The tokens of the engine before issue 11: each segment tokenised alone (plus BOS)."""
    tok = engine.tokenizer
    bos = tok("a").input_ids[: len(tok("a").input_ids) - len(tok("a", add_special_tokens=False).input_ids)]
    return bos + [t for s in request.segments for t in tok(s, add_special_tokens=False).input_ids]


def segment_drift(engine, requests) -> tuple[float, float]:
    """Max and mean |dp| between scoring segment-by-segment tokens (the old rule) and whole
    tokens, over ``requests`` (one batch-1 forward each, the letters as the engine reads them)."""
    import torch

    whole = engine.score(requests)
    encoded = engine.encoder.encode(requests)
    diffs = []
    with torch.inference_mode():
        for request, enc, item in zip(requests, encoded, whole, strict=True):
            ids = torch.tensor([segment_tokens(engine, request)], device=engine.device)
            logprobs = torch.log_softmax(engine.model(input_ids=ids, logits_to_keep=1).logits[0, -1].float(), dim=-1)
            old = [math.exp(float(torch.logsumexp(logprobs[list(t)], dim=0))) for t in enc.letters]
            diffs += [abs(p - q / sum(old)) for p, q in zip(item.probs, old, strict=True)]
    return max(diffs), sum(diffs) / len(diffs)


def measure(engine, requests, sample, args) -> dict[str, tuple[float, float, float]]:
    """prompts/s, tokens forwarded per prompt and max |dp| vs naive, per method."""
    from ava.models.engine import EngineConfig, LetterEngine
    from ava.models.prefix_tree import computed_tokens
    from ava.models.reference import reference_score

    n = args.repeats
    flat = LetterEngine(engine.model, engine.tokenizer, EngineConfig(use_prefix_cache=False))
    naive, t_naive = timed(lambda: reference_score(engine, sample), n)
    lme, t_lme = timed(lambda: lm_eval_score(engine, requests, args.lm_eval_batch), n)
    ours_flat, t_flat = timed(lambda: flat.score(requests), n)
    ours, t_ours = timed(lambda: engine.score(requests), n)
    picked = {r.id for r in sample}
    encoded = engine.encoder.encode(requests)
    prompt_tokens = sum(len(e.ids) for e in encoded) / len(requests)  # lm-eval: one pass per context
    naive_tokens = sum((len(e.ids) + 1) * len(r.options) for r, e in zip(requests, encoded, strict=True)
                       if r.id in picked) / len(sample)
    tree_tokens = sum(computed_tokens(root) for root in engine.plan(requests, encoded)) / len(requests)

    def vs_naive(items):
        return max_prob_diff(naive, [s for s in items if s.id in picked])

    return {
        "naive (per option, batch 1)": (len(sample) / t_naive, naive_tokens, 0.0),
        "lm-eval 0.4.13 HFLM, strings": (len(requests) / t_lme, prompt_tokens, vs_naive(lme)),
        "ava (no prefix tree)": (len(requests) / t_flat, prompt_tokens, vs_naive(ours_flat)),
        "ava": (len(requests) / t_ours, tree_tokens, vs_naive(ours)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="smollm2")
    parser.add_argument("--questions", type=int, default=10, help="steering questions (x 67 prompts each)")
    parser.add_argument("--formats", default="qa,bio,portray", help="persona formats")
    parser.add_argument("--naive-sample", type=int, default=40, help="prompts scored by the naive method")
    parser.add_argument("--lm-eval-batch", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=1, help="best of N timings per method")
    parser.add_argument("--modes", default="quiet,busy", help="quiet, busy (one core burnt) or both")
    args = parser.parse_args()

    import torch
    from rich.console import Console
    from rich.table import Table

    from ava.models.scorer import load_scorer

    engine = load_scorer(args.model).engine
    requests = opinionqa_requests(args.questions, args.formats)
    step = max(1, len(requests) // args.naive_sample)
    sample = requests[::step][: args.naive_sample]
    engine.score(requests[:4])  # warm-up (allocator, tokenizer caches)
    console = Console(width=140)
    threads = f"torch threads {torch.get_num_threads()}, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}"
    for mode in args.modes.split(","):
        with busy_core(mode == "busy"):
            rate = measure(engine, requests, sample, args)
            load = os.getloadavg()[0]
        table = Table(
            title=f"{args.model}, {mode} machine ({os.cpu_count()} cores, load {load:.2f} after; {threads}): "
            f"{len(requests)} OpinionQA steering prompts ({args.questions} questions x (unsteered + 22 groups x "
            f"{args.formats})); naive on {len(sample)}"
        )
        for col in ("method", "prompts/s", "tokens/prompt", "x naive", "x lm-eval", "max |dp| vs naive"):
            table.add_column(col, justify="right")
        naive_rate, lme_rate = rate["naive (per option, batch 1)"][0], rate["lm-eval 0.4.13 HFLM, strings"][0]
        for name, (r, tokens, diff) in rate.items():
            ratios = f"{r / naive_rate:.1f}", f"{r / lme_rate:.2f}"
            table.add_row(name, f"{r:.1f}", f"{tokens:.0f}", *ratios, f"{diff:.1e}")
        console.print(table)
    ours = engine.score(requests)
    lme = lm_eval_score(engine, requests, args.lm_eval_batch, verify=True)
    print(f"max |dp| lm-eval (strings) vs ava over all {len(requests)} prompts: {max_prob_diff(lme, ours):.1e}")
    worst, mean = segment_drift(engine, requests)
    print(f"segment-by-segment tokens (before issue 11) vs whole: max |dp| {worst:.3f}, mean {mean:.4f}")
    mass = sorted(s.letter_mass for s in ours)
    print(f"letter mass: median {mass[len(mass) // 2]:.3f}, min {mass[0]:.3f}")


if __name__ == "__main__":
    main()
