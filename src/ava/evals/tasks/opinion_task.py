"""The default opinion task: one prompt per survey question, the model against every group.

Representativeness overall and per group beside the human baselines and the uniform model,
consistency over coarse topics, refusal rates, per-topic and per-wave breakdowns, bootstrap
intervals over questions (docs/evaluation.md, "The opinion benchmarks"). ``score`` turns each
question's scored prompt into an item score (the WDs to every group, refusal, letter mass);
``metrics`` reduces them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from ava.contracts.results import ItemScore, PlotSpec
from ava.contracts.scoring import ScoredItem
from ava.contracts.surveys import OVERALL, SurveyQuestion
from ava.evals.prompts.opinion import templates
from ava.evals.task import EvalItem, GenerationItem, TaskResult
from ava.evals.tasks.calibration import CalibrationSpec, plan_calibration
from ava.evals.tasks.opinion_items import (
    all_groups,
    by_label,
    group_matrix,
    make_request,
    numbers,
    prepare,
    question_ids,
    topics_of,
)
from ava.evals.tasks.option_orders import (
    OrderSpec,
    grouped_reads,
    ids_hash,
    letter_prior_section,
    order_items,
    plan_orders,
    pride_priors,
    read_orders,
)
from ava.evals.tasks.text_probe import generate_probe, not_measured, probe_items, probe_section
from ava.metrics import opinion as om
from ava.metrics.resampling import BIAS_CORRECTED, N_RESAMPLES, PERCENTILE, interval, resample_weights, weighted_mean
from ava.subsets import first_units

TASK_VERSION = "1"
"""Bumped when the metrics or the item set change (the template has its own version)."""


def rounded(x: float) -> float:
    return round(float(x), 6)


INTERVAL_METHODS = {"consistency": BIAS_CORRECTED}
"""Statistics whose resamples are biased against their point estimate (an argmax over groups per
topic): a bias-corrected interval from the start. Every other one: the percentile bootstrap."""


def rounded_interval(series: np.ndarray, method: str = PERCENTILE, n_units: int | None = None) -> dict[str, Any]:
    """:func:`~ava.metrics.resampling.interval` with its numbers rounded as the headline is."""
    return {k: (rounded(v) if isinstance(v, float) else v) for k, v in interval(series, method=method,
                                                                               n_units=n_units).items()}


class SurveyTask:
    """What both opinion tasks share: the scorable questions, their ids, versions, bootstrap settings."""

    def __init__(self, name: str, questions: Sequence[SurveyQuestion], *, seed: int, n_resamples: int,
                 limit: int | None) -> None:
        self.name = name
        self.template_version: str | None = str(templates()["version"])
        self.version = f"{TASK_VERSION}+{self.template_version}"
        self.questions, self.report = prepare(name, questions)
        self.ids = question_ids(self.questions)
        self.by_key = dict(zip(self.ids, self.questions, strict=True))
        self.seed = seed
        self.n_resamples = n_resamples
        self.limit = limit


@dataclass
class Distances:
    """WDs per question: model and uniform vs [Overall, groups...], Overall vs each group."""

    model: np.ndarray
    uniform: np.ndarray
    human: np.ndarray


class OpinionTask(SurveyTask):
    """Representativeness, consistency and refusal with OpinionQA's default prompt."""

    reducer = "opinion"

    def __init__(self, name: str, questions: Sequence[SurveyQuestion], *, seed: int = 0,
                 n_resamples: int = N_RESAMPLES, limit: int | None = None, orders: OrderSpec | None = None,
                 calibration: CalibrationSpec | None = None) -> None:
        super().__init__(name, questions, seed=seed, n_resamples=n_resamples, limit=limit)
        self.orders = orders or OrderSpec(seed=seed)
        self.version += self.orders.version_suffix()
        n = len(self.ids) if limit is None else limit
        # planned (and checked) now: a bad orders setting is refused before anything is scored
        self.plan = None if self.orders.published else plan_orders(self.ids[:n], self.questions[:n], self.orders)
        self.pride_priors: dict[int, np.ndarray] | None = None
        # expression=calibrated (.calibration): its fitting set drawn (and checked) now, T fitted in score
        self.calibration = plan_calibration(self.ids[:n], calibration) if calibration else None
        self.version += calibration.version_suffix() if calibration else ""
        self.probe_records: Mapping[str, Mapping[str, Any]] | None = None  # the runner's text probe, if generated
        self.text_probe: dict[str, Any] = not_measured("not generated (a result computed outside ava eval)")

    def probe_items(self) -> list[GenerationItem]:
        """The seeded sample of questions answered in text (:mod:`.text_probe`; the runner generates them)."""
        return probe_items(self.items(), self.by_key, self.seed)

    def generate_probe(self, scorer: Any, chunk: Sequence[GenerationItem]) -> list[dict[str, Any]]:
        return generate_probe(scorer, chunk)

    def attach_probe(self, records: Mapping[str, Mapping[str, Any]] | None, reason: str = "") -> None:
        """The probe's replies (read in :meth:`score`), or None and why it was not generated."""
        self.probe_records = records
        if records is None:
            self.text_probe = not_measured(reason)

    def items(self) -> list[EvalItem]:
        if self.plan is not None:
            n = len(self.ids) if self.limit is None else self.limit
            return order_items(self.ids[:n], self.questions[:n], self.plan)
        return first_units([
            EvalItem(uid, make_request(uid, q), {"unit": uid, "question": uid, "wave": q.wave})
            for uid, q in zip(self.ids, self.questions, strict=True)
        ], self.limit)

    def score_first(self, items: Sequence[EvalItem]) -> list[str]:
        """The items the runner scores before the others and hands to :meth:`check_first`: with
        ``expression=calibrated`` the fitting questions' prompts (none otherwise)."""
        if self.calibration is None:
            return []
        fitting = set(self.calibration.fit_ids)
        return [item.id for item in items if str(item.meta["question"]) in fitting]

    def check_first(self, items: Sequence[EvalItem], outputs: Mapping[str, ScoredItem]) -> None:
        """Fit the temperature on the fitting set: a fit at a bound is refused before the rest is scored."""
        if self.calibration is not None:
            self.calibration.fit_on(items, outputs, self.by_key)

    def score(self, items: Sequence[EvalItem], outputs: Mapping[str, ScoredItem]) -> list[ItemScore]:
        """Per question (over its orders, mapped back and averaged: :mod:`.option_orders`): the
        model's and the uniform distribution's WD to Overall and every group, Overall's WD to every
        group, refusal rates, the letter mass and the distribution by letter position. PriDe's
        estimation questions give their prior and no score, calibration's fitting questions the temperature."""
        if self.probe_records is not None:  # on the items as the runner drew them, before calibration sets some apart
            probes = probe_items(items, self.by_key, self.seed)
            self.text_probe = probe_section(probes, self.probe_records, outputs, self.by_key, self.seed)
        if self.calibration is not None:
            items, outputs = self.calibration.calibrate(items, outputs, self.by_key)
        reads = grouped_reads(items, outputs, self.by_key)
        estimation = set(self.plan.estimation) if self.plan is not None and self.orders.debias == "pride" else set()
        if estimation:
            self.pride_priors = pride_priors(self.plan.estimation, reads, self.by_key)  # type: ignore[union-attr]
        uids = [uid for uid in reads if uid not in estimation]
        qs = [self.by_key[uid] for uid in uids]
        groups = all_groups(qs)
        out = []
        for uid, q in zip(uids, qs, strict=True):
            prior = self.pride_priors.get(len(q.options)) if self.pride_priors is not None else None
            if estimation and prior is None:
                raise ValueError(f"{self.name}: {uid}: no PriDe prior for {len(q.options)} options (its estimation "
                                 "questions were not scored); score the whole task")
            reading = read_orders(q, reads[uid], prior)
            out.append(question_score(uid, q, groups, reading.dist, reading.refusal, reading.letter_mass,
                                      reading.by_position, len(reads[uid])))
        return out

    def metrics(self, scores: Sequence[ItemScore]) -> TaskResult:
        om.one_per_unit(scores)
        n = len(scores)
        labels, model = om.label_matrix([s.values["wd"] for s in scores])
        groups = [tuple(label.split(":", 1)) for label in labels]
        w = Distances(np.column_stack([_column(scores, "wd_overall"), model]),
                      np.column_stack([_column(scores, "uniform_overall"), om.label_matrix(
                          [s.values["uniform"] for s in scores])[1]]),
                      om.label_matrix([s.values["humans"] for s in scores])[1])
        weights = resample_weights(n, self.n_resamples, self.seed)
        reduced = om.reduce_opinion(scores, weights)
        rep = np.column_stack([reduced.metrics["representativeness"], *reduced.groups.values()])
        rep_u = om.representativeness(weights, w.uniform)
        human_group, human_avg, human_worst = om.human_baselines(weights, w.human)
        topic_names = sorted({t for s in scores for t in s.values["topics"]})
        topic_matrix = np.array([[t in s.values["topics"] for t in topic_names] for s in scores],
                                dtype=float).reshape(n, len(topic_names))
        attrs = [a for a, _ in groups]
        cons = om.consistency(weights, w.model[:, 1:], topic_matrix, attrs) if topic_names and groups else None
        refusal = np.column_stack([_column(scores, "refusal_model"), _column(scores, "refusal_humans")]).reshape(n, 2)
        letter_mass = _column(scores, "letter_mass").reshape(n, 1)
        refusal_rates = weighted_mean(weights, refusal)
        series = {
            "representativeness": rep[:, 0],
            "uniform_representativeness": rep_u[:, 0],
            "humans_average": human_avg,
            "humans_worst": human_worst,
            "consistency": cons["overall"] if cons else np.full(len(weights), np.nan),
            "refusal_model": refusal_rates[:, 0],
            "refusal_humans": refusal_rates[:, 1],
            "letter_mass": weighted_mean(weights, letter_mass)[:, 0],
            **_diagnostics(scores, weights),
        }
        group_rows = _group_rows(groups, w, rep, rep_u, human_group)
        tables = _tables(scores, topic_names, w, refusal, letter_mass)
        result = self._result(scores, groups, topic_names, series, group_rows, cons, tables)
        result = replace(result, details={**result.details, "tv": _tv_section(scores)})
        return self._with_order_sections(result, scores)

    def _with_order_sections(self, result: TaskResult, scores: Sequence[ItemScore]) -> TaskResult:
        """The letter prior (every run), the orders asked and PriDe's estimation set, if any."""
        prior, table = letter_prior_section([(s.values["n_options"], s.values["letter_probs"],
                                              s.values.get("orders", 1)) for s in scores if "letter_probs" in s.values])
        details: dict[str, Any] = {**result.details, "letter_prior": prior, "text_agreement": self.text_probe}
        spec = self.orders
        details["orders"] = {"orders": spec.orders, "order_kind": spec.kind, "debias": spec.debias,
                             "averaging": "each order's distribution over the substantive options, renormalised, "
                                          "mapped back to the options' identities; the mean over orders",
                             "clipped_questions": sum(1 for s in scores if s.values.get("orders", 1) < spec.orders),
                             "orders_per_question": _count_orders(scores)}
        if self.plan is not None and spec.debias == "pride":
            details["pride"] = {
                "estimation_questions": len(self.plan.estimation),
                "estimation_ids_sha256": ids_hash(self.plan.estimation),
                "estimation_ids": self.plan.estimation, "excluded_from_score": True,
                "left_out_too_few_by_options": {str(k): n for k, n in self.plan.too_few.items()},
                "prior": {str(k): [rounded(x) for x in v] for k, v in sorted((self.pride_priors or {}).items())}}
        counts = dict(result.counts)
        if self.calibration is not None:
            details["calibration"] = self.calibration.section()
            counts["calibration_fit"] = len(self.calibration.fit_ids)
        if "pride" in details:
            counts["pride_estimation"] = len(self.plan.estimation)  # type: ignore[union-attr]
        return replace(result, details=details, counts=counts, tables={**result.tables, "letter_prior": table})

    def _result(self, scores: Sequence[ItemScore], groups: Sequence[tuple[str, str]], topic_names: Sequence[str],
                series: Mapping[str, np.ndarray], group_rows: list[dict[str, Any]], cons: dict[str, np.ndarray] | None,
                tables: dict[str, list[dict[str, Any]]]) -> TaskResult:
        headline = {k: rounded(v[0]) for k, v in series.items()}
        n = len(scores)
        intervals = {k: rounded_interval(v, INTERVAL_METHODS.get(k, PERCENTILE), n) for k, v in series.items()}
        overall_row = {"attribute": OVERALL[0], "group": OVERALL[1], "n_questions": n,
                       "model": headline["representativeness"], "model_ci_low": intervals["representativeness"]["low"],
                       "model_ci_high": intervals["representativeness"]["high"],
                       "uniform": headline["uniform_representativeness"], "humans": 1.0}
        plot = PlotSpec(
            name="representativeness_by_group",
            title=f"{self.name}: representativeness by group ({n} questions)",
            labels=[f"{a}: {g}" for a, g in groups],
            series={"model": [r["model"] for r in group_rows], "uniform": [r["uniform"] for r in group_rows],
                    "humans (group vs overall)": [r["humans"] for r in group_rows]},
            errors={"model": [[r["model_ci_low"], r["model_ci_high"]] for r in group_rows]},
            reference={"model overall": headline["representativeness"]},
            ylabel="1 - mean WD",
        )
        return TaskResult(
            headline=headline,
            units=n,
            unit="questions",
            description="1 - mean over questions of the Wasserstein distance between the model's and the group's "
                        "answer distributions over option positions (fractions); human baselines: each group vs "
                        "the whole population; uniform: the uniform distribution's representativeness.",
            intervals=intervals,
            counts={"questions": n, "groups": len(groups), "topics": len(topic_names),
                    "waves": len({s.values["wave"] for s in scores}), "excluded": self.report.to_dict()},
            groups={f"{a}:{g}": r["model"] for (a, g), r in zip(groups, group_rows, strict=True)},
            details={"consistency": _consistency_section(cons, groups, topic_names)},
            tables={"groups": [overall_row, *group_rows], **tables},
            plots=[plot],
        )


