"""Option-order controls for the default opinion task: ``--set orders=K``, ``order_kind``, ``debias=pride``.

Each question is asked under K orders of its substantive options (the refusal option(s) stay
last); every order's distribution is mapped back to the options before the orders are averaged
(the mean of the renormalised distributions). Every run records the letter prior (the mean
distribution over letter positions) and a position-bias figure; ``debias=pride`` estimates the
prior on a seeded few questions under all cyclic orders and divides it out on the rest. With
the defaults (one order, no debiasing) the task's items, ids, prompts, cache keys and numbers
are the published protocol's, unchanged. docs/evaluation.md, "Option orders and letter bias".
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ava.contracts.scoring import ScoredItem
from ava.contracts.surveys import SurveyQuestion
from ava.evals.task import EvalItem
from ava.evals.tasks.opinion_items import make_request, model_reading
from ava.metrics import letter_bias as lb
from ava.models.letters import LETTERS
from ava.subsets import seeded_subset

ORDER_KINDS = ("cyclic", "permutations")
DEBIAS = ("none", "pride")
PRIDE_SHARE = 0.05
PRIDE_MIN = 3
"""PriDe's estimation set: per number of options, ``max(PRIDE_MIN, ceil(PRIDE_SHARE * n))`` questions."""

SETTINGS = {
    "orders": "option orders per question (default 1, the published protocol): cyclic shifts, an ordinal scale "
              "also reversed; clipped per question to the orders that exist, and recorded",
    "order_kind": "cyclic (default) or permutations (the survey's order plus distinct ones seeded by --seed)",
    "debias": "none (default) or pride: estimate the letter prior on ~5% of questions under all cyclic orders "
              "(excluded from the score) and divide it out on the rest (Zheng et al., ICLR 2024)",
}


@dataclass(frozen=True)
class OrderSpec:
    """What the order settings ask for; ``published``: one order, no debiasing (today's protocol)."""

    orders: int = 1
    kind: str = "cyclic"
    debias: str = "none"
    seed: int = 0

    @property
    def published(self) -> bool:
        return self.orders == 1 and self.debias == "none"

    def version_suffix(self) -> str:
        """Appended to the task version (so results and caches never mix); empty when published."""
        if self.published:
            return ""
        seeded = self.debias == "pride" or (self.kind == "permutations" and self.orders > 1)
        return (f"+orders{self.orders}-{self.kind}" + ("-pride" if self.debias == "pride" else "")
                + (f"-seed{self.seed}" if seeded else ""))


def order_spec(settings: Mapping[str, Any], seed: int) -> OrderSpec:
    """The order settings, checked (a one-line error for a bad value, before anything is scored)."""
    raw = settings.get("orders", 1)
    try:
        orders = int(raw)
    except (TypeError, ValueError):
        raise ValueError(f"--set orders={raw!r}: expected a whole number of orders (1 = the survey's order)") from None
    if orders < 1:
        raise ValueError(f"--set orders={orders}: expected at least 1 (1 = the survey's order)")
    kind = str(settings.get("order_kind", "cyclic"))
    if kind not in ORDER_KINDS:
        raise ValueError(f"--set order_kind={kind!r}: unknown; use one of {', '.join(ORDER_KINDS)}")
    debias = str(settings.get("debias", "none"))
    if debias not in DEBIAS:
        raise ValueError(f"--set debias={debias!r}: unknown; use one of {', '.join(DEBIAS)}")
    return OrderSpec(orders, kind, debias, seed)


@dataclass
class OrderPlan:
    """Per question its orders; PriDe's estimation questions (all cyclic orders) and the questions
    left out because too few share their number of options to estimate a prior and score one."""

    orders: dict[str, list[lb.Order]]
    estimation: list[str] = field(default_factory=list)
    too_few: dict[int, int] = field(default_factory=dict)


