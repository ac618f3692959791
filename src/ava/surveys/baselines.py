"""OpinionQA's human baselines (benchmarks.md): per group 1 - mean_q WD(D_G, D_Overall)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.stats import wasserstein_distance

from ava.contracts.surveys import OVERALL, SurveyQuestion


def wd(positions: Sequence[float], p: Sequence[float], q: Sequence[float]) -> float:
    """Earth-mover distance over option positions, normalised by the position range."""
    pos = np.asarray(positions, dtype=float)
    span = float(pos.max() - pos.min())
    if span <= 0:
        raise ValueError("degenerate ordinals: all positions equal")
    return float(wasserstein_distance(pos, pos, p, q)) / span


def human_baselines(questions: Sequence[SurveyQuestion]) -> dict:
    """Representativeness of each of the 60 groups w.r.t. the whole population.

    Degenerate questions (all positions equal) are excluded; a group is scored on the questions
    where it has answers. Returns per-group scores, "humans average" (mean over groups) and
    "humans worst" (minimum), and the number of questions used.
    """
    usable = [q for q in questions if len(set(q.ordinals)) > 1 and q.overall.distribution]
    sums: dict[tuple[str, str], list[float]] = {}
    for q in usable:
        overall = q.overall.distribution
        for g in q.groups:
            if (g.attribute, g.group) == OVERALL or not g.distribution:
                continue
            sums.setdefault((g.attribute, g.group), []).append(wd(q.ordinals, g.distribution, overall))
    per_group = {f"{a}/{g}": 1.0 - float(np.mean(v)) for (a, g), v in sums.items()}
    values = list(per_group.values())
    return {
        "n_questions": len(usable),
        "n_groups": len(per_group),
        "humans_average": float(np.mean(values)) if values else float("nan"),
        "humans_worst": float(np.min(values)) if values else float("nan"),
        "worst_group": min(per_group, key=per_group.get) if per_group else None,
        "per_group": dict(sorted(per_group.items())),
    }
