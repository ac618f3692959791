"""The comparison of an experiment with arms: every arm vs the base, and behaviour vs each control.

Every run (each reference, each trained arm and seed) is reduced with the base reference by
:func:`ava.experiments.compare.reduce_pair`, so every reduction uses the *same* resamples of the
same questions: the differences below are paired over questions, as the two-run comparison is.

How seeds enter. An arm's change is the mean over its seeds of (arm - base); its interval is the
question bootstrap of that mean (each resample averages the seeds' statistics on the same
resampled questions). That interval holds the seeds fixed: it says how sure the questions make
us about these trained models, not about training again. The seeds' own spread is reported beside
it (each seed's change, min..max), and a verdict needs both: the interval excludes 0 **and** every
seed moved the same way. With one seed there is no spread to check and the table says so.
Groups: the same, with the family-wise correction of :func:`ava.experiments.compare.group_rows`
(``compare.correction``) on the mean's p-values; the unadjusted reading stays beside it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from ava.contracts.experiments import ExperimentFolder
from ava.contracts.results import RunDirectory
from ava.experiments.arms import arms_of
from ava.experiments.compare import CLEAR, FEW, _f, _mass, group_rows, metric_rows, reduce_pair
from ava.metrics.reduction import Reduction
from ava.reports.arms import group_summary

SCHEMA = "ava-experiment-arms/1"
SEEDS_DISAGREE = "seeds disagree"
CONTROLS = ("shuffled-audience", "survey")


def compare_arms(out: ExperimentFolder, recipe: Any, results: Mapping[str, Mapping[str, Any]],
                 losses: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    raw, settings = recipe.raw, recipe["compare"]
    arms = arms_of(raw)
    base = next(a for a in arms if a.kind == "reference" and a.model is None)
    arms = [base, *(a for a in arms if a is not base)]  # the base first in every table and the figure
    runs = {a.name: [a.folder(None)] if not a.trained else [a.folder(s) for s in raw["seeds"]] for a in arms}
    base_res = results[base.folder(None)]
    benchmark_of = {t: b for b, ts in (base_res["run"]["config"].get("benchmarks") or {}).items() for t in ts}
    pairs = [(a.name, base.name) for a in arms if a is not base]
    pairs += [(a.name, c.name) for a in arms if a.kind == "behaviour" for c in arms if c.kind in CONTROLS]
    rows: list[dict[str, Any]] = []
    groups: list[dict[str, Any]] = []
    mass: dict[str, dict[str, float | None]] = {}
    for task, b_res in base_res["tasks"].items():
        reductions: dict[str, list[Reduction]] = {}
        base_red = None
        for name, folders in runs.items():
            if name == base.name:
                continue
            reductions[name] = []
            for folder in folders:
                b_red, t_red = reduce_pair(RunDirectory(out.arm(base.folder(None)).evaluation),
                                           RunDirectory(out.arm(folder).evaluation), task,
                                           b_res["task_info"]["reducer"], settings["n_resamples"], settings["seed"])
                base_red = b_red
                reductions[name].append(t_red)
        if base_red is None:
            continue
        reductions[base.name] = [base_red]
        head = {"benchmark": benchmark_of.get(task, task), "task": task, "unit": b_res.get("unit", "units")}
        for arm, against in pairs:
            rows += [{**head, "arm": arm, "against": against, **r}
                     for r in _metric_rows(reductions[arm], reductions[against], settings)]
            groups += [{"task": task, "arm": arm, "against": against, **g}
                       for g in _group_rows(reductions[arm], reductions[against], settings)]
        if b_res.get("diagnostics"):
            mass[task] = {name: _mass(results[folders[0]]["tasks"][task]) if len(folders) == 1 else
                          _f(np.mean([_mass(results[f]["tasks"][task]) or np.nan for f in folders]))
                          for name, folders in runs.items()}
    return {
        "schema": SCHEMA,
        "experiment": recipe["name"],
        "model": recipe["model"]["name"],
        "reference": base.name,
        "seeds": list(raw["seeds"]),
        "arms": [_arm_info(a, raw, losses) for a in arms],
        "allow_unequal_budget": bool(raw.get("allow_unequal_budget")),
        "bootstrap": {"paired": True, "n_resamples": settings["n_resamples"], "confidence": settings["confidence"],
                      "seed": settings["seed"], "unit": "question (ava-tasks: item)",
                      "group_correction": settings.get("correction", "holm"),
                      "seeds": "an arm's change is the mean over its seeds; the interval is the question bootstrap "
                               "of that mean (seeds held fixed); a verdict also needs every seed to move the same way"},
        "metrics": rows,
        "groups": groups,
        "letter_mass": mass,
    }


def mean_reduction(reds: list[Reduction]) -> Reduction:
    """The seeds' reductions averaged resample by resample (the same resamples of the same questions)."""
    first = reds[0]
    if len(reds) == 1:
        return first
    metrics = {m: np.mean([r.metrics[m] for r in reds], axis=0) for m in first.metrics if all(m in r.metrics
                                                                                              for r in reds)}
    groups = {g: np.mean([r.groups[g] for r in reds], axis=0) for g in first.groups if all(g in r.groups
                                                                                           for r in reds)}
    return Reduction(metrics=metrics, higher_is_better=first.higher_is_better, n_units=first.n_units, groups=groups,
                     group_metric=first.group_metric, group_units=first.group_units, references=first.references)