def question_score(uid: str, q: SurveyQuestion, groups: Sequence[tuple[str, str]], dist: np.ndarray, refusal: float,
                   letter_mass: float | None, by_position: np.ndarray, orders: int) -> ItemScore:
    """A question's item score from the model's distribution over its substantive options: the
    model's and the uniform distribution's WD to Overall and every group, Overall's WD to every
    group, refusal, letter mass (None where no letters were read) and the distribution by letter
    position. Every expression method's distributions are scored here, the same way."""
    overall = np.array(q.overall.distribution, dtype=float)
    humans = np.vstack([overall[None, :], group_matrix(q, groups)])
    model = om.wd_many(q.ordinals, dist, humans)
    uniform = om.wd_many(q.ordinals, np.full(len(q.options), 1.0 / len(q.options)), humans)
    return ItemScore(uid, uid, {
        "key": q.key, "wave": q.wave, "topics": topics_of(q), "n_options": len(q.options),
        "wd_overall": float(model[0]), "wd": by_label(groups, model[1:]),
        "uniform_overall": float(uniform[0]), "uniform": by_label(groups, uniform[1:]),
        "humans": by_label(groups, om.wd_many(q.ordinals, overall, humans[1:])),
        "refusal_model": numbers(np.array([refusal]))[0],
        "refusal_humans": q.overall.refusal_rate if q.refusal_options else None,
        "letter_mass": letter_mass,
        "tv_overall": om.tv(dist, overall), "uniform_tv_overall": om.tv(np.ones(len(overall)), overall),
        "tv": by_label(groups, om.tv_many(dist, humans[1:])),
        "uniform_tv": by_label(groups, om.tv_many(np.ones(len(overall)), humans[1:])),
        **_meister_tv(q, dist, refusal),
        "entropy_model": om.normalised_entropy(dist), "entropy_humans": om.normalised_entropy(overall),
        "letter_probs": [float(x) for x in by_position], "orders": orders,
    })


