"""``--set expression=calibrated``: the letter log-probabilities with one temperature per model.

Meister et al. (NAACL 2025) found raw letter log-probabilities worse than the uniform guess on
OpinionQA and temperature-scaled ones far better; the temperature must be fitted on questions that
are then not scored, or the score would reward the fit. So, like PriDe's estimation questions
(:mod:`.option_orders`): a seeded fitting set of ``calibration_questions`` questions is scored with
the same prompts, the one temperature ``T`` minimising their mean Wasserstein distance to the
Overall human distribution is fitted on them, and every other question is scored with
``softmax(log p / T)`` over its substantive options. The fitting questions get no item score.

Why WD and not TV: WD (over the options' ordinal positions) is what ava's headline
representativeness measures, so the fit minimises the number it reports; TV is reported beside it
and is not fitted. ``T`` is applied to each prompt's substantive letters before the orders are
mapped back and averaged (``--set orders``), so it means the same with one order or several; the
refusal letters and the letter mass are left as scored. docs/evaluation.md, "Calibrated log-probs".
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.optimize import minimize_scalar

from ava.contracts.scoring import ScoredItem
from ava.contracts.surveys import SurveyQuestion
from ava.evals.task import EvalItem
from ava.evals.tasks.option_orders import grouped_reads, ids_hash, read_orders
from ava.metrics import opinion as om
from ava.subsets import seeded_subset

CALIBRATION_QUESTIONS = 100
MIN_FIT = 10
MIN_SCORED = 10
"""At least this many questions to fit the temperature on, and this many left to score."""
T_BOUNDS = (0.01, 100.0)
"""The temperatures searched; at T=100 a few nats of log-probability are flat, at 0.01 an argmax.
A best fit at either end is an error (the model's log-probs carry nothing the fit can use)."""
GRID = 41
"""Log-spaced grid over the bounds that locates the best basin before ``minimize_scalar`` refines
it: mean WD as a function of T need not be unimodal, and Brent's method alone finds a local one."""

SETTINGS = {
    "calibration_questions": f"with expression=calibrated: questions in the seeded fitting set, excluded from "
                             f"the score (default {CALIBRATION_QUESTIONS}; at least {MIN_FIT}, leaving {MIN_SCORED} "
                             "to score)",
}


@dataclass(frozen=True)
class CalibrationSpec:
    questions: int = CALIBRATION_QUESTIONS
    seed: int = 0

    def version_suffix(self) -> str:
        """Appended to the task version, so calibrated results and caches never mix with others."""
        return f"+calibrated-n{self.questions}-seed{self.seed}"


def calibration_spec(settings: Mapping[str, Any], seed: int) -> CalibrationSpec | None:
    """The calibration settings, checked; None unless ``expression=calibrated``."""
    if str(settings.get("expression", "logprobs")) != "calibrated":
        if "calibration_questions" in settings:
            raise ValueError("--set calibration_questions: only with expression=calibrated; drop it or add "
                             "--set expression=calibrated")
        return None
    raw = settings.get("calibration_questions", CALIBRATION_QUESTIONS)
    try:
        n = int(raw)
    except (TypeError, ValueError):
        raise ValueError(f"--set calibration_questions={raw!r}: expected a whole number of questions") from None
    if n < MIN_FIT:
        raise ValueError(f"--set calibration_questions={n}: too few to fit a temperature; use at least {MIN_FIT}")
    if str(settings.get("debias", "none")) != "none":
        raise ValueError("--set expression=calibrated with debias=pride: both correct the letters with a fit on "
                         "held-out questions; use one of them")
    return CalibrationSpec(n, seed)


@dataclass
class Calibration:
    """The fitting set (chosen when the task is built) and, once scored, the fitted temperature."""

    spec: CalibrationSpec
    fit_ids: list[str]
    temperature: float | None = None
    fit: dict[str, Any] = field(default_factory=dict)

    def calibrate(self, items: Sequence[EvalItem], outputs: Mapping[str, ScoredItem],
                  by_key: Mapping[str, SurveyQuestion]) -> tuple[list[EvalItem], dict[str, ScoredItem]]:
        """Fit T on the fitting questions' prompts; the other items, their outputs tempered."""
        self.fit_on(items, outputs, by_key)
        assert self.temperature is not None
        excluded = set(self.fit_ids)
        kept = [item for item in items if str(item.meta["question"]) not in excluded]
        tempered = {item.id: temper(outputs[item.id], len(by_key[str(item.meta["question"])].options),
                                    self.temperature) for item in kept}
        return kept, tempered

    def fit_on(self, items: Sequence[EvalItem], outputs: Mapping[str, ScoredItem],
               by_key: Mapping[str, SurveyQuestion]) -> None:
        """T from the fitting questions among ``items`` (the runner calls this on them alone, before
        it scores the rest, so a fit that fails costs only the fitting set); ValueError in one line."""
        reads = grouped_reads(items, outputs, by_key)
        fitting = [uid for uid in self.fit_ids if uid in reads]  # a partial set (lm-eval --limit): what was scored
        if len(fitting) < MIN_FIT:
            raise ValueError(f"calibration: {len(fitting)} of the {len(self.fit_ids)} fitting questions were scored; "
                             f"at least {MIN_FIT} are needed to fit a temperature; score the whole task")
        self.temperature, self.fit = fit_temperature([by_key[u] for u in fitting], [reads[u] for u in fitting])
        self.fit["fitting_questions_scored"] = len(fitting)

    def section(self) -> dict[str, Any]:
        """What a result records: T, the fitting set (size, ids and their hash), that it is unscored."""
        return {"temperature": None if self.temperature is None else round(self.temperature, 6),
                "fitting_questions": len(self.fit_ids), "fitting_ids_sha256": ids_hash(self.fit_ids),
                "fitting_ids": self.fit_ids, "excluded_from_score": True, "seed": self.spec.seed,
                "objective": "mean WD to the Overall distribution on the fitting set (the headline's distance)",
                "applied": "softmax(log p / T) over each prompt's substantive letters, before orders are averaged",
                "bounds": list(T_BOUNDS), **self.fit}


def plan_calibration(ids: Sequence[str], spec: CalibrationSpec) -> Calibration:
    """The seeded fitting set among the questions to be scored; too few to fit and score is an error."""
    n = len(ids)
    if n < spec.questions + MIN_SCORED:
        raise ValueError(f"--set calibration_questions={spec.questions}: only {n} questions, and {MIN_SCORED} must be "
                         f"left to score; use at most {max(n - MIN_SCORED, 0)} (at least {MIN_FIT}) or score more "
                         "questions (--limit)")
    return Calibration(spec, [ids[i] for i in seeded_subset(n, spec.questions, spec.seed, "numpy")])


def temper(scored: ScoredItem, n: int, t: float) -> ScoredItem:
    """``scored`` with its first ``n`` (substantive) letters' log-probs divided by ``t`` and shifted
    so their total mass is unchanged: renormalised over them it is ``softmax(log p / t)``; the
    refusal letters and the letter mass stay as scored."""
    lp = np.asarray(scored.logprobs[:n], dtype=float)
    mass = np.logaddexp.reduce(lp)
    scaled = lp / t
    scaled += mass - np.logaddexp.reduce(scaled)
    return ScoredItem(scored.id, (*(float(x) for x in scaled), *scored.logprobs[n:]))


def mean_wd(questions: Sequence[SurveyQuestion], reads: Sequence[Sequence[tuple[Sequence[int], ScoredItem]]],
            t: float) -> float:
    """Mean over questions of the WD between the tempered reading and the Overall distribution."""
    wds = []
    for q, qreads in zip(questions, reads, strict=True):
        n = len(q.options)
        dist = read_orders(q, [(order, temper(s, n, t)) for order, s in qreads]).dist
        wds.append(om.wd(q.ordinals, dist, q.overall.distribution))
    return float(np.mean(wds))


def fit_temperature(questions: Sequence[SurveyQuestion],
                    reads: Sequence[Sequence[tuple[Sequence[int], ScoredItem]]]) -> tuple[float, dict[str, Any]]:
    """The T in :data:`T_BOUNDS` minimising :func:`mean_wd`: the best of a log-spaced grid, refined
    by ``scipy.optimize.minimize_scalar`` (bounded, on log T) between its neighbours. A best value
    at a bound, or a refinement that does not converge, is a one-line error."""
    lo, hi = math.log(T_BOUNDS[0]), math.log(T_BOUNDS[1])
    grid = np.linspace(lo, hi, GRID)
    values = [mean_wd(questions, reads, math.exp(x)) for x in grid]
    best = int(np.argmin(values))
    if max(values) - min(values) < 1e-12:
        raise ValueError(f"calibration: on {len(questions)} fitting questions the letters' distribution does not "
                         "change with the temperature (the model gives every letter the same probability): there is no "
                         "temperature to fit; use expression=logprobs")
    if best in (0, GRID - 1):
        way = "flattening the letters to uniform" if best else "sharpening them to an argmax"
        raise ValueError(f"calibration: the best temperature is at the bound T={math.exp(grid[best]):g}: "
                         f"{len(questions)} fitting questions are fit best by {way} (mean WD {values[best]:.4f}; "
                         f"at T=1 {mean_wd(questions, reads, 1.0):.4f}), so the letters carry no opinion a "
                         "temperature can use; report expression=logprobs beside the uniform guess")
    res = minimize_scalar(lambda x: mean_wd(questions, reads, math.exp(x)), method="bounded",
                          bounds=(grid[best - 1], grid[best + 1]), options={"xatol": 1e-5})
    if not res.success:
        raise ValueError(f"calibration: the temperature fit did not converge ({res.message}); "
                         "use more calibration_questions or expression=logprobs")
    t = math.exp(float(res.x))
    return t, {"fit_mean_wd": round(float(res.fun), 6), "fit_mean_wd_at_t1": round(mean_wd(questions, reads, 1.0), 6)}
