"""The steering task: each persona's distribution against its own group's (OpinionQA, OpinionQA-XL).

The steering questions with every group's persona in every format, plus the same questions
without a persona; ``score`` gives each prompt's WD to its persona's group (or, unsteered, to
every steering group), ``metrics`` reduces them to steerability (docs/evaluation.md).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ava.contracts.results import ItemScore, PlotSpec
from ava.contracts.scoring import ScoredItem
from ava.contracts.surveys import SurveyQuestion
from ava.evals.data import DataError
from ava.evals.prompts.personas import Persona
from ava.evals.task import EvalItem, TaskResult
from ava.evals.tasks.opinion_items import all_groups, by_label, group_label, group_matrix, make_request, model_reading
from ava.evals.tasks.opinion_task import SurveyTask, rounded, rounded_interval
from ava.metrics import opinion as om
from ava.metrics.resampling import N_RESAMPLES, resample_weights
from ava.subsets import first_units


class SteerTask(SurveyTask):
    """Each persona's distribution vs its own group's; also the same questions unsteered."""

    reducer = "steering"

    def __init__(self, name: str, questions: Sequence[SurveyQuestion], personas: Sequence[Persona], *,
                 seed: int = 0, n_resamples: int = N_RESAMPLES, limit: int | None = None) -> None:
        super().__init__(name, questions, seed=seed, n_resamples=n_resamples, limit=limit)
        self.personas = list(personas)
        self.formats = list(dict.fromkeys(p.format for p in self.personas))
        self.groups = list(dict.fromkeys((p.attribute, p.group) for p in self.personas))
        known = set(all_groups(self.questions))
        unknown = [g for g in self.groups if g not in known]
        if unknown:
            raise DataError(f"{name}: persona group(s) {unknown} have no human distributions in the survey data")

    def items(self) -> list[EvalItem]:
        # persona-major order: consecutive prompts share the persona prefix (computed once)
        pairs = list(zip(self.ids, self.questions, strict=True))
        out = [EvalItem(f"{uid}|default", make_request(f"{uid}|default", q), {"unit": uid, "question": uid})
               for uid, q in pairs]
        for p in self.personas:
            for uid, q in pairs:
                item_id = f"{uid}|{p.key}"
                meta = {"unit": uid, "question": uid, "format": p.format, "attribute": p.attribute,
                        "group": p.group}
                out.append(EvalItem(item_id, make_request(item_id, q, p), meta))
        return first_units(out, self.limit)

    def score(self, items: Sequence[EvalItem], outputs: Mapping[str, ScoredItem]) -> list[ItemScore]:
        """A persona prompt: its WD to its own group; an unsteered one: its and the uniform
        distribution's WD to every steering group (the records of :func:`ava.metrics.opinion.steering_arrays`)."""
        humans = {uid: group_matrix(self.by_key[uid], self.groups)
                  for uid in dict.fromkeys(i.meta["question"] for i in items)}
        col = {g: k for k, g in enumerate(self.groups)}
        out = []
        for item in items:
            q = self.by_key[item.meta["question"]]
            dist, _ = model_reading(q, outputs[item.id])
            h = humans[item.meta["question"]]
            if "format" in item.meta:
                g = col[(item.meta["attribute"], item.meta["group"])]
                wd = om.wd_many(q.ordinals, dist, h[g : g + 1])[0]
                values: dict[str, Any] = {"format": item.meta["format"],
                                          "group": group_label(item.meta["attribute"], item.meta["group"]),
                                          "wd": None if np.isnan(wd) else float(wd)}
            else:
                uniform = np.full(len(q.options), 1 / len(q.options))
                values = {"wd": by_label(self.groups, om.wd_many(q.ordinals, dist, h)),
                          "uniform": by_label(self.groups, om.wd_many(q.ordinals, uniform, h))}
            out.append(ItemScore(item.id, str(item.meta["unit"]), values))
        return out

    def metrics(self, scores: Sequence[ItemScore]) -> TaskResult:
        arrays = om.steering_arrays(scores)
        weights = resample_weights(len(arrays["units"]), self.n_resamples, self.seed)
        reduced = om.reduce_steering(scores, weights).metrics
        rep_uniform = om.representativeness(weights, arrays["uniform"])
        with om.quiet_nan_warnings():
            uniform = np.nanmean(rep_uniform, axis=1)
        series = {**{k: v for k, v in reduced.items() if k != "steering_gain"},
                  "uniform_group_representativeness": uniform, "steering_gain": reduced["steering_gain"]}
        st = om.steerability(weights, arrays["steered"])
        rows = self._group_rows(arrays, st, om.representativeness(weights, arrays["default"]), rep_uniform)
        n = len(arrays["units"])
        plot = PlotSpec(
            name="steered_vs_default",
            title=f"{self.name}: steered (best of {'/'.join(self.formats)}) vs default, {n} questions",
            labels=[f"{r['attribute']}: {r['group']}" for r in rows],
            series={"default": [r["default"] for r in rows], "steered": [r["steered"] for r in rows]},
            errors={"steered": [[r["steered_ci_low"], r["steered_ci_high"]] for r in rows]},
            reference={"uniform": rounded(series["uniform_group_representativeness"][0])},
            ylabel="rep. vs persona's group",
        )
        return TaskResult(
            headline={k: rounded(v[0]) for k, v in series.items()},
            units=n,
            unit="questions",
            description="steerability: per group, the best persona format's representativeness against that "
                        "group's distribution, averaged over groups (published); per_question_max: the best format "
                        "per question; default / uniform: the same questions without a persona / uniform.",
            intervals={k: rounded_interval(v, n_units=n) for k, v in series.items()},
            counts={"questions": n, "groups": len(self.groups), "formats": self.formats,
                    "excluded": self.report.to_dict()},
            groups={f"{r['attribute']}:{r['group']}": r["steered"] for r in rows},
            tables={"groups": rows},
            plots=[plot],
        )

    def _group_rows(self, arrays: Mapping[str, Any], st: dict[str, np.ndarray], rep_default: np.ndarray,
                    rep_uniform: np.ndarray) -> list[dict[str, Any]]:
        rows = []
        for k, label in enumerate(arrays["groups"]):
            a, g = label.split(":", 1)
            reps = {f: st["per_group_reps"][i, 0, k] for i, f in enumerate(arrays["formats"])}
            best = max(reps, key=lambda f: -np.inf if np.isnan(reps[f]) else reps[f])
            n_questions = int(np.isfinite(arrays["default"][:, k]).sum())
            ci = rounded_interval(st["per_group_max"][:, k], n_units=n_questions)
            rows.append({
                "attribute": a,
                "group": g,
                "n_questions": n_questions,
                "default": rounded(rep_default[0, k]),
                **{f: rounded(v) for f, v in reps.items()},
                "best_format": best,
                "steered": rounded(st["per_group_max"][0, k]),
                "steered_ci_low": ci["low"],
                "steered_ci_high": ci["high"],
                "per_question_max": rounded(st["per_group_question_max"][0, k]),
                "uniform": rounded(rep_uniform[0, k]),
            })
        return rows
