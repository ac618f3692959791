"""Scoring speed and exactness: naive per-option scoring vs lm-evaluation-harness vs ava's engine.

Scores OpinionQA's real steering workload (questions of the 500-question set, unsteered and
under each of the 22 groups' QA / BIO / PORTRAY personas, built by the product's own
``opinionqa`` benchmark from the bundled survey build) with ``smollm2`` in one run:

* naive   -- one forward pass per option, batch 1 (how the published scripts do it);
* lm-eval -- lm-evaluation-harness 0.4.13's Hugging Face backend (HFLM) given strings, what its
             users run: (prompt, " A") and (prompt, "A") per option, logsumexp-combined;
* ava     -- the letter engine (one pass per prompt, last-position logits, every shared run of
             tokens computed once through a prefix tree, torch threads following the free
             cores); also without the prefix tree, and with threads pinned to torch's default.

Every method reads the same canonical tokens (the prompt tokenised whole). ``--modes quiet,busy``
measures each method on the machine as it is and again with a background process burning one
core (started and stopped here), since users share machines and run evals beside training.
Prints prompts/s, tokens forwarded per prompt, ratios against naive and lm-eval, the largest
probability difference against the naive reference, the torch thread count and OMP_NUM_THREADS.
Usage:

    python perf/scoring.py [--questions 10] [--modes quiet,busy] [--naive-sample 40]
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
    from ava.evals.tasks.opinionqa import steering_requests

    return steering_requests(n_questions, formats)


def _hflm(engine, batch_size: int = 16):
    from lm_eval.models.huggingface import HFLM

    return HFLM(pretrained=engine.model, tokenizer=engine.tokenizer, batch_size=batch_size, device=str(engine.device))


def _letter_pairs(engine, requests) -> list[tuple[str, str]]:
    """(prompt text, " A") and (prompt text, "A") per option, in request and option order."""
    return [(engine.prompt_text(r), s) for r in requests for letter in r.options for s in (" " + letter, letter)]


def lm_eval_score(engine, requests, batch_size: int = 16, verify: bool = False):
    """lm-eval 0.4.13's HFLM given strings: ``(prompt text, " A")`` and ``(prompt text, "A")`` per
    option through its public ``loglikelihood``, the two spellings combined with logsumexp, as
    ``ScoredItem`` s. The prompt text is the engine's (chat template applied when it uses one).
    ``verify`` runs :func:`lm_eval_check` first.
    """
    from lm_eval.api.instance import Instance

    from ava.contracts.scoring import ScoredItem

    if verify:
        lm_eval_check(engine, requests)
    pairs = _letter_pairs(engine, requests)
    instances = [Instance("loglikelihood", doc={}, arguments=pair, idx=i) for i, pair in enumerate(pairs)]
    results = iter(_hflm(engine, batch_size).loglikelihood(instances, disable_tqdm=True))
    out = []
    for request in requests:
        values = [math.log(math.exp(next(results)[0]) + math.exp(next(results)[0])) for _ in request.options]
        out.append(ScoredItem(request.id, tuple(values)))
    return out


def lm_eval_check(engine, requests) -> None:
    """Raise ``ValueError`` (naming the request) unless lm-eval splits each pair into one
    continuation token and a letter's two spellings into two different tokens: otherwise the
    sum of the two log-likelihoods is no letter reading."""
    lm = _hflm(engine)
    spelled = iter([lm._encode_pair(*pair)[1] for pair in _letter_pairs(engine, requests)])
    for request in requests:
        for _ in request.options:
            space, glued = next(spelled), next(spelled)
            if len(space) != 1 or len(glued) != 1 or space == glued:
                raise ValueError(f"{request.id}: lm-eval reads the letter as {space} and {glued}, not two tokens")


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


def measure(engine, requests, sample, args) -> tuple[dict[str, tuple[float, float, float, str]], dict[str, list]]:
    """Per method: prompts/s, tokens forwarded per prompt, max |dp| vs naive and the torch thread
    counts its forwards ran with; and the items lm-eval and ava returned."""
    import torch

    from ava.models.engine import EngineConfig, LetterEngine
    from ava.models.prefix_tree import computed_tokens
    from ava.models.reference import reference_score

    n = args.repeats
    flat = LetterEngine(engine.model, engine.tokenizer, EngineConfig(use_prefix_cache=False))
    pinned = LetterEngine(engine.model, engine.tokenizer, EngineConfig(threads=torch.get_num_threads()))
    with thread_log(engine.model) as t_naive_log:
        naive, t_naive = timed(lambda: reference_score(engine, sample), n)
    with thread_log(engine.model) as t_lme_log:
        lme, t_lme = timed(lambda: lm_eval_score(engine, requests, args.lm_eval_batch), n)
    with thread_log(engine.model) as t_flat_log:
        ours_flat, t_flat = timed(lambda: flat.score(requests), n)
    with thread_log(engine.model) as t_ours_log:
        ours, t_ours = timed(lambda: engine.score(requests), n)
    with thread_log(engine.model) as t_pinned_log:
        ours_pinned, t_pinned = timed(lambda: pinned.score(requests), n)
    picked = {r.id for r in sample}
    encoded = engine.encoder.encode(requests)
    prompt_tokens = sum(len(e.ids) for e in encoded) / len(requests)  # lm-eval: one pass per context
    naive_tokens = sum((len(e.ids) + 1) * len(r.options) for r, e in zip(requests, encoded, strict=True)
                       if r.id in picked) / len(sample)
    tree_tokens = sum(computed_tokens(root) for root in engine.plan(requests, encoded)) / len(requests)

    def vs_naive(items):
        return max_prob_diff(naive, [s for s in items if s.id in picked])

    rates = {
        "naive (per option, batch 1)": (len(sample) / t_naive, naive_tokens, 0.0, t_naive_log),
        "lm-eval 0.4.13 HFLM, strings": (len(requests) / t_lme, prompt_tokens, vs_naive(lme), t_lme_log),
        "ava (no prefix tree)": (len(requests) / t_flat, prompt_tokens, vs_naive(ours_flat), t_flat_log),
        "ava": (len(requests) / t_ours, tree_tokens, vs_naive(ours), t_ours_log),
        "ava, threads pinned (before)": (len(requests) / t_pinned, tree_tokens, vs_naive(ours_pinned), t_pinned_log),
    }
    return {k: (r, tok, d, "/".join(map(str, sorted(log)))) for k, (r, tok, d, log) in rates.items()}, {
        "lm-eval": lme,
        "ava": ours,
    }


@contextmanager
def thread_log(model) -> Iterator[set[int]]:
    """The torch thread counts the model's forward passes run with while the block runs."""
    import torch

    used: set[int] = set()
    forward = model.forward

    def logged(*a, **kw):
        used.add(torch.get_num_threads())
        return forward(*a, **kw)

    model.forward = logged
    try:
        yield used
    finally:
        del model.forward  # back to the class's method


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="smollm2")
    parser.add_argument("--questions", type=int, default=10, help="steering questions (x 67 prompts each)")
    parser.add_argument("--formats", default="qa,bio,portray", help="persona formats")
    parser.add_argument("--naive-sample", type=int, default=40, help="prompts scored by the naive method")
    parser.add_argument("--lm-eval-batch", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=1, help="best of N timings per method")
    parser.add_argument("--modes", default="quiet,busy", help="quiet, busy (one core burnt) or both")
    parser.add_argument("--drift", action=argparse.BooleanOptionalAction, default=True,
                        help="also measure how far segment-by-segment tokens move the probabilities")
    args = parser.parse_args()

    from rich.console import Console
    from rich.table import Table

    from ava.models.scorer import load_scorer

    engine = load_scorer(args.model).engine
    requests = opinionqa_requests(args.questions, args.formats)
    step = max(1, len(requests) // args.naive_sample)
    sample = requests[::step][: args.naive_sample]
    engine.score(requests[:4])  # warm-up (allocator, tokenizer caches)
    console = Console(width=150)
    omp = os.environ.get("OMP_NUM_THREADS", "unset")
    for mode in args.modes.split(","):
        before = os.getloadavg()[0]
        with busy_core(mode == "busy"):
            rate, items = measure(engine, requests, sample, args)
        table = Table(
            title=f"{args.model}, {mode} machine ({os.cpu_count()} cores, load {before:.2f} before, "
            f"{os.getloadavg()[0]:.2f} after; OMP_NUM_THREADS={omp}): {len(requests)} OpinionQA steering prompts "
            f"({args.questions} questions x (unsteered + 22 groups x {args.formats})); naive on {len(sample)}"
        )
        for col in ("method", "prompts/s", "tokens/prompt", "x naive", "x lm-eval", "max |dp| vs naive", "threads"):
            table.add_column(col, justify="right")
        naive_rate, lme_rate = rate["naive (per option, batch 1)"][0], rate["lm-eval 0.4.13 HFLM, strings"][0]
        for name, (r, tokens, diff, threads) in rate.items():
            ratios = f"{r / naive_rate:.1f}", f"{r / lme_rate:.2f}"
            table.add_row(name, f"{r:.1f}", f"{tokens:.0f}", *ratios, f"{diff:.1e}", threads)
        console.print(table)
        print(f"max |dp| lm-eval (strings) vs ava over all {len(requests)} prompts: "
              f"{max_prob_diff(items['lm-eval'], items['ava']):.1e}")
    lm_eval_check(engine, requests)
    if args.drift:
        worst, mean = segment_drift(engine, requests)
        print(f"segment-by-segment tokens (before issue 11) vs whole: max |dp| {worst:.3f}, mean {mean:.4f}")
    mass = sorted(s.letter_mass for s in items["ava"])
    print(f"letter mass: median {mass[len(mass) // 2]:.3f}, min {mass[0]:.3f}")


if __name__ == "__main__":
    main()