def _seed_check(row: dict[str, Any], deltas: list[float | None]) -> dict[str, Any]:
    """The seeds' own changes beside the interval; a verdict holds only if every seed moved its way."""
    finite = [d for d in deltas if d is not None]
    row["seed_deltas"] = deltas
    row["seed_min"], row["seed_max"] = (_f(min(finite)), _f(max(finite))) if finite else (None, None)
    key = "direction" if "direction" in row else "verdict"
    row["verdict_interval"] = row["verdict"]
    if key == "direction":
        row["direction_interval"] = row["direction"]
    moved = row[key] not in (CLEAR, FEW)
    if moved and len(deltas) > 1:
        sign = np.sign(row["delta"] or 0)
        if not finite or any(np.sign(d) != sign for d in finite):
            row[key] = SEEDS_DISAGREE
            row["verdict"] = SEEDS_DISAGREE
    return row


def _metric_rows(arm: list[Reduction], against: list[Reduction], settings: Mapping[str, Any]) -> list[dict[str, Any]]:
    rows = metric_rows(mean_reduction(against), mean_reduction(arm), settings["confidence"])
    out = []
    for r in rows:
        deltas = _paired_deltas(arm, against, lambda red, m=r["metric"]: red.metrics.get(m))
        r["against_value"], r["arm_value"] = r.pop("base"), r.pop("tuned")
        out.append(_seed_check(r, deltas))
    return out


def _group_rows(arm: list[Reduction], against: list[Reduction], settings: Mapping[str, Any]) -> list[dict[str, Any]]:
    rows = group_rows(mean_reduction(against), mean_reduction(arm), settings["confidence"],
                      settings.get("correction", "holm"))
    out = []
    for r in rows:
        label = r["group"].replace(": ", ":", 1) if r["group"] not in arm[0].groups else r["group"]
        deltas = _paired_deltas(arm, against, lambda red, g=label: red.groups.get(g))
        r["against_value"], r["arm_value"] = r.pop("base"), r.pop("tuned")
        out.append(_seed_check(r, deltas))
    return out


def _paired_deltas(arm: list[Reduction], against: list[Reduction], pick: Any) -> list[float | None]:
    """Each seed's change (point estimates): against a reference (one run), or seed by seed against a
    control trained with the same seeds (the same pair sample, order and initialisation)."""
    out = []
    for k, red in enumerate(arm):
        other = against[k] if len(against) == len(arm) else against[0]
        a, b = pick(red), pick(other)
        out.append(None if a is None or b is None else _f(a[0] - b[0]))
    return out


def _arm_info(arm: Any, raw: Mapping[str, Any], losses: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    info: dict[str, Any] = {"name": arm.name, "kind": arm.kind, "model": arm.model or raw["model"]["name"],
                            "ratio": arm.ratio}
    if arm.trained:
        info["runs"] = {str(s): {**(losses.get(arm.folder(s), {}).get("budget") or {}),
                                 "n_samples": (losses.get(arm.folder(s), {}).get("data") or {}).get("n_samples"),
                                 "train_s": losses.get(arm.folder(s), {}).get("train_s"),
                                 "final_loss": ((losses.get(arm.folder(s), {}).get("losses") or [{}])[-1]).get("loss")}
                        for s in raw["seeds"]}
    return info


# -- the terminal table ----------------------------------------------------------------------------


def print_arms(comparison: Mapping[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    from ava.experiments.compare import _fmt

    console = Console(width=max(Console().width, 160))
    conf = int(round(100 * comparison["bootstrap"]["confidence"]))
    seeds = comparison["seeds"]
    table = Table(title=f"{comparison['experiment']}: arms ({comparison['model']}; mean over seeds {seeds}; paired "
                        f"bootstrap {conf}% CI over the same questions; seeds: each seed's change)")
    for col in ("task", "metric", "arm vs", "n", "delta", f"{conf}% CI", "seeds (min..max)", "uniform", "humans",
                "reading"):
        table.add_column(col, justify="left" if col in ("task", "metric", "arm vs", "reading") else "right")
    for r in comparison["metrics"]:
        spread = "–" if r.get("seed_min") is None else (
            f"{_fmt(r['seed_min'], sign=True)}..{_fmt(r['seed_max'], sign=True)}" if len(seeds) > 1 else "one seed")
        ci = "–" if r.get("ci_low") is None else f"[{r['ci_low']:+.4f}, {r['ci_high']:+.4f}]"
        table.add_row(r["task"], r["metric"], f"{r['arm']} vs {r['against']}", str(r.get("n", "")),
                      _fmt(r["delta"], sign=True), ci, spread, _fmt(r.get("uniform")), _fmt(r.get("humans")),
                      r["verdict"])
    console.print(table)
    for line in group_summary(comparison):
        console.print(line)
    for arm in comparison["arms"]:
        for seed, run in (arm.get("runs") or {}).items():
            examples = f", {run['survey_examples']} survey examples" if "survey_examples" in run else ""
            split = (f" ({run['behaviour_steps']} on behaviour, {run['survey_steps']} on surveys)"
                     if run.get("behaviour_steps") and run.get("survey_steps") else "")
            console.print(f"{arm['name']} seed {seed}: {run.get('optimizer_steps', '?')} optimiser steps{split}, "
                          f"{run.get('tokens_seen', '?')} tokens seen, {run.get('n_samples') or 0} instruction pairs"
                          f"{examples}, {run.get('train_s', '?')} s")
