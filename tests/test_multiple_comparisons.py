"""Verdicts over a family of groups (issue 27, item 3): bootstrap p-values, Holm and BH, by hand,
and the situation that asked for them: a change of nothing paints some of 60 groups by chance."""

from __future__ import annotations

import numpy as np
import pytest

from ava.experiments.compare import group_rows
from ava.metrics.multiple import bootstrap_p_value, rejected
from ava.metrics.reduction import Reduction


def test_bootstrap_p_value_by_hand():
    # resamples: 1 below 0, 1 at 0, 8 above -> below = 1.5/10, above = 8.5/10 -> p = 2 * 0.15 = 0.3
    delta = np.array([0.5, -1, 0, 1, 2, 3, 4, 5, 6, 7, 8])
    assert bootstrap_p_value(delta) == pytest.approx(0.3)
    assert bootstrap_p_value(np.array([1.0, *[2.0] * 99])) == pytest.approx(1 / 100)  # floor 1/(B+1)
    assert np.isnan(bootstrap_p_value(np.array([0.1, np.nan])))


def test_holm_and_bh_by_hand():
    p = [0.01, 0.04, 0.03, 0.005]
    # Holm, alpha 0.05, m = 4: sorted 0.005 <= 0.0125, 0.01 <= 0.0167, 0.03 > 0.025 -> stop
    assert rejected(p, 0.05, "holm") == [True, False, False, True]
    # BH: sorted 0.005, 0.01, 0.03, 0.04 vs 0.0125, 0.025, 0.0375, 0.05 -> all four pass
    assert rejected(p, 0.05, "bh") == [True, True, True, True]
    assert rejected(p, 0.05, "none") == [True, True, True, True]
    assert rejected([0.2, float("nan")], 0.05, "holm") == [False, False]
    with pytest.raises(ValueError, match="unknown correction"):
        rejected(p, 0.05, "bonferonni")


def _null_family(n_groups: int = 60, n_resamples: int = 2000, seed: int = 3) -> tuple[Reduction, Reduction]:
    """Base and tuned that differ by noise only: each group's paired difference is centred on 0,
    its resampled spread matching its point estimate's (what a 3-step LoRA run that changed nothing gives)."""
    rng = np.random.default_rng(seed)
    groups_b, groups_t = {}, {}
    for g in range(n_groups):
        base = np.full(1 + n_resamples, 0.8)
        point = rng.normal(0, 0.003)
        boot = point + rng.normal(0, 0.003, n_resamples)  # the resamples spread around this group's estimate
        groups_b[f"ATTR:g{g}"] = base
        groups_t[f"ATTR:g{g}"] = base + np.concatenate([[point], boot])
    units = {k: 100 for k in groups_b}
    make = lambda groups: Reduction(metrics={}, higher_is_better={}, n_units=100, groups=groups,  # noqa: E731
                                    group_metric="representativeness", group_units=units)
    return make(groups_b), make(groups_t)


def test_a_change_of_nothing_paints_no_group_after_the_correction():
    base, tuned = _null_family()
    unadjusted = group_rows(base, tuned, 0.95, "none")
    holm = group_rows(base, tuned, 0.95, "holm")
    flagged = sum(r["direction"] != "no clear change" for r in unadjusted)
    assert flagged >= 1  # by chance alone, as the issue saw (3 of 60)
    assert all(r["direction"] == "no clear change" for r in holm)
    assert all(r["correction"] == "holm" for r in holm)
    # the unadjusted reading stays visible beside the adjusted one
    assert sum(r["direction_unadjusted"] != "no clear change" for r in holm) == flagged


def test_a_real_change_survives_the_correction():
    base, tuned = _null_family()
    tuned.groups["ATTR:g0"] = tuned.groups["ATTR:g0"] + 0.05  # one group really moved toward people
    rows = {r["group"]: r for r in group_rows(base, tuned, 0.95, "holm")}
    assert rows["ATTR: g0"]["direction"] == "toward people"
