"""OpinionQA (Santurkar et al. 2023): representativeness, steerability, consistency, refusal.

Two tasks over survey questions (``ava.surveys``):

* ``opinionqa`` — the default prompt, one per question: representativeness overall and per
  group beside the human baselines and the uniform model, consistency over coarse topics,
  refusal rates, per-topic and per-wave breakdowns, bootstrap CIs.
* ``opinionqa-steer`` (``--steer``) — the steering set (tag ``steer500``) with each of the
  22 groups' personas in the QA / BIO / PORTRAY formats, plus the same questions without a
  persona; each persona is compared with its own group's distribution.

``--limit N`` keeps the first N questions of each task (a steered question keeps all its
personas). OpinionQA-XL reuses both tasks with its own questions and the AVA persona format
(:mod:`ava.evals.tasks.opinionqa_xl`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ava.contracts.results import PlotSpec
from ava.contracts.scoring import ScoredItem, ScoreRequest
from ava.contracts.surveys import OVERALL, SurveyQuestion
from ava.evals.data import DataError, DataNotFound, LoadReport, first_units
from ava.evals.metrics import opinion as om
from ava.evals.prompts.opinion import render_options, templates
from ava.evals.prompts.personas import Persona, opinionqa_personas
from ava.evals.task import EvalItem, TaskOptions, TaskResult
from ava.models.letters import LETTERS, option_letters

TASK_VERSION = "1"
"""Bumped when the metrics or the item set change (the template has its own version)."""

SETTINGS = {
    "n_resamples": "bootstrap resamples for the confidence intervals (default 1000)",
    "formats": "steering persona formats to use, comma-separated: qa,bio,portray (default all)",
}


# -- questions ------------------------------------------------------------------------------
def exclusion_reason(q: SurveyQuestion) -> str | None:
    """Why a question cannot be scored, or None."""
    if len(q.ordinals) != len(q.options):
        return "ordinals do not match options"
    if om.is_degenerate(q.ordinals):
        return "degenerate ordinals"
    if len(q.options) + len(q.refusal_options) > len(LETTERS):
        return "more options than letters"
    overall = q.group(*OVERALL)
    if overall is None or not sum(overall.distribution) > 0:
        return "no Overall distribution"
    if len(overall.distribution) != len(q.options):
        return "Overall distribution does not match options"
    return None


def prepare(name: str, questions: Sequence[SurveyQuestion]) -> tuple[list[SurveyQuestion], LoadReport]:
    """The scorable questions, and a load report counting every excluded one by reason."""
    report = LoadReport(name, rows=len(questions))
    kept: list[SurveyQuestion] = []
    seen: set[tuple[str, str]] = set()
    for q in questions:
        reason = "duplicate (wave, key)" if (q.wave, q.key) in seen else exclusion_reason(q)
        seen.add((q.wave, q.key))
        if reason:
            report.drop(reason, q.key, f"{reason}; question excluded")
        else:
            kept.append(q)
    report.kept = len(kept)
    if not kept:
        raise DataError(f"{name}: no scorable question ({report.summary()}); check the survey build")
    if not any(g.distribution and sum(g.distribution) > 0 for q in kept for g in q.groups
               if (g.attribute, g.group) != OVERALL):
        raise DataError(f"{name}: every demographic group is empty in this survey data (no group has a "
                        "distribution), so no per-group number can be computed; rebuild the survey data")
    return kept, report


def question_ids(questions: Sequence[SurveyQuestion]) -> list[str]:
    """A unique id per question: its key, or ``key@wave`` for a key asked in several waves."""
    counts: dict[str, int] = {}
    for q in questions:
        counts[q.key] = counts.get(q.key, 0) + 1
    return [q.key if counts[q.key] == 1 else f"{q.key}@{q.wave}" for q in questions]


def load_questions(benchmark: str, data: str | Path | None) -> list[SurveyQuestion]:
    """The survey questions; data that is absent is :class:`DataNotFound` (pass --data), data that is
    there but must not be scored (an unfinished or incomplete build) a :class:`DataError` with the
    build's own reason and what to do (rebuild), not "pass --data"."""
    from ava.surveys import SurveyDataError, load_benchmark

    try:
        return list(load_benchmark(benchmark, path=data))
    except FileNotFoundError as exc:
        raise DataNotFound(f"{benchmark}: {exc} (pass --data PATH to the survey data)") from None
    except SurveyDataError as exc:
        raise DataError(f"{benchmark}: {exc}") from None


def topics_of(q: SurveyQuestion) -> list[str]:
    return sorted(t[3:] for t in q.tags if t.startswith("cg:"))


