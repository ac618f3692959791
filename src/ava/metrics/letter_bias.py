"""Option orders, the letter prior and PriDe: how much of a letter distribution is position, not opinion.

Pure functions over numbers. An *order* is a tuple ``perm`` with ``perm[j]`` = the index of the
option shown at letter position ``j``; a distribution over letter positions is mapped back to
the options' identities with :func:`map_back`. The *letter prior* is the mean distribution over
letter positions (what the model gives a position whatever is shown there: over all cyclic
orders each option sits at each position equally often, so the opinion averages out). PriDe
(Zheng et al., ICLR 2024, ``chujiezheng/LLM-MCQ-Bias``) estimates that prior on a few questions
under every cyclic order and divides it out on the rest (docs/evaluation.md, "Option orders").
"""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Sequence

import numpy as np

Order = tuple[int, ...]

ENUMERATE_UP_TO = 8
"""Options up to which every permutation is listed and sampled from (8! = 40,320); above it,
distinct permutations are drawn by rejection (the chance of a repeat is negligible there)."""


def is_ordinal_scale(ordinals: Sequence[float]) -> bool:
    """Positions strictly increasing or strictly decreasing in display order: a scale whose
    reversal is still a scale ("Very safe ... Not safe"); ``[1, 2, 1.5]`` is not one."""
    steps = np.diff(np.asarray(ordinals, dtype=float))
    return len(steps) > 0 and (bool(np.all(steps > 0)) or bool(np.all(steps < 0)))


def cyclic_orders(n: int, ordinal: bool) -> list[Order]:
    """Every cyclic order of ``n`` options, the survey's first: shifts 0..n-1; for an ordinal
    scale each shift followed by its reversal (identity, reversed, shift 1, shift 1 reversed, ...),
    so ``orders=2`` on a scale is the scale both ways. Distinct orders only (n=2: two)."""
    base = tuple(range(n))
    out: list[Order] = []
    for s in range(n):
        shift = base[s:] + base[:s]
        for order in ((shift, shift[::-1]) if ordinal else (shift,)):
            if order not in out:
                out.append(order)
    return out


def n_orders(n: int, kind: str, ordinal: bool) -> int:
    """How many distinct orders of ``kind`` exist for ``n`` options."""
    return len(cyclic_orders(n, ordinal)) if kind == "cyclic" else math.factorial(n)


def permutation_orders(n: int, k: int, seed: str | int) -> list[Order]:
    """The survey's order, then ``k - 1`` distinct other permutations drawn with ``seed``."""
    k = min(k, math.factorial(n))
    rng = random.Random(seed)  # str seeds hash with SHA-512: the same draw on every platform
    identity = tuple(range(n))
    if n <= ENUMERATE_UP_TO:
        others = [p for p in itertools.permutations(range(n)) if p != identity]
        return [identity, *rng.sample(others, k - 1)]
    out = [identity]
    while len(out) < k:
        perm = list(identity)
        rng.shuffle(perm)
        if tuple(perm) not in out:
            out.append(tuple(perm))
    return out


def map_back(by_position: Sequence[float], order: Order) -> np.ndarray:
    """A distribution over letter positions as one over the options (``out[order[j]] = p[j]``)."""
    out = np.empty(len(order))
    out[list(order)] = by_position
    return out


def letter_prior(by_position: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """The mean of ``[rows, k]`` position distributions (one per question, each already the mean
    over its orders), optionally weighted: the letter prior of k-option questions."""
    w = np.ones(len(by_position)) if weights is None else np.asarray(weights, dtype=float)
    return (w[:, None] * by_position).sum(axis=0) / w.sum()


def position_bias(prior: Sequence[float]) -> float:
    """Total variation between a letter prior and the uniform one: 0 = no position preference,
    ``1 - 1/k`` = all mass on one position."""
    p = np.asarray(prior, dtype=float)
    return float(0.5 * np.abs(p - 1.0 / len(p)).sum())


def pride_prior(log_by_position: np.ndarray) -> np.ndarray:
    """PriDe's prior from one question scored under all ``n`` cyclic orders (rows: orders,
    columns: positions, log-probabilities): softmax over positions of the mean over orders. Each
    option sits at each position once, so the options' own terms are equal at every position and
    cancel; what is left is the position's (letter's) prior (Zheng et al., eq. 5)."""
    mean = np.asarray(log_by_position, dtype=float).mean(axis=0)
    e = np.exp(mean - mean.max())
    return e / e.sum()


def debias(by_position: Sequence[float], prior: Sequence[float]) -> np.ndarray:
    """Divide the prior out of a position distribution and renormalise (PriDe's debiased answer)."""
    q = np.asarray(by_position, dtype=float) / np.asarray(prior, dtype=float)
    return q / q.sum()
