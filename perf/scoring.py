"""Scoring speed and exactness: naive per-option scoring vs lm-evaluation-harness vs ava's engine.

Scores OpinionQA's real steering workload (questions of the 500-question set, unsteered and
under each of the 22 groups' QA / BIO / PORTRAY personas, built by the product's own
``opinionqa`` benchmark from the bundled survey build) with ``smollm2`` three ways in one run:

* naive   -- one forward pass per option, batch 1 (how the published scripts do it);
* lm-eval -- lm-evaluation-harness 0.4.13's Hugging Face backend (HFLM) on the equivalent
             loglikelihood requests (context = prompt, continuation = each letter spelling);
* ava     -- the letter engine (one pass per prompt, last-position logits, every shared run of
             tokens computed once through a prefix tree); also without the prefix tree.

Prints prompts/s, tokens forwarded per prompt, ratios against naive and lm-eval, and the
largest probability difference against the naive reference. Usage:

    python benchmarks/scoring.py [--questions 10] [--formats qa,bio,portray] [--naive-sample 40]
"""

from __future__ import annotations

import argparse
import math
import time


def opinionqa_requests(n_questions: int, formats: str = "qa,bio,portray"):
    """OpinionQA's real steering workload, as ``ava eval --benchmark opinionqa --steer`` builds it.

    The first ``n_questions`` of the 500-question steering set, each asked unsteered and under
    every persona (22 groups x the chosen formats), in the product's own prompt format.
    """
    from ava.evals.tasks.opinionqa import steering_requests

    return steering_requests(n_questions, formats)


def lm_eval_score(engine, requests, batch_size: int, tokens: bool):
    """Score with lm-eval's HFLM; returns per-request letter log-probs (both spellings).

    ``tokens=True`` hands HFLM the engine's own token sequences (like for like: the same
    tokens, so only speed differs); ``tokens=False`` gives it strings, which HFLM tokenises
    whole, not segment by segment -- the drift benchmarks.md warns about.
    """
    from lm_eval.api.instance import Instance
    from lm_eval.models.huggingface import HFLM

    lm = HFLM(pretrained=engine.model, tokenizer=engine.tokenizer, batch_size=batch_size, device="cpu")
    string_requests, token_requests, index = [], [], []
    for r, request in enumerate(requests):
        context = "".join(engine.segments_of(request))
        context_ids = engine.encode(request)
        for o, letter in enumerate(request.options):
            for spelling, token in zip((letter, " " + letter), _spelling_ids(engine, letter), strict=True):
                n = len(string_requests)
                string_requests.append(Instance("loglikelihood", doc={}, arguments=(context, spelling), idx=n))
                token_requests.append(((context, spelling), context_ids, [token]))
                index.append((r, o))
    if tokens:
        results = lm._loglikelihood_tokens(token_requests, disable_tqdm=True)
    else:
        results = lm.loglikelihood(string_requests, disable_tqdm=True)
    out = [[[] for _ in req.options] for req in requests]
    for (r, o), (logprob, _) in zip(index, results, strict=True):
        out[r][o].append(logprob)
    # identical spellings (SentencePiece) are one token: count it once, as the engine does
    return [[math.log(sum(math.exp(v) for v in set(vals))) for vals in per] for per in out]


def _spelling_ids(engine, letter: str) -> tuple[int, int]:
    """The token of "A" and of " A" (the same token twice for SentencePiece tokenizers)."""
    ids = engine.letter_ids(letter)
    return (ids[0], ids[-1])


def max_prob_diff(a, b) -> float:
    def norm(lps):
        z = math.log(sum(math.exp(v) for v in lps))
        return [math.exp(v - z) for v in lps]

    return max(max(abs(x - y) for x, y in zip(norm(p), norm(q), strict=True)) for p, q in zip(a, b, strict=True))


