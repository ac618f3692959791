"""Opinion metrics against hand-computed cases (fractional and degenerate ordinals included)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import wasserstein_distance

from ava.metrics import opinion as om
from ava.metrics.resampling import interval, resample_weights

NAN = float("nan")


@pytest.mark.parametrize(
    ("positions", "d1", "d2", "expected"),
    [
        ([1, 2, 3], [1, 0, 0], [0, 0, 1], 1.0),  # all mass moved across the whole scale
        ([1, 2, 3], [0.5, 0.5, 0], [0, 0.5, 0.5], 0.5),  # half moved one step, twice: 1.0 / 2
        ([1, 2, 3, 4], [0.25] * 4, [0.25] * 4, 0.0),
        ([1, 2, 3, 4], [1, 0, 0, 0], [0, 1, 0, 0], 1 / 3),  # /(N-1) when positions are 1..N
        # "safer / more dangerous / neither" with neither at 1.5
        ([1, 2, 1.5], [1, 0, 0], [0, 0, 1], 0.5),
        ([1, 2, 1.5], [0, 1, 0], [1, 0, 0], 1.0),
        ([1, 2, 1.5], [0.5, 0.5, 0], [0, 0, 1], 0.5),  # 0.5 * 0.5 + 0.5 * 0.5 over a span of 1
        ([10, 20], [2, 2], [1, 0], 0.5),  # weights are normalised; positions are rescaled
    ],
)
def test_wd_hand_computed(positions, d1, d2, expected):
    assert om.wd(positions, d1, d2) == pytest.approx(expected)
    assert om.wd_many(positions, np.array(d1, float), np.array([d2], float))[0] == pytest.approx(expected)


def test_wd_is_scipy_over_positions_not_over_probability_vectors():
    pos, d1, d2 = [1, 2, 3], [0.7, 0.2, 0.1], [0.1, 0.2, 0.7]
    assert om.wd(pos, d1, d2) == pytest.approx(wasserstein_distance(pos, pos, d1, d2) / 2)
    assert om.wd(pos, d1, d2) != pytest.approx(wasserstein_distance(d1, d2))  # the published bug


@pytest.mark.parametrize("positions", [[1, 1], [2.0, 2.0, 2.0], [3]])
def test_degenerate_ordinals_are_refused(positions):
    assert om.is_degenerate(positions)
    d = [1 / len(positions)] * len(positions)
    with pytest.raises(om.DegenerateOrdinals):
        om.wd(positions, d, d)
    with pytest.raises(om.DegenerateOrdinals):
        om.wd_many(positions, np.array(d), np.array([d]))


def test_wd_many_matches_scipy_on_random_cases():
    rng = np.random.default_rng(0)
    for k in (2, 3, 5, 9):
        pos = rng.permutation(np.r_[rng.uniform(0, 5, k - 1), [1.0]])
        pos[rng.integers(k)] = pos[0]  # a tie among positions
        p = rng.dirichlet(np.ones(k))
        qs = rng.dirichlet(np.ones(k), size=6)
        fast = om.wd_many(pos, p, qs)
        slow = [wasserstein_distance(pos, pos, p, q) / (pos.max() - pos.min()) for q in qs]
        np.testing.assert_allclose(fast, slow, atol=1e-12)


def test_wd_many_missing_group_is_nan_and_wrong_length_is_an_error():
    out = om.wd_many([1, 2, 3], np.array([1.0, 0, 0]), np.array([[0, 0, 1.0], [NAN] * 3]))
    assert out[0] == pytest.approx(1.0) and np.isnan(out[1])
    with pytest.raises(ValueError, match="3 positions"):
        om.wd([1, 2, 3], [0.5, 0.5], [0.5, 0.5])


def test_representativeness_skips_missing_groups():
    distances = np.array([[0.2, 0.1], [0.4, NAN]])
    rep = om.representativeness(np.ones((1, 2)), distances)[0]
    assert rep == pytest.approx([0.7, 0.9])


def test_human_baselines_average_and_worst():
    distances = np.array([[0.1, 0.2, 0.5], [0.3, NAN, 0.5]])
    per_group, avg, worst = om.human_baselines(np.ones((1, 2)), distances)
    assert per_group[0] == pytest.approx([0.8, 0.8, 0.5])
    assert avg[0] == pytest.approx(0.7) and worst[0] == pytest.approx(0.5)


def test_steerability_max_over_formats_and_per_question_max():
    # steered[f, q, g]; two formats, two questions, two groups
    steered = np.array([[[0.1, 0.5], [0.3, 0.1]], [[0.2, 0.2], [0.2, 0.2]]])
    st = om.steerability(np.ones((1, 2)), steered)
    # format reps: f0 -> g0 0.8, g1 0.7; f1 -> g0 0.8, g1 0.8; best per group 0.8, 0.8
    assert st["per_format"][:, 0] == pytest.approx([0.75, 0.8])
    assert st["max_over_formats"][0] == pytest.approx(0.8)
    # per question and group the best format: g0 (0.1, 0.2), g1 (0.2, 0.1) -> 0.85 each
    assert st["per_question_max"][0] == pytest.approx(0.85)


def test_consistency_hand_computed():
    # groups a1 a2 (attribute A), b1 b2 (attribute B); topics t1 = {q0, q1}, t2 = {q2}
    distances = np.array(
        [
            [0.1, 0.3, 0.1, 0.2],
            [0.1, 0.3, 0.1, 0.2],
            [0.3, 0.2, 0.1, 0.2],
        ]
    )
    topics = np.array([[1, 0], [1, 0], [0, 1]], dtype=float)
    cons = om.consistency(np.ones((1, 3)), distances, topics, ["A", "A", "B", "B"])
    # A: best overall a1 (0.167 vs 0.267 mean WD); best on t1 a1, on t2 a2 -> 0.5. B: b1 always -> 1.0
    assert cons["per_attribute"][:, 0] == pytest.approx([0.5, 1.0])
    assert cons["overall"][0] == pytest.approx(0.75)
    assert cons["best_by_topic"][0, 0].tolist() == [0, 1]


def test_consistency_topic_without_questions_is_skipped():
    distances = np.array([[0.1, 0.3], [0.2, 0.1]])
    topics = np.array([[1, 0, 0], [1, 0, 1]], dtype=float)  # t1 has none, t2 only q1
    cons = om.consistency(np.ones((1, 2)), distances, topics, ["A", "A"])
    # overall: g0 0.15 vs g1 0.2 mean WD -> g0; t0: g0; t2: g1 -> 0.5
    assert cons["overall"][0] == pytest.approx(0.5)


def test_bootstrap_weights_and_intervals():
    w = resample_weights(50, n_resamples=200, seed=1)
    assert w.shape == (201, 50) and (w[0] == 1).all() and (w.sum(axis=1) == 50).all()
    assert (resample_weights(50, 200, seed=1) == w).all()
    assert not (resample_weights(50, 200, seed=2) == w).all()
    rng = np.random.default_rng(0)
    distances = rng.uniform(0, 0.4, size=(50, 1))
    ci = interval(om.representativeness(w, distances)[:, 0])
    assert ci["low"] < ci["value"] < ci["high"] and ci["n_resamples"] == 200
    constant = interval(om.representativeness(w, np.full((50, 1), 0.25))[:, 0])
    # every resample equals the point: no interval (never [0.75, 0.75], which reads as certainty)
    assert np.isnan(constant["low"]) and np.isnan(constant["high"]) and constant["reason"].startswith("no spread")


def test_consistency_best_overall_group_counts_questions_without_a_topic():
    distances = np.array([[0.1, 0.3], [0.3, 0.2]])  # q0 has no topic, q1 is topic t0
    topics = np.array([[0], [1]], dtype=float)
    cons = om.consistency(np.ones((1, 2)), distances, topics, ["A", "A"])
    # overall g0 (mean WD 0.2 vs 0.25) but on t0 g1: not consistent
    assert cons["overall"][0] == pytest.approx(0.0)


def test_total_variation_hand_computed():
    # |.5-.2| + |.3-.3| + |.2-.5| = .6 -> .3; unnormalised inputs are renormalised
    assert om.tv([0.5, 0.3, 0.2], [0.2, 0.3, 0.5]) == pytest.approx(0.3)
    assert om.tv([1, 1], [2, 0]) == pytest.approx(0.5)
    assert om.tv([0.1, 0.9], [0.1, 0.9]) == 0.0
    with pytest.raises(ValueError):
        om.tv([0.5, 0.5], [1.0, 0.0, 0.0])


def test_normalised_entropy_hand_computed():
    # -(.5 ln .5 + .3 ln .3 + .2 ln .2) = .34657 + .36119 + .32189 = 1.02965; / ln 3 = 1.09861
    assert om.normalised_entropy([0.5, 0.3, 0.2]) == pytest.approx(1.02965 / 1.09861, abs=1e-5)
    assert om.normalised_entropy([0.25] * 4) == pytest.approx(1.0)
    assert om.normalised_entropy([1.0, 0.0]) == 0.0
    assert om.normalised_entropy([2.0, 2.0]) == pytest.approx(1.0)  # renormalised
