"""Real prompts for scoring tests: OpinionQA's steering workload from the bundled survey build."""

from __future__ import annotations

from ava.contracts.scoring import ScoredItem, ScoreRequest


def steering_requests(n_questions: int, every: int = 1) -> list[ScoreRequest]:
    """The first ``n_questions`` steering questions, unsteered and under every ``every``-th
    persona (22 groups x QA/BIO/PORTRAY), in the product's own prompt format."""
    from ava.evals.tasks.opinionqa import steering_requests as opinionqa_requests

    requests = opinionqa_requests(n_questions)
    personas = list(dict.fromkeys(r.id.split("|", 1)[1] for r in requests))
    keep = set(personas[::every])
    return [r for r in requests if r.id.split("|", 1)[1] in keep]


def max_prob_diff(a: list[ScoredItem], b: list[ScoredItem]) -> float:
    """Largest difference of any option's renormalised probability (same ids, same order)."""
    assert [x.id for x in a] == [y.id for y in b]
    return max(abs(p - q) for x, y in zip(a, b, strict=True) for p, q in zip(x.probs, y.probs, strict=True))