# -- prompts --------------------------------------------------------------------------------
def shown_options(q: SurveyQuestion) -> tuple[str, ...]:
    """Substantive options, then the refusal option(s) as the last letter(s)."""
    return (*q.options, *q.refusal_options)


def question_block(q: SurveyQuestion) -> str:
    return templates()["question_block"].format(question=q.text.strip(), options=render_options(shown_options(q)))


def make_request(item_id: str, q: SurveyQuestion, persona: Persona | None = None) -> ScoreRequest:
    """``(persona, question block, cue)``: separate segments, so a shared persona is computed once."""
    tpl = templates()
    body = (question_block(q), tpl["cue"])
    segments = (persona.text + tpl["persona_separator"], *body) if persona else body
    return ScoreRequest(item_id, segments, option_letters(len(shown_options(q))))


def model_reading(q: SurveyQuestion, scored: ScoredItem) -> tuple[np.ndarray, float]:
    """The model's distribution over the substantive options, and its refusal rate (NaN when
    the question shows no refusal option)."""
    n = len(q.options)
    dist = np.array(scored.renormalised(range(n)))
    refusal = 1.0 - float(sum(scored.probs[:n])) if q.refusal_options else float("nan")
    return dist, refusal


def group_matrix(q: SurveyQuestion, groups: Sequence[tuple[str, str]]) -> np.ndarray:
    """``[G, k]`` human distributions; NaN rows for groups with no respondents."""
    out = np.full((len(groups), len(q.options)), np.nan)
    by_key = {(g.attribute, g.group): g for g in q.groups}
    for i, key in enumerate(groups):
        g = by_key.get(key)
        if g is not None and len(g.distribution) == len(q.options) and sum(g.distribution) > 0:
            out[i] = g.distribution
    return out


def all_groups(questions: Sequence[SurveyQuestion]) -> list[tuple[str, str]]:
    """Every (attribute, group) in first-seen order, Overall excluded."""
    seen: dict[tuple[str, str], None] = {}
    for q in questions:
        for g in q.groups:
            if (g.attribute, g.group) != OVERALL:
                seen.setdefault((g.attribute, g.group), None)
    return list(seen)


def _r(x: float) -> float:
    return round(float(x), 6)


def _ci(samples: np.ndarray) -> dict[str, float]:
    return {k: (_r(v) if isinstance(v, float) else v) for k, v in om.interval(samples).items()}


class _SurveyTask:
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


# -- the default task -----------------------------------------------------------------------
@dataclass
class _Distances:
    """WDs per question: model and uniform vs [Overall, groups...], Overall vs each group."""

    model: np.ndarray
    uniform: np.ndarray
    human: np.ndarray