def timed(fn, repeats: int = 1):
    """Result and best wall time over ``repeats`` runs (the least disturbed by other load)."""
    best = math.inf
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - start)
    return out, best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="smollm2")
    parser.add_argument("--questions", type=int, default=10, help="steering questions (x 67 prompts each)")
    parser.add_argument("--formats", default="qa,bio,portray", help="persona formats")
    parser.add_argument("--naive-sample", type=int, default=40, help="prompts scored by the naive method")
    parser.add_argument("--lm-eval-batch", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=3, help="best of N timings per method")
    args = parser.parse_args()

    from rich.console import Console
    from rich.table import Table

    from ava.models.engine import EngineConfig, LetterEngine
    from ava.models.prefix_tree import computed_tokens
    from ava.models.reference import reference_score
    from ava.models.scorer import load_scorer

    scorer = load_scorer(args.model)
    engine = scorer.engine
    requests = opinionqa_requests(args.questions, args.formats)
    step = max(1, len(requests) // args.naive_sample)
    sample = requests[::step][: args.naive_sample]
    engine.score(requests[:4])  # warm-up (allocator, tokenizer caches)

    n = args.repeats
    naive, t_naive = timed(lambda: reference_score(engine, sample), n)
    ours, t_ours = timed(lambda: engine.score(requests), n)
    flat = LetterEngine(engine.model, engine.tokenizer, EngineConfig(use_prefix_cache=False))
    ours_flat, t_flat = timed(lambda: flat.score(requests), n)
    lme, t_lme = timed(lambda: lm_eval_score(engine, requests, args.lm_eval_batch, tokens=True), n)
    lme_strings = lm_eval_score(engine, sample, args.lm_eval_batch, tokens=False)

    by_id = {s.id: s for s in ours}
    flat_id = {s.id: s for s in ours_flat}
    lme_id = {r.id: v for r, v in zip(requests, lme, strict=True)}
    ref = [n.logprobs for n in naive]
    n_req = len(requests)
    prompt_tokens = sum(len(engine.encode(r)) for r in requests) / n_req  # lm-eval: one pass per context
    naive_tokens = sum((len(engine.encode(r)) + 1) * len(r.options) for r in sample) / len(sample)
    tree_tokens = sum(computed_tokens(root) for root in engine.plan(requests)) / n_req
    rate = {
        "naive (per option, batch 1)": (len(sample) / t_naive, naive_tokens, max_prob_diff(ref, ref)),
        "lm-eval 0.4.13 HFLM": (n_req / t_lme, prompt_tokens, max_prob_diff(ref, [lme_id[n.id] for n in naive])),
        "ava (no prefix tree)": (
            n_req / t_flat,
            prompt_tokens,
            max_prob_diff(ref, [flat_id[n.id].logprobs for n in naive]),
        ),
        "ava": (n_req / t_ours, tree_tokens, max_prob_diff(ref, [by_id[n.id].logprobs for n in naive])),
    }
    table = Table(
        title=f"{args.model}: {len(requests)} OpinionQA steering prompts "
        f"({args.questions} questions x (unsteered + 22 groups x {args.formats})); naive on {len(sample)}"
    )
    for col in ("method", "prompts/s", "tokens/prompt", "x naive", "x lm-eval", "max |dp| vs naive"):
        table.add_column(col, justify="right")
    naive_rate, lme_rate = rate["naive (per option, batch 1)"][0], rate["lm-eval 0.4.13 HFLM"][0]
    for name, (r, tokens, diff) in rate.items():
        table.add_row(name, f"{r:.1f}", f"{tokens:.0f}", f"{r / naive_rate:.1f}", f"{r / lme_rate:.2f}", f"{diff:.2e}")
    lme_vs_ours = max_prob_diff([lme_id[r.id] for r in requests], [by_id[r.id].logprobs for r in requests])
    Console(width=140).print(table)
    print(f"max |dp| lm-eval vs ava over all {len(requests)} prompts (same tokens): {lme_vs_ours:.2e}")
    drift = max_prob_diff(ref, lme_strings)
    print(f"max |dp| lm-eval given strings (tokenised whole, not by segment) vs naive: {drift:.2e}")
    mass = sorted(s.letter_mass for s in ours)
    print(f"letter mass: median {mass[len(mass) // 2]:.3f}, min {mass[0]:.3f}")


if __name__ == "__main__":
    main()