def plan_orders(ids: Sequence[str], questions: Sequence[SurveyQuestion], spec: OrderSpec) -> OrderPlan:
    """Which orders each question is asked in; a K no question can reach is an error."""
    counts = {uid: lb.n_orders(len(q.options), spec.kind, lb.is_ordinal_scale(q.ordinals))
              for uid, q in zip(ids, questions, strict=True)}
    most = max(counts, key=lambda uid: counts[uid])
    if spec.orders > counts[most]:
        what = "cyclic orders" if spec.kind == "cyclic" else "distinct permutations"
        raise ValueError(f"--set orders={spec.orders}: no question has that many {what}; the most is "
                         f"{counts[most]} ({most}, {len(questions[list(ids).index(most)].options)} options); "
                         f"ask for at most {counts[most]} (questions with fewer orders use all theirs)")
    plan = OrderPlan({})
    estimation = set(pride_estimation(ids, questions, spec, plan) if spec.debias == "pride" else ())
    for uid, q in zip(ids, questions, strict=True):
        n, ordinal = len(q.options), lb.is_ordinal_scale(q.ordinals)
        if uid in estimation:
            plan.orders[uid] = lb.cyclic_orders(n, ordinal=False)
        elif spec.kind == "cyclic":
            plan.orders[uid] = lb.cyclic_orders(n, ordinal)[:spec.orders]
        else:
            plan.orders[uid] = lb.permutation_orders(n, spec.orders, f"{spec.seed}:{uid}")
    plan.estimation = [uid for uid in ids if uid in estimation]
    return plan


def pride_estimation(ids: Sequence[str], questions: Sequence[SurveyQuestion], spec: OrderSpec,
                     plan: OrderPlan) -> list[str]:
    """Per number of options k: a seeded ``max(3, ceil(5%))`` of its questions; a k with too few
    questions to also leave one to score is left out entirely (counted in ``plan.too_few``)."""
    by_k: dict[int, list[str]] = {}
    for uid, q in zip(ids, questions, strict=True):
        by_k.setdefault(len(q.options), []).append(uid)
    chosen: list[str] = []
    for k, uids in sorted(by_k.items()):
        size = max(PRIDE_MIN, math.ceil(PRIDE_SHARE * len(uids)))
        if len(uids) <= size:
            plan.too_few[k] = len(uids)
            continue
        chosen += [uids[i] for i in seeded_subset(len(uids), size, spec.seed + k, "numpy")]
    return chosen


def order_items(ids: Sequence[str], questions: Sequence[SurveyQuestion], plan: OrderPlan) -> list[EvalItem]:
    """One prompt per (question, order), ``key#o<k>``, all of a question's under its ``unit``."""
    out = []
    skip = {uid for uid, q in zip(ids, questions, strict=True) if len(q.options) in plan.too_few}
    estimation = set(plan.estimation)
    for uid, q in zip(ids, questions, strict=True):
        if uid in skip:
            continue
        for k, order in enumerate(plan.orders[uid]):
            meta = {"unit": uid, "question": uid, "wave": q.wave, "order": list(order),
                    **({"role": "pride-estimation"} if uid in estimation else {})}
            out.append(EvalItem(f"{uid}#o{k}", make_request(f"{uid}#o{k}", q, order=order), meta))
    return out


@dataclass
class Reading:
    """A question's reading over its orders: the options' distribution (mean of the mapped-back
    renormalised distributions), refusal, letter mass, and the raw distribution by letter position."""

    dist: np.ndarray
    refusal: float
    letter_mass: float
    by_position: np.ndarray


