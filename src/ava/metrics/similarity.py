"""GlobalOpinionQA's metrics: similarity = 1 - Jensen-Shannon distance, Avg Sim and Skew.

Definitions: ``../shared/docs/benchmarks.md`` (GlobalOpinionQA). The published CultureBank script
divides the divergence by the number of options before the square root, which inflates
similarity: ``culturebank-compat`` computes that variant, for comparison with published numbers
only, always labelled as such and never instead of the standard one.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence

import numpy as np
from scipy.spatial.distance import jensenshannon

from ava.contracts.results import ItemScore
from ava.metrics.reduction import Reduction, unit_index

VARIANTS = ("standard", "culturebank-compat")


def similarity(model: Sequence[float], human: Sequence[float], variant: str = "standard") -> float:
    """1 - Jensen-Shannon distance (natural log); ``culturebank-compat``: 1 - sqrt(JSD / n_options)."""
    d = float(jensenshannon(np.asarray(model, float), np.asarray(human, float)))
    if variant == "culturebank-compat":
        d = d / math.sqrt(len(model))
    elif variant != "standard":
        raise ValueError(f"unknown similarity variant {variant!r} (known: {', '.join(VARIANTS)})")
    return 1.0 - d


def summarise(pairs: Sequence[tuple[str, float]]) -> tuple[float, float | None, dict[str, list[float]]]:
    """(Avg Sim over pairs, Skew = sample std over country means or None below 2 countries, per country)."""
    by_country: dict[str, list[float]] = {}
    for country, sim in pairs:
        by_country.setdefault(country, []).append(sim)
    avg = float(np.mean([s for _, s in pairs]))
    means = [float(np.mean(v)) for v in by_country.values()]
    skew = statistics.stdev(means) if len(means) >= 2 else None
    return avg, skew, by_country


def summarise_resampled(weights: np.ndarray, unit_of_pair: Sequence[int], countries: Sequence[str],
                        sims: Sequence[float]) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """Avg Sim, Skew and each country's mean similarity per weight row (``[B]`` each; weights are
    per unit, a question with all its countries). Row 0 is :func:`summarise`'s, exactly."""
    names = sorted(set(countries))
    col = {c: 1 + i for i, c in enumerate(names)}
    n_units = weights.shape[1]
    sums, counts = np.zeros((n_units, 1 + len(names))), np.zeros((n_units, 1 + len(names)))
    for unit, country, sim in zip(unit_of_pair, countries, sims, strict=True):
        sums[unit, [0, col[country]]] += sim
        counts[unit, [0, col[country]]] += 1
    with np.errstate(invalid="ignore", divide="ignore"):
        means = (weights @ sums) / (weights @ counts)
        skew = np.nanstd(means[:, 1:], axis=1, ddof=1) if len(names) >= 2 else np.full(len(weights), np.nan)
    avg0, skew0, by_country = summarise(list(zip(countries, sims, strict=True)))
    means[0, 0] = avg0
    skew[0] = np.nan if skew0 is None else skew0
    for c, values in by_country.items():
        means[0, col[c]] = float(np.mean(values))
    return means[:, 0], skew, {c: means[:, col[c]] for c in names}


def reduce_similarity(scores: Sequence[ItemScore], weights: np.ndarray) -> Reduction:
    """Avg Sim and Skew (x100; ``*_cbcompat`` too where the records carry that variant) and each
    country's mean similarity. Records: ``pairs``, one ``[country, similarity, uniform's
    similarity(, culturebank-compat similarity)]`` per country the prompt was compared with."""
    _, index = unit_index(scores)
    pairs = [(j, p) for j, s in zip(index, scores, strict=True) for p in s.values["pairs"]]
    units, countries = [j for j, _ in pairs], [p[0] for _, p in pairs]
    metrics: dict[str, np.ndarray] = {}
    groups: dict[str, np.ndarray] = {}
    for suffix, column in (("", 1), ("_cbcompat", 3)):
        if not pairs or len(pairs[0][1]) <= column:
            continue
        avg, skew, by_country = summarise_resampled(weights, units, countries, [p[column] for _, p in pairs])
        metrics[f"avg_sim{suffix}"], metrics[f"skew{suffix}"] = 100 * avg, 100 * skew
        if not suffix:
            groups = {c: 100 * v for c, v in by_country.items()}
    per_country: dict[str, set[int]] = {}
    for j, c in zip(units, countries, strict=True):
        per_country.setdefault(c, set()).add(j)
    u_avg, u_skew, _ = summarise([(p[0], p[2]) for _, p in pairs]) if pairs else (float("nan"), None, {})
    references = {"avg_sim": {"uniform": 100 * u_avg}, "skew": {"uniform": None if u_skew is None else 100 * u_skew}}
    return Reduction(metrics=metrics, higher_is_better={k: not k.startswith("skew") for k in metrics},
                     n_units=weights.shape[1], groups=groups, group_metric="similarity",
                     group_units={c: len(per_country[c]) for c in groups},
                     references={k: v for k, v in references.items() if k in metrics})