class OpinionTask(_SurveyTask):
    """Representativeness, consistency and refusal with OpinionQA's default prompt."""

    def __init__(self, name: str, questions: Sequence[SurveyQuestion], *, seed: int = 0,
                 n_resamples: int = om.N_RESAMPLES, limit: int | None = None) -> None:
        super().__init__(name, questions, seed=seed, n_resamples=n_resamples, limit=limit)

    def items(self) -> list[EvalItem]:
        return first_units([
            EvalItem(uid, make_request(uid, q), {"unit": uid, "question": uid, "wave": q.wave})
            for uid, q in zip(self.ids, self.questions, strict=True)
        ], self.limit)

    def metrics(self, items: Sequence[EvalItem], scores: Mapping[str, ScoredItem]) -> TaskResult:
        qs = [self.by_key[i.meta["question"]] for i in items]
        readings = [model_reading(q, scores[i.id]) for q, i in zip(qs, items, strict=True)]
        groups = all_groups(qs)
        n = len(qs)
        w = self._distances(qs, [d for d, _ in readings], groups)
        weights = om.question_weights(n, self.n_resamples, self.seed)
        rep = om.representativeness(weights, w.model)
        rep_u = om.representativeness(weights, w.uniform)
        human_group, human_avg, human_worst = om.human_baselines(weights, w.human)
        topic_names = sorted({t for q in qs for t in topics_of(q)})
        topic_matrix = np.array([[t in topics_of(q) for t in topic_names] for q in qs], dtype=float).reshape(
            n, len(topic_names)
        )
        attrs = [a for a, _ in groups]
        cons = om.consistency(weights, w.model[:, 1:], topic_matrix, attrs) if topic_names and groups else None
        refusal = np.array([[r, q.overall.refusal_rate if q.refusal_options else np.nan]
                            for q, (_, r) in zip(qs, readings, strict=True)]).reshape(n, 2)
        refusal_rates = om.weighted_mean(weights, refusal)
        letter_mass = np.array([[scores[i.id].letter_mass] for i in items]).reshape(n, 1)
        series = {
            "representativeness": rep[:, 0],
            "uniform_representativeness": rep_u[:, 0],
            "humans_average": human_avg,
            "humans_worst": human_worst,
            "consistency": cons["overall"] if cons else np.full(len(weights), np.nan),
            "refusal_model": refusal_rates[:, 0],
            "refusal_humans": refusal_rates[:, 1],
            "letter_mass": om.weighted_mean(weights, letter_mass)[:, 0],
        }
        group_rows = self._group_rows(groups, w, rep, rep_u, human_group)
        return self._result(qs, groups, topic_names, series, group_rows, cons,
                            self._tables(qs, topic_names, w, refusal, letter_mass))

    @staticmethod
    def _distances(qs: Sequence[SurveyQuestion], dists: Sequence[np.ndarray],
                   groups: Sequence[tuple[str, str]]) -> _Distances:
        n, n_groups = len(qs), len(groups)
        w = _Distances(np.full((n, 1 + n_groups), np.nan), np.full((n, 1 + n_groups), np.nan),
                       np.full((n, n_groups), np.nan))  # model / uniform column 0: Overall
        for j, (q, dist) in enumerate(zip(qs, dists, strict=True)):
            overall = np.array(q.overall.distribution, dtype=float)
            humans = np.vstack([overall[None, :], group_matrix(q, groups)])
            uniform = np.full(len(q.options), 1.0 / len(q.options))
            w.model[j] = om.wd_many(q.ordinals, dist, humans)
            w.uniform[j] = om.wd_many(q.ordinals, uniform, humans)
            w.human[j] = om.wd_many(q.ordinals, overall, humans[1:])
        return w

    @staticmethod
    def _group_rows(groups: Sequence[tuple[str, str]], w: _Distances, rep: np.ndarray, rep_u: np.ndarray,
                    human_group: np.ndarray) -> list[dict[str, Any]]:
        return [
            {
                "attribute": a,
                "group": g,
                "n_questions": int(np.isfinite(w.model[:, 1 + k]).sum()),
                "model": _r(rep[0, 1 + k]),
                "model_ci_low": _ci(rep[:, 1 + k])["low"],
                "model_ci_high": _ci(rep[:, 1 + k])["high"],
                "uniform": _r(rep_u[0, 1 + k]),
                "humans": _r(human_group[0, k]),
            }
            for k, (a, g) in enumerate(groups)
        ]

    def _tables(self, qs: Sequence[SurveyQuestion], topic_names: Sequence[str], w: _Distances,
                refusal: np.ndarray, letter_mass: np.ndarray) -> dict[str, list[dict[str, Any]]]:
        waves = sorted({q.wave for q in qs})
        return {
            "topics": _breakdown(qs, topic_names, lambda q, t: t in topics_of(q), w, refusal, "topic"),
            "waves": _breakdown(qs, waves, lambda q, wave: q.wave == wave, w, refusal, "wave"),
            "questions": [
                {
                    "key": q.key,
                    "wave": q.wave,
                    "topics": "|".join(topics_of(q)),
                    "n_options": len(q.options),
                    "wd_model": _r(w.model[j, 0]),
                    "wd_uniform": _r(w.uniform[j, 0]),
                    "refusal_model": _r(refusal[j, 0]),
                    "refusal_humans": _r(refusal[j, 1]),
                    "letter_mass": _r(letter_mass[j, 0]),
                }
                for j, q in enumerate(qs)
            ],
        }

    def _result(self, qs: Sequence[SurveyQuestion], groups: Sequence[tuple[str, str]], topic_names: Sequence[str],
                series: Mapping[str, np.ndarray], group_rows: list[dict[str, Any]], cons: dict[str, np.ndarray] | None,
                tables: dict[str, list[dict[str, Any]]]) -> TaskResult:
        headline = {k: _r(v[0]) for k, v in series.items()}
        intervals = {k: _ci(v) for k, v in series.items()}
        n = len(qs)
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
                    "waves": len({q.wave for q in qs}), "excluded": self.report.to_dict()},
            groups={f"{a}:{g}": r["model"] for (a, g), r in zip(groups, group_rows, strict=True)},
            details={"consistency": _consistency_section(cons, groups, topic_names)},
            tables={"groups": [overall_row, *group_rows], **tables},
            plots=[plot],
        )


