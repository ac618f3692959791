"""Classification metrics: accuracy, class-balanced accuracy, macro-F1 over thresholds, AUROC.

Used by the AVA training tasks (TAP: which audience an ad performs best for), CultureNLI
(entailment read like US or Indian annotators) and CultureBank (would most of a group agree).
The ``*_resampled`` forms take the weight matrix of :mod:`ava.metrics.resampling` (``[B, n]``,
one weight per item) and return one value per row; row 0 is computed exactly as the plain
function computes it, so a point estimate never depends on which form produced it.
"""

from __future__ import annotations

import warnings
from collections import defaultdict
from collections.abc import Sequence

import numpy as np

from ava.contracts.results import ItemScore
from ava.metrics.reduction import Reduction, unit_index


def accuracy(correct: Sequence[bool]) -> float:
    """Share correct, in percent (NaN without items)."""
    return 100.0 * sum(correct) / len(correct) if correct else float("nan")


def balanced_accuracy(gold: Sequence[str], correct: Sequence[bool]) -> float:
    """Mean over gold classes of the accuracy within the class, in percent.

    Equal to plain accuracy on a class-balanced test set (what the method published), without
    throwing away items to balance it.
    """
    by_class: dict[str, list[bool]] = defaultdict(list)
    for g, c in zip(gold, correct, strict=True):
        by_class[g].append(c)
    if not by_class:
        return float("nan")
    return 100.0 * sum(sum(v) / len(v) for v in by_class.values()) / len(by_class)


def balanced_accuracy_resampled(weights: np.ndarray, gold: Sequence[str], correct: Sequence[bool]) -> np.ndarray:
    """:func:`balanced_accuracy` per weight row: per class, weighted share correct; mean over the
    classes drawn in that row (a class no draw hit has no accuracy to average)."""
    classes = sorted(set(gold))
    out = np.full(len(weights), np.nan)
    if not classes:
        return out
    member = np.array([[g == c for c in classes] for g in gold], dtype=float).reshape(len(gold), len(classes))
    hits = member * np.asarray(correct, dtype=float)[:, None]
    with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a resample that drew no item: NaN, by design
        per_class = (weights @ hits) / (weights @ member)
        out = 100.0 * np.nanmean(np.where(np.isfinite(per_class), per_class, np.nan), axis=1)
    out[0] = balanced_accuracy(gold, correct)
    return out


def macro_f1_sweep(gold: Sequence[int], scores: Sequence[float], thresholds: Sequence[float]
                   ) -> list[tuple[float, float]]:
    """(threshold, macro-F1 of ``scores > threshold`` against 0/1 ``gold``) for each threshold."""
    from sklearn.metrics import f1_score

    y = np.asarray(gold, int)
    p = np.asarray(scores, float)
    return [(float(t), float(f1_score(y, (p > t).astype(int), average="macro", labels=[0, 1], zero_division=0)))
            for t in thresholds]


def best_macro_f1_resampled(weights: np.ndarray, gold: Sequence[int], scores: Sequence[float],
                            thresholds: Sequence[float]) -> np.ndarray:
    """Per weight row, the best macro-F1 over ``thresholds`` (weighted confusion counts); row 0
    is :func:`macro_f1_sweep`'s maximum."""
    y = np.asarray(gold, bool)
    p = np.asarray(scores, float)
    best = np.full(len(weights), -np.inf)
    for t in thresholds:
        pred = p > t
        tp1, fp1, fn1 = (weights @ (pred & y), weights @ (pred & ~y), weights @ (~pred & y))
        tp0 = weights @ (~pred & ~y)
        with np.errstate(invalid="ignore", divide="ignore"):
            f1_pos = np.where(2 * tp1 + fp1 + fn1 > 0, 2 * tp1 / (2 * tp1 + fp1 + fn1), 0.0)
            f1_neg = np.where(2 * tp0 + fn1 + fp1 > 0, 2 * tp0 / (2 * tp0 + fn1 + fp1), 0.0)
        best = np.maximum(best, (f1_pos + f1_neg) / 2)
    best[0] = max(f1 for _, f1 in macro_f1_sweep(gold, scores, thresholds))
    return best


def auroc(gold: Sequence[int], scores: Sequence[float], weights: Sequence[float] | None = None) -> float | None:
    """Threshold-free: AUROC of ``scores`` against 0/1 ``gold``; None when one class only."""
    from sklearn.metrics import roc_auc_score

    y = np.asarray(gold, int)
    w = None if weights is None else np.asarray(weights, float)
    present = set(y[w > 0].tolist()) if w is not None else set(y.tolist())
    if len(present) != 2:
        return None
    return float(roc_auc_score(y, scores, sample_weight=w))


# -- item scores -> resampled statistics --------------------------------------------------
def item_weights(scores: Sequence[ItemScore], weights: np.ndarray) -> np.ndarray:
    """Unit weights ``[B, n_units]`` spread to the items ``[B, n_items]`` (an item weighs as its unit)."""
    _, index = unit_index(scores)
    return weights[:, index]


def reduce_entailment(scores: Sequence[ItemScore], weights: np.ndarray) -> Reduction:
    """CultureNLI, per culture: the best macro-F1 over the records' thresholds and the AUROC of
    P(entail), x100. Records: ``culture``, ``entail`` (0/1 gold), ``p_entail``, ``thresholds``."""
    w = item_weights(scores, weights)
    metrics: dict[str, np.ndarray] = {}
    for code in dict.fromkeys(s.values["culture"] for s in scores):
        cols = [k for k, s in enumerate(scores) if s.values["culture"] == code]
        gold = [int(scores[k].values["entail"]) for k in cols]
        p = [float(scores[k].values["p_entail"]) for k in cols]
        metrics[code] = 100 * best_macro_f1_resampled(w[:, cols], gold, p, scores[cols[0]].values["thresholds"])
        area = [auroc(gold, p, row) for row in w[:, cols]]
        area[0] = auroc(gold, p)
        metrics[f"{code}_auroc"] = 100 * np.array([np.nan if a is None else a for a in area])
    return Reduction(metrics=metrics, higher_is_better={k: True for k in metrics}, n_units=weights.shape[1])


def reduce_agreement(scores: Sequence[ItemScore], weights: np.ndarray) -> Reduction:
    """CultureBank, per source: accuracy (x100) of Yes = P(Yes) > P(No) against the gold, a tie
    counting half. Records: ``source``, ``credit`` (1, 0 or 0.5)."""
    w = item_weights(scores, weights)
    metrics: dict[str, np.ndarray] = {}
    for source in dict.fromkeys(s.values["source"] for s in scores):
        cols = [k for k, s in enumerate(scores) if s.values["source"] == source]
        credit = np.array([float(scores[k].values["credit"]) for k in cols])
        with np.errstate(invalid="ignore", divide="ignore"):
            acc = 100 * (w[:, cols] @ credit) / w[:, cols].sum(axis=1)
        acc[0] = 100 * float(credit.mean())
        metrics[source.lower()] = acc
    return Reduction(metrics=metrics, higher_is_better={k: True for k in metrics}, n_units=weights.shape[1])