def _count_orders(scores: Sequence[ItemScore]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for s in scores:
        key = str(s.values.get("orders", 1))
        counts[key] = counts.get(key, 0) + 1
    return dict(sorted(counts.items(), key=lambda kv: int(kv[0])))


def _column(scores: Sequence[ItemScore], key: str) -> np.ndarray:
    return np.array([np.nan if s.values.get(key) is None else float(s.values[key]) for s in scores], dtype=float)


DIAGNOSTIC_COLUMNS = ("tv_overall", "uniform_tv_overall", "entropy_model", "entropy_humans")


def _diagnostics(scores: Sequence[ItemScore], weights: np.ndarray) -> dict[str, np.ndarray]:
    """Representativeness as ``1 - mean TV`` (Overall; beside WD, to compare with Meister et al.)
    for the model and the uniform guess, and the mean normalised entropy of the model's and the
    humans' (Overall) distributions. Scores written before these existed give NaN (no headline)."""
    means = weighted_mean(weights, np.column_stack([_column(scores, k) for k in DIAGNOSTIC_COLUMNS]))
    return {"representativeness_tv": 1.0 - means[:, 0], "uniform_representativeness_tv": 1.0 - means[:, 1],
            "entropy_model": means[:, 2], "entropy_humans": means[:, 3]}


MEISTER_GROUPS = ("POLPARTY:Democrat", "POLPARTY:Republican", "SEX:Male", "SEX:Female", "RACE:Black", "RACE:White")
"""The six groups Meister et al. (NAACL 2025) average total variation over on OpinionQA."""


def _meister_tv(q: SurveyQuestion, dist: np.ndarray, refusal: float) -> dict[str, dict[str, float | None]]:
    """TV to each of Meister et al.'s six groups in their form: the refusal option(s) counted as
    one more answer (the model's refusal mass, the group's refusal share; uniform over every
    shown letter), for the model and the uniform guess."""
    k, m = len(q.options), len(q.refusal_options)
    groups = [tuple(g.split(":", 1)) for g in MEISTER_GROUPS]
    humans = group_matrix(q, groups)  # type: ignore[arg-type]
    if m:
        rates = np.array([[(q.group(a, g) or q.overall).refusal_rate] for a, g in groups])
        humans = np.hstack([(1 - rates) * humans / humans.sum(axis=1, keepdims=True), rates])
        model, uniform = np.append((1 - refusal) * dist, refusal), np.append(np.ones(k), m) / (k + m)
    else:
        model, uniform = dist, np.ones(k) / k
    return {"tv_with_refusal": by_label(groups, om.tv_many(model, humans)),  # type: ignore[arg-type]
            "uniform_tv_with_refusal": by_label(groups, om.tv_many(uniform, humans))}  # type: ignore[arg-type]


def _tv_section(scores: Sequence[ItemScore]) -> dict[str, Any]:
    """Total variation to every group, for the model and the uniform guess: per group ``1 - mean
    TV`` (as representativeness), and Meister et al.'s own form, the mean TV (a distance) pooled
    over the (question, group) pairs of their six groups. Scores written before "tv" existed: none."""
    if not all("tv" in s.values for s in scores):
        return {"available": False, "reason": "item scores written before per-group TV existed; rerun to add it"}
    labels, model = om.label_matrix([s.values["tv"] for s in scores])
    _, uniform = om.label_matrix([s.values["uniform_tv"] for s in scores])
    with om.quiet_nan_warnings():
        by_group = {g: {"model": rounded(1 - np.nanmean(model[:, j])),
                        "uniform": rounded(1 - np.nanmean(uniform[:, j])),
                        "n_questions": int(np.isfinite(model[:, j]).sum())} for j, g in enumerate(labels)}
        six = [labels.index(g) for g in MEISTER_GROUPS if g in labels]
        pooled = {"groups": [labels[j] for j in six],
                  "model_mean_tv": rounded(np.nanmean(model[:, six])) if six else None,
                  "uniform_mean_tv": rounded(np.nanmean(uniform[:, six])) if six else None,
                  "pairs": int(np.isfinite(model[:, six]).sum()) if six else 0}
        if all("tv_with_refusal" in s.values for s in scores):
            _, with_model = om.label_matrix([s.values["tv_with_refusal"] for s in scores])
            _, with_uniform = om.label_matrix([s.values["uniform_tv_with_refusal"] for s in scores])
            pooled |= {"model_mean_tv_with_refusal": rounded(np.nanmean(with_model)),
                       "uniform_mean_tv_with_refusal": rounded(np.nanmean(with_uniform))}
    return {"available": True, "definition": "TV = 0.5 * sum |p - q| over the substantive options, each renormalised; "
                                             "per group 1 - mean over questions (as representativeness)",
            "by_group": by_group, "meister_groups": pooled}


def _group_rows(groups: Sequence[tuple[str, str]], w: Distances, rep: np.ndarray, rep_u: np.ndarray,
                human_group: np.ndarray) -> list[dict[str, Any]]:
    rows = []
    for k, (a, g) in enumerate(groups):
        n_questions = int(np.isfinite(w.model[:, 1 + k]).sum())
        ci = rounded_interval(rep[:, 1 + k], n_units=n_questions)
        rows.append({
            "attribute": a,
            "group": g,
            "n_questions": n_questions,
            "model": rounded(rep[0, 1 + k]),
            "model_ci_low": ci["low"],
            "model_ci_high": ci["high"],
            "uniform": rounded(rep_u[0, 1 + k]),
            "humans": rounded(human_group[0, k]),
        })
    return rows


def _tables(scores: Sequence[ItemScore], topic_names: Sequence[str], w: Distances, refusal: np.ndarray,
            letter_mass: np.ndarray) -> dict[str, list[dict[str, Any]]]:
    waves = sorted({s.values["wave"] for s in scores})
    return {
        "topics": _breakdown(scores, topic_names, lambda s, t: t in s.values["topics"], w, refusal, "topic"),
        "waves": _breakdown(scores, waves, lambda s, wave: s.values["wave"] == wave, w, refusal, "wave"),
        "questions": [
            {
                "key": s.values["key"],
                "wave": s.values["wave"],
                "topics": "|".join(s.values["topics"]),
                "n_options": s.values["n_options"],
                "wd_model": rounded(w.model[j, 0]),
                "wd_uniform": rounded(w.uniform[j, 0]),
                "refusal_model": rounded(refusal[j, 0]),
                "refusal_humans": rounded(refusal[j, 1]),
                "letter_mass": rounded(letter_mass[j, 0]),
            }
            for j, s in enumerate(scores)
        ],
    }


def _breakdown(scores: Sequence[ItemScore], keys: Sequence[str], member: Callable[[ItemScore, str], bool],
               w: Distances, refusal: np.ndarray, label: str) -> list[dict[str, Any]]:
    rows = []
    for key in keys:
        mask = np.array([member(s, key) for s in scores])
        with om.quiet_nan_warnings():
            rows.append({
                label: key,
                "n_questions": int(mask.sum()),
                "model": rounded(1 - np.nanmean(w.model[mask, 0])),
                "uniform": rounded(1 - np.nanmean(w.uniform[mask, 0])),
                "refusal_model": rounded(np.nanmean(refusal[mask, 0])),
                "refusal_humans": rounded(np.nanmean(refusal[mask, 1])),
            })
    return rows


def _consistency_section(cons: dict[str, np.ndarray] | None, groups: Sequence[tuple[str, str]],
                         topics: Sequence[str]) -> dict[str, Any]:
    if cons is None:
        return {"available": False, "reason": "no coarse-topic tags (cg:...) or no groups"}
    per_attr = {}
    for a, attr in enumerate(cons["attributes"]):
        best = int(cons["best_overall"][a, 0])
        by_topic = cons["best_by_topic"][a, 0]
        per_attr[str(attr)] = {
            "consistency": rounded(cons["per_attribute"][a, 0]),
            "best_group": groups[best][1],
            "best_by_topic": {t: groups[int(g)][1] for t, g in zip(topics, by_topic, strict=True) if g >= 0},
        }
    return {"available": True, "per_attribute": per_attr}