def read_orders(q: SurveyQuestion, reads: Sequence[tuple[Sequence[int], ScoredItem]],
                prior: np.ndarray | None = None) -> Reading:
    """Every order's distribution (PriDe's ``prior`` divided out first, when given), mapped back
    to the options' identities, then averaged. One order in the survey's order gives exactly
    :func:`~ava.evals.tasks.opinion_items.model_reading`'s numbers."""
    dists, positions, refusals = [], [], []
    for order, scored in reads:
        by_position, refusal = model_reading(q, scored)
        positions.append(by_position)
        refusals.append(refusal)
        dists.append(lb.map_back(lb.debias(by_position, prior) if prior is not None else by_position, tuple(order)))
    return Reading(np.mean(dists, axis=0), float(np.mean(refusals)),
                   float(np.mean([s.letter_mass for _, s in reads])), np.mean(positions, axis=0))


def grouped_reads(items: Sequence[EvalItem], outputs: Mapping[str, ScoredItem],
                  by_key: Mapping[str, SurveyQuestion]) -> dict[str, list[tuple[Sequence[int], ScoredItem]]]:
    """Each question's (order, scored prompt)s, in item order (an item without an order: the survey's)."""
    out: dict[str, list[tuple[Sequence[int], ScoredItem]]] = {}
    for item in items:
        uid = str(item.meta["question"])
        order = item.meta.get("order") or range(len(by_key[uid].options))
        out.setdefault(uid, []).append((tuple(order), outputs[item.id]))
    return out


def pride_priors(estimation: Sequence[str], reads: Mapping[str, Sequence[tuple[Sequence[int], ScoredItem]]],
                 by_key: Mapping[str, SurveyQuestion]) -> dict[int, np.ndarray]:
    """Per number of options: the mean over its estimation questions of each one's PriDe prior."""
    per_k: dict[int, list[np.ndarray]] = {}
    for uid in (u for u in estimation if u in reads):  # a partial set (lm-eval --limit): what was scored
        q = by_key[uid]
        # floored: a letter whose probability underflowed to 0 gives a finite log, not a warning
        logs = np.log(np.maximum(np.array([model_reading(q, s)[0] for _, s in reads[uid]]), 1e-300))
        per_k.setdefault(len(q.options), []).append(lb.pride_prior(logs))
    return {k: np.mean(v, axis=0) for k, v in per_k.items()}


def ids_hash(ids: Sequence[str]) -> str:
    return hashlib.sha256("\n".join(ids).encode()).hexdigest()[:16]


def letter_prior_section(rows: Sequence[tuple[int, Sequence[float], int]]) -> tuple[dict[str, Any], list[dict]]:
    """The letter prior per number of options from ``(k, mean position distribution, orders)`` per
    question, and the position bias: the question-weighted mean over k of TV(prior_k, uniform_k)."""
    by_k: dict[int, list[tuple[Sequence[float], int]]] = {}
    for k, probs, n in rows:
        by_k.setdefault(k, []).append((probs, n))
    section: dict[str, Any] = {}
    table = []
    for k in sorted(by_k):
        prior = lb.letter_prior(np.array([p for p, _ in by_k[k]], dtype=float))
        tv = lb.position_bias(prior)
        section[str(k)] = {"n_questions": len(by_k[k]), "n_prompts": sum(n for _, n in by_k[k]),
                           "prior": [round(float(x), 6) for x in prior], "position_bias": round(tv, 6)}
        table.append({"n_options": k, "n_questions": len(by_k[k]), "n_prompts": section[str(k)]["n_prompts"],
                      "position_bias": round(tv, 6), "first_letter_vs_uniform": round(float(prior[0]) * k, 6),
                      **{LETTERS[j]: (round(float(prior[j]), 6) if j < k else None) for j in range(max(by_k))}})
    n = sum(v["n_questions"] for v in section.values())
    bias = sum(v["n_questions"] * v["position_bias"] for v in section.values()) / n if n else float("nan")
    return {"definition": "mean over questions (and their orders) of the model's distribution over the substantive "
                          "letter positions, per number of options; position_bias = question-weighted mean over "
                          "option counts of the total variation between that prior and the uniform one",
            "position_bias": round(bias, 6), "by_options": section}, table
