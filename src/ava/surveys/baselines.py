"""OpinionQA's human baselines (benchmarks.md) for a survey build's manifest.

The distance and the baseline maths are the evaluation's own (:mod:`ava.metrics.opinion`), so a
build reports exactly the numbers ``ava eval`` would.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ava.contracts.surveys import OVERALL, SurveyQuestion
from ava.metrics.opinion import human_baselines, is_degenerate, wd


def baselines_summary(questions: Sequence[SurveyQuestion]) -> dict:
    """Representativeness of each of the 60 groups w.r.t. the whole population.

    Degenerate questions (all positions equal) are excluded; a group is scored on the questions
    where it has answers. Returns per-group scores, "humans average" (mean over groups) and
    "humans worst" (minimum), and the number of questions used.
    """
    usable = [q for q in questions if not is_degenerate(q.ordinals) and q.overall.distribution]
    groups: dict[tuple[str, str], int] = {}
    for q in usable:
        for g in q.groups:
            if (g.attribute, g.group) != OVERALL and g.distribution:
                groups.setdefault((g.attribute, g.group), len(groups))
    distances = np.full((len(usable), len(groups)), np.nan)
    for j, q in enumerate(usable):
        for g in q.groups:
            if (g.attribute, g.group) != OVERALL and g.distribution:
                distances[j, groups[(g.attribute, g.group)]] = wd(q.ordinals, g.distribution, q.overall.distribution)
    per_group_scores, average, worst = human_baselines(np.ones((1, len(usable))), distances)
    per_group = {f"{a}/{g}": float(per_group_scores[0, k]) for (a, g), k in groups.items()}
    return {
        "n_questions": len(usable),
        "n_groups": len(per_group),
        "humans_average": float(average[0]) if per_group else float("nan"),
        "humans_worst": float(worst[0]) if per_group else float("nan"),
        "worst_group": min(per_group, key=per_group.get) if per_group else None,
        "per_group": dict(sorted(per_group.items())),
    }