def _breakdown(qs: Sequence[SurveyQuestion], keys: Sequence[str], member: Callable[[SurveyQuestion, str], bool],
               w: _Distances, refusal: np.ndarray, label: str) -> list[dict[str, Any]]:
    rows = []
    for key in keys:
        mask = np.array([member(q, key) for q in qs])
        with om.quiet_nan_warnings():
            rows.append({
                label: key,
                "n_questions": int(mask.sum()),
                "model": _r(1 - np.nanmean(w.model[mask, 0])),
                "uniform": _r(1 - np.nanmean(w.uniform[mask, 0])),
                "refusal_model": _r(np.nanmean(refusal[mask, 0])),
                "refusal_humans": _r(np.nanmean(refusal[mask, 1])),
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
            "consistency": _r(cons["per_attribute"][a, 0]),
            "best_group": groups[best][1],
            "best_by_topic": {t: groups[int(g)][1] for t, g in zip(topics, by_topic, strict=True) if g >= 0},
        }
    return {"available": True, "per_attribute": per_attr}


# -- the steering task ----------------------------------------------------------------------
class SteerTask(_SurveyTask):
    """Each persona's distribution vs its own group's; also the same questions unsteered."""

    def __init__(self, name: str, questions: Sequence[SurveyQuestion], personas: Sequence[Persona], *,
                 seed: int = 0, n_resamples: int = om.N_RESAMPLES, limit: int | None = None) -> None:
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

    def metrics(self, items: Sequence[EvalItem], scores: Mapping[str, ScoredItem]) -> TaskResult:
        keys = list(dict.fromkeys(i.meta["question"] for i in items))
        steered, default, uniform = self._distances(keys, items, scores)
        weights = om.question_weights(len(keys), self.n_resamples, self.seed)
        st = om.steerability(weights, steered)
        rep_default = om.representativeness(weights, default)
        rep_uniform = om.representativeness(weights, uniform)
        with om.quiet_nan_warnings():
            series = {
                "steerability": st["max_over_formats"],
                "steerability_per_question_max": st["per_question_max"],
                **{f"steerability_{f}": st["per_format"][k] for k, f in enumerate(self.formats)},
                "default_group_representativeness": np.nanmean(rep_default, axis=1),
                "uniform_group_representativeness": np.nanmean(rep_uniform, axis=1),
            }
        series["steering_gain"] = series["steerability"] - series["default_group_representativeness"]
        rows = self._group_rows(st, default, rep_default, rep_uniform)
        plot = PlotSpec(
            name="steered_vs_default",
            title=f"{self.name}: steered (best of {'/'.join(self.formats)}) vs default, {len(keys)} questions",
            labels=[f"{r['attribute']}: {r['group']}" for r in rows],
            series={"default": [r["default"] for r in rows], "steered": [r["steered"] for r in rows]},
            errors={"steered": [[r["steered_ci_low"], r["steered_ci_high"]] for r in rows]},
            reference={"uniform": _r(series["uniform_group_representativeness"][0])},
            ylabel="rep. vs persona's group",
        )
        return TaskResult(
            headline={k: _r(v[0]) for k, v in series.items()},
            units=len(keys),
            unit="questions",
            description="steerability: per group, the best persona format's representativeness against that "
                        "group's distribution, averaged over groups (published); per_question_max: the best format "
                        "per question; default / uniform: the same questions without a persona / uniform.",
            intervals={k: _ci(v) for k, v in series.items()},
            counts={"questions": len(keys), "groups": len(self.groups), "formats": self.formats,
                    "excluded": self.report.to_dict()},
            groups={f"{r['attribute']}:{r['group']}": r["steered"] for r in rows},
            tables={"groups": rows},
            plots=[plot],
        )

    def _distances(self, keys: Sequence[str], items: Sequence[EvalItem], scores: Mapping[str, ScoredItem]
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """WD per (format, question, group) with the group's persona; per (question, group) without one
        and for the uniform distribution."""
        row = {k: j for j, k in enumerate(keys)}
        col = {g: k for k, g in enumerate(self.groups)}
        fmt = {f: k for k, f in enumerate(self.formats)}
        n, n_groups = len(keys), len(self.groups)
        humans = [group_matrix(self.by_key[k], self.groups) for k in keys]
        steered = np.full((len(self.formats), n, n_groups), np.nan)
        default = np.full((n, n_groups), np.nan)
        uniform = np.full((n, n_groups), np.nan)
        for item in items:
            q = self.by_key[item.meta["question"]]
            j = row[item.meta["question"]]
            dist, _ = model_reading(q, scores[item.id])
            if "format" in item.meta:
                g = col[(item.meta["attribute"], item.meta["group"])]
                steered[fmt[item.meta["format"]], j, g] = om.wd_many(q.ordinals, dist, humans[j][g : g + 1])[0]
            else:
                default[j] = om.wd_many(q.ordinals, dist, humans[j])
                uniform[j] = om.wd_many(q.ordinals, np.full(len(q.options), 1 / len(q.options)), humans[j])
        return steered, default, uniform

    def _group_rows(self, st: dict[str, np.ndarray], default: np.ndarray, rep_default: np.ndarray,
                    rep_uniform: np.ndarray) -> list[dict[str, Any]]:
        rows = []
        for k, (a, g) in enumerate(self.groups):
            reps = {f: st["per_group_reps"][i, 0, k] for i, f in enumerate(self.formats)}
            best = max(reps, key=lambda f: -np.inf if np.isnan(reps[f]) else reps[f])
            ci = _ci(st["per_group_max"][:, k])
            rows.append({
                "attribute": a,
                "group": g,
                "n_questions": int(np.isfinite(default[:, k]).sum()),
                "default": _r(rep_default[0, k]),
                **{f: _r(v) for f, v in reps.items()},
                "best_format": best,
                "steered": _r(st["per_group_max"][0, k]),
                "steered_ci_low": ci["low"],
                "steered_ci_high": ci["high"],
                "per_question_max": _r(st["per_group_question_max"][0, k]),
                "uniform": _r(rep_uniform[0, k]),
            })
        return rows


# -- settings and the registry factory -----------------------------------------------------
def int_setting(settings: Mapping[str, Any], key: str, default: int) -> int:
    value = settings.get(key, default)
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ValueError(f"--set {key}={value!r}: expected an integer") from None


def select_formats(personas: Sequence[Persona], settings: Mapping[str, Any]) -> list[Persona]:
    """``--set formats=qa,bio`` keeps some persona formats (default: all)."""
    wanted = settings.get("formats")
    if not wanted:
        return list(personas)
    names = [f.strip() for f in str(wanted).split(",") if f.strip()]
    known = list(dict.fromkeys(p.format for p in personas))
    bad = [f for f in names if f not in known]
    if bad:
        raise ValueError(f"--set formats: unknown format(s) {bad}; known: {', '.join(known)}")
    return [p for p in personas if p.format in names]


def survey_tasks(benchmark: str, options: TaskOptions, questions: Sequence[SurveyQuestion] | None,
                 steering: Callable[[list[SurveyQuestion]], tuple[list[SurveyQuestion], list[Persona]]]) -> list[Any]:
    """The default task of a survey benchmark, and with ``--steer`` its steering task over the
    questions and personas ``steering`` picks (shared by OpinionQA and OpinionQA-XL)."""
    qs = list(questions) if questions is not None else load_questions(benchmark, options.data)
    n_resamples = int_setting(options.settings, "n_resamples", om.N_RESAMPLES)
    tasks: list[Any] = [OpinionTask(benchmark, qs, seed=options.seed, n_resamples=n_resamples,
                                    limit=options.limit_for(benchmark))]
    if options.steer:
        steer_qs, personas = steering(qs)
        tasks.append(SteerTask(f"{benchmark}-steer", steer_qs, personas, seed=options.seed, n_resamples=n_resamples,
                               limit=options.limit_for(f"{benchmark}-steer")))
    return tasks


def make_tasks(options: TaskOptions, *, questions: Sequence[SurveyQuestion] | None = None) -> list[Any]:
    """``opinionqa`` [+ ``opinionqa-steer``]; ``questions`` replaces the survey data (tests)."""

    def steering(qs: list[SurveyQuestion]) -> tuple[list[SurveyQuestion], list[Persona]]:
        steer_qs = [q for q in qs if "steer500" in q.tags]
        if not steer_qs:
            raise DataError("opinionqa: no question is tagged steer500 (the steering set)")
        return steer_qs, select_formats(opinionqa_personas(), options.settings)

    return survey_tasks("opinionqa", options, questions, steering)


def steering_requests(n_questions: int, formats: str = "qa,bio,portray") -> list[ScoreRequest]:
    """OpinionQA's real steering workload, as ``ava eval --benchmark opinionqa --steer`` builds it:
    the first ``n_questions`` of the steering set, unsteered and under every persona (speed scripts, tests)."""
    (steer,) = [t for t in make_tasks(TaskOptions(steer=True, settings={"formats": formats},
                                                  task_limits={"opinionqa-steer": n_questions}))
                if t.name == "opinionqa-steer"]
    return [item.request for item in steer.items()]
