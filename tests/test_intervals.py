"""Intervals that hold (issue 24): every interval ava writes contains its own point estimate or
says why, with the method named; a number that was not resampled is shown without one."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import norm

from ava.contracts.results import ItemScore
from ava.evals.tables import fmt_interval, headline_rows
from ava.evals.tasks.opinion_task import OpinionTask
from ava.metrics import opinion as om
from ava.metrics.resampling import BIAS_CORRECTED, PERCENTILE, interval, resample_weights
from test_opinionqa import fixtures

# One attribute with two groups; 10 topics of 6 questions. In every topic group g1 is better than g2
# by a hair (the per-question WD gaps +0.30, -0.29, ... average +0.0017), so the point estimate of
# consistency is 1.0; but a resample flips about half the topics: the percentile interval of this
# discrete argmax statistic lies entirely below its point, like the tuned run of issue 24 (0.547
# with [0.435, 0.533]).
GAPS = [0.30, -0.29, 0.30, -0.30, 0.30, -0.30]
N_TOPICS = 10


def knife_edge_scores() -> list[ItemScore]:
    scores = []
    for t in range(N_TOPICS):
        for j, gap in enumerate(GAPS):
            key = f"Q{t}_{j}"
            wd = {"A:g1": 0.4, "A:g2": 0.4 + gap}
            scores.append(ItemScore(key, key, {
                "key": key, "wave": "W1", "topics": [f"cg:t{t}"], "n_options": 3,
                "wd_overall": 0.3, "wd": wd, "uniform_overall": 0.25, "uniform": {"A:g1": 0.2, "A:g2": 0.3},
                "humans": {"A:g1": 0.1, "A:g2": 0.2}, "refusal_model": 0.0, "refusal_humans": 0.05,
                "letter_mass": 0.9,
            }))
    return scores


def knife_edge_consistency(n_resamples: int = 1000, seed: int = 0) -> np.ndarray:
    scores = knife_edge_scores()
    distances = np.array([[s.values["wd"]["A:g1"], s.values["wd"]["A:g2"]] for s in scores])
    topics = np.array([[f"cg:t{t}" in s.values["topics"] for t in range(N_TOPICS)] for s in scores], dtype=float)
    weights = resample_weights(len(scores), n_resamples, seed)
    return om.consistency(weights, distances, topics, ["A", "A"])["overall"]


def holds(ci: dict) -> bool:
    """The interval contains its point estimate, or there is none and a reason says why."""
    low, high = ci["low"], ci["high"]
    if low is not None and high is not None and math.isfinite(low) and math.isfinite(high):
        return low <= ci["value"] <= high and low < high
    return bool(ci.get("reason"))


def test_the_situation_percentile_excludes_the_point_of_consistency():
    series = knife_edge_consistency()
    assert series[0] == 1.0
    low, high = np.quantile(series[1:], [0.025, 0.975])
    assert high < series[0], (low, high)  # what the old interval wrote: [low, high] without its point


@pytest.mark.parametrize("method", [PERCENTILE, BIAS_CORRECTED])
def test_consistency_interval_holds_or_says_why(method):
    ci = interval(knife_edge_consistency(), method=method)
    assert holds(ci)
    assert math.isnan(ci["low"]) and math.isnan(ci["high"])
    assert ci["method"] == BIAS_CORRECTED and "point estimate outside" in ci["reason"]


def test_opinion_task_consistency_interval_holds(tmp_path):
    """Through the task: fails on the old percentile ``interval`` (it wrote [0.4, 0.9] for 1.0)."""
    m = OpinionTask("opinionqa", fixtures(), n_resamples=500).metrics(knife_edge_scores())
    assert m.headline["consistency"] == 1.0
    ci = m.intervals["consistency"]
    assert holds(ci), ci
    assert ci["method"] == BIAS_CORRECTED and ci["reason"]
    assert fmt_interval(ci) == "no valid CI"


def test_bias_corrected_percentile_hand_computed():
    # resamples 0..999 (np.quantile at p gives 999 p); point 599.5: 600 below -> z0 = Phi^-1(0.6)
    series = np.concatenate([[599.5], np.arange(1000.0)])
    ci = interval(series, method=BIAS_CORRECTED)
    z0 = 0.2533471031357997  # norm.ppf(0.6)
    assert norm.ppf(0.6) == pytest.approx(z0)
    p_low, p_high = norm.cdf(2 * z0 - 1.959963984540054), norm.cdf(2 * z0 + 1.959963984540054)
    assert (p_low, p_high) == pytest.approx((0.0731, 0.9932), abs=1e-4)  # normal table: Phi(-1.4533), Phi(2.4667)
    assert ci["low"] == pytest.approx(999 * p_low) and ci["high"] == pytest.approx(999 * p_high)
    assert ci["method"] == BIAS_CORRECTED and ci["reason"] is None and ci["n_resamples"] == 1000
    # the percentile interval of the same resamples is unchanged where it holds its point
    pct = interval(series)
    assert (pct["low"], pct["high"]) == pytest.approx((999 * 0.025, 999 * 0.975)) and pct["method"] == PERCENTILE


def test_percentile_falls_back_and_ties_count_half():
    # a discrete statistic: 97% of resamples below the point, 3% equal to it
    series = np.concatenate([[1.0], np.full(970, 0.5), np.full(30, 1.0)])
    old_low, old_high = np.quantile(series[1:], [0.025, 0.975])
    assert old_low <= 1.0 <= old_high  # percentile holds: kept as it is
    assert interval(series)["method"] == PERCENTILE
    only_below = np.concatenate([[1.0], np.full(990, 0.5), np.full(10, 1.0)])
    ci = interval(only_below)
    assert holds(ci) and ci["method"] == BIAS_CORRECTED and math.isnan(ci["low"])


def test_not_resampled_and_no_spread_give_no_interval():
    assert interval(np.array([0.8]))["reason"] == "not resampled: n_resamples = 0"
    one_unit = interval(np.full(101, 0.817), n_units=1)
    assert math.isnan(one_unit["low"]) and one_unit["reason"].startswith("not resampled: 1 unit")
    constant = interval(np.full(101, 0.25))
    assert math.isnan(constant["high"]) and constant["reason"].startswith("no spread")
    assert interval(np.array([np.nan, 0.1, 0.2]))["reason"] == "no point estimate"
    with pytest.raises(ValueError, match="unknown interval method"):
        interval(np.zeros(3), method="bca")


@pytest.mark.parametrize("seed", range(6))
def test_every_interval_of_the_opinion_task_holds(seed):
    """Property: over random item scores (few questions, so argmaxes sit near ties), every interval
    the task writes, headline and per group, contains its point or has a reason; points unchanged."""
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 12))
    groups = ["A:a1", "A:a2", "B:b1", "B:b2", "B:b3"]
    scores = []
    for q in range(n):
        wd = {g: (None if rng.random() < 0.1 else float(rng.uniform(0, 0.5))) for g in groups}
        scores.append(ItemScore(f"q{q}", f"q{q}", {
            "key": f"q{q}", "wave": "W1", "topics": [f"cg:t{t}" for t in range(3) if rng.random() < 0.5],
            "n_options": 3, "wd_overall": float(rng.uniform(0, 0.5)), "wd": wd, "uniform_overall": 0.2,
            "uniform": {g: 0.2 for g in groups}, "humans": {g: float(rng.uniform(0, 0.3)) for g in groups},
            "refusal_model": float(rng.choice([0.0, 0.1])), "refusal_humans": 0.05,
            "letter_mass": float(rng.uniform(0.5, 1)),
        }))
    m = OpinionTask("opinionqa", fixtures(), n_resamples=200, seed=seed).metrics(scores)
    for name, ci in m.intervals.items():
        assert ci["value"] == m.headline[name] or (math.isnan(ci["value"]) and math.isnan(m.headline[name]))
        assert ci["method"] in (PERCENTILE, BIAS_CORRECTED)
        if math.isfinite(ci["value"]):
            assert holds(ci), (name, ci)
        if n == 1:
            assert ci["reason"] is not None and math.isnan(ci["low"])
    for row in m.tables["groups"]:
        low, high = row["model_ci_low"], row["model_ci_high"]
        if math.isfinite(row["model"]) and math.isfinite(low):
            assert low <= row["model"] <= high and low < high


def test_a_number_not_resampled_is_shown_without_an_interval():
    results = {"tasks": {"opinionqa-steer": {
        "units": 1, "unit": "questions",
        "headline": {"steerability": 0.817, "steering_gain": -0.125, "old_style": 0.5, "kept": 0.6},
        "intervals": {
            "steerability": interval(np.full(11, 0.817), n_units=1),
            "steering_gain": interval(np.full(11, -0.125), n_units=1),
            # a results.json written before intervals had a reason
            "old_style": {"value": 0.5, "low": 0.5, "high": 0.5, "level": 0.95, "n_resamples": 1000},
            "kept": interval(np.concatenate([[0.6], np.linspace(0.5, 0.7, 100)])),
        }}}}
    rows = {r["metric"]: r for r in headline_rows(results)}
    assert rows["steerability"]["value"] == "0.817" and rows["steerability"]["ci95"] == "not resampled"
    assert rows["steering_gain"]["ci95"] == "not resampled"
    assert rows["old_style"]["ci95"] == "no spread"
    assert rows["kept"]["ci95"] == "[0.505, 0.695]"
    assert all("[0.817" not in r["ci95"] and "[-0.125" not in r["ci95"] for r in rows.values())
