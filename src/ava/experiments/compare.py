"""Base vs tuned on the same items: the comparison a reviewer asks for.

For every task both evaluations ran, its item scores (``scores/<task>.jsonl``) are reduced the
way the task reduces them (the reducer its results name, :mod:`ava.metrics.reducers`), for both
runs with the *same* resamples of the units (questions; items for ava-tasks): a paired bootstrap,
so the noise the two runs share cancels. Every headline statistic the reducer gives gets base,
tuned, the difference and its interval, with the references that do not depend on the model
(uniform or random, the humans) beside it; every group (OpinionQA demographic groups,
GlobalOpinionQA countries, steering personas' groups) the same, with whether it moved toward
people or away. Nothing is worked out a second time here: the numbers are the tasks' own.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ava.contracts.experiments import ExperimentFolder
from ava.contracts.results import ItemScore, RunDirectory
from ava.metrics.multiple import bootstrap_p_value, rejected
from ava.metrics.reducers import reducer
from ava.metrics.reduction import Reduction
from ava.metrics.resampling import interval, resample_weights

SCHEMA = "ava-experiment-comparison/2"
CLEAR = "no clear change"
FEW = "too few questions"
MIN_UNITS = 5
"""Below this many units (a country asked only once or twice) a resampled interval is no
interval at all: such a row gets no verdict."""


class ComparisonError(ValueError):
    """Two runs that cannot be compared (different items); the message names the task."""


def compare(out: ExperimentFolder, recipe: Any, base: Mapping[str, Any], tuned: Mapping[str, Any],
            loss: Mapping[str, Any]) -> dict[str, Any]:
    """The comparison of two finished evaluation runs of the same tasks (the experiment's base and tuned)."""
    settings = recipe["compare"]
    benchmark_of = {t: b for b, ts in (base["run"]["config"].get("benchmarks") or {}).items() for t in ts}
    rows: list[dict[str, Any]] = []
    groups: dict[str, list[dict[str, Any]]] = {}
    mass: dict[str, dict[str, float | None]] = {}
    for task, b_res in base["tasks"].items():
        t_res = tuned["tasks"].get(task)
        if t_res is None:
            continue
        b_red, t_red = reduce_pair(RunDirectory(out.evaluation("base")), RunDirectory(out.evaluation("tuned")), task,
                                   b_res["task_info"]["reducer"], settings["n_resamples"], settings["seed"])
        head = {"benchmark": benchmark_of.get(task, task), "task": task, "unit": b_res.get("unit", "units")}
        rows += [{**head, **r} for r in metric_rows(b_red, t_red, settings["confidence"])]
        grp = group_rows(b_red, t_red, settings["confidence"], settings.get("correction", "holm"))
        if grp:
            groups[task] = grp
        if b_res.get("diagnostics"):
            mass[task] = {"base": _mass(b_res), "tuned": _mass(t_res)}
    return {
        "schema": SCHEMA,
        "experiment": recipe["name"],
        "model": recipe["model"]["name"],
        "bootstrap": {"paired": True, "n_resamples": settings["n_resamples"], "confidence": settings["confidence"],
                      "seed": settings["seed"], "unit": "question (ava-tasks: item)",
                      "group_correction": settings.get("correction", "holm")},
        "metrics": rows,
        "groups": groups,
        "letter_mass": mass,
        "training": {k: loss.get(k) for k in ("result", "data", "train_s")} | {"losses": loss.get("losses", [])},
    }


def reduce_pair(base: RunDirectory, tuned: RunDirectory, task: str, name: str, n_resamples: int,
                seed: int) -> tuple[Reduction, Reduction]:
    """Both runs' item scores of ``task`` reduced with one set of resamples over the base run's units."""
    from ava.evals.rundir import read_scores

    b_scores = read_scores(base.scores(task))
    t_by_id = {s.id: s for s in read_scores(tuned.scores(task))}
    missing = [s.id for s in b_scores if s.id not in t_by_id]
    if missing or len(t_by_id) != len(b_scores):
        if _asked(base, task) != _asked(tuned, task):
            raise ComparisonError(f"{task}: the two runs scored different items (e.g. {missing[:3]}); "
                                  "evaluate both models on the same items")
        # the same items asked, some left unscored by one model (a text method's unreadable replies, never
        # imputed): the pair is compared on the questions both models answered, and n says how many
        b_scores = [s for s in b_scores if s.id in t_by_id]
    t_scores: Sequence[ItemScore] = [t_by_id[s.id] for s in b_scores]
    weights = resample_weights(len({s.unit for s in b_scores}), n_resamples, seed)
    reduce = reducer(name)
    return reduce(b_scores, weights), reduce(t_scores, weights)


def _asked(run: RunDirectory, task: str) -> set[str] | None:
    """The ids of the items a run asked (its items file), None where it has none."""
    from ava.io import read_jsonl

    path = run.items(task)
    return {str(r["id"]) for r in read_jsonl(path)} if path.is_file() else None


def verdict_row(metric: str, b: np.ndarray, t: np.ndarray, confidence: float, *, higher_is_better: bool = True,
                n: int | None = None) -> dict[str, Any]:
    """Base, tuned, the paired difference with its interval, and the verdict it supports."""
    delta = t - b
    ci = interval(delta, confidence)
    low, high = ci["low"], ci["high"]
    better = (low > 0) if higher_is_better else (high < 0)
    worse = (high < 0) if higher_is_better else (low > 0)
    verdict = "better" if better else "worse" if worse else CLEAR
    if n is not None and n < MIN_UNITS:
        verdict = FEW
    return {"metric": metric, "base": _f(b[0]), "tuned": _f(t[0]), "delta": _f(delta[0]), "ci_low": _f(low),
            "ci_high": _f(high), "higher_is_better": higher_is_better, "verdict": verdict, "n": n}


def metric_rows(b: Reduction, t: Reduction, confidence: float) -> list[dict[str, Any]]:
    rows = []
    for metric, series in b.metrics.items():
        if metric not in t.metrics:
            continue
        row = verdict_row(metric, series, t.metrics[metric], confidence,
                          higher_is_better=b.higher_is_better.get(metric, True), n=b.n_units)
        refs = b.references.get(metric, {})
        row["uniform"] = _f(refs.get("uniform", refs.get("random")))
        row["humans"], row["humans_worst"] = _f(refs.get("humans")), _f(refs.get("humans_worst"))
        notes = {k: {"base": v, "tuned": t.notes.get(metric, {}).get(k)} for k, v in b.notes.get(metric, {}).items()}
        if notes:
            row["notes"] = notes
        rows.append(row)
    return rows


def group_rows(b: Reduction, t: Reduction, confidence: float, correction: str = "holm") -> list[dict[str, Any]]:
    """Per group: the paired difference and its (unadjusted) interval, and a verdict that holds over
    the whole family of groups: a bootstrap p-value per group, ``correction`` (Holm: family-wise
    error; BH: false discovery rate) at level 1 - ``confidence`` over the groups with enough units.
    ``direction`` is the adjusted reading; ``direction_unadjusted`` the interval's alone."""
    rows = []
    for label, series in b.groups.items():
        if label not in t.groups:
            continue
        r = verdict_row(b.group_metric or "value", series, t.groups[label], confidence, n=b.group_units.get(label))
        r["p_value"] = _f(bootstrap_p_value(t.groups[label] - series))
        rows.append({"group": label.replace(":", ": ", 1) if ":" in label else label, **r,
                     "direction_unadjusted": _direction(r)})
    family = [k for k, r in enumerate(rows) if r["verdict"] != FEW]
    p = [np.nan if rows[k]["p_value"] is None else rows[k]["p_value"] for k in family]
    for k, significant in zip(family, rejected(p, 1 - confidence, correction), strict=True):
        r = rows[k]
        good = (r["delta"] or 0) > 0 if r["higher_is_better"] else (r["delta"] or 0) < 0
        r["verdict"] = ("better" if good else "worse") if significant else CLEAR
    for r in rows:
        r["correction"] = correction
        r["direction"] = _direction(r)
    return rows


def _mass(result: Mapping[str, Any]) -> float | None:
    diag = result.get("diagnostics") or {}
    return diag.get("letter_mass_mean")


def _f(x: Any) -> float | None:
    if x is None:
        return None
    x = float(x)
    return round(x, 6) if np.isfinite(x) else None


def _direction(row: Mapping[str, Any]) -> str:
    return {"better": "toward people", "worse": "away from people", FEW: FEW}.get(row["verdict"], CLEAR)


# -- the terminal table ----------------------------------------------------------------------------


def print_comparison(comparison: Mapping[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(width=max(Console().width, 150))  # a log file is read in full, not cut at 80
    conf = int(round(100 * comparison["bootstrap"]["confidence"]))
    table = Table(title=f"{comparison['experiment']}: base vs tuned ({comparison['model']}; paired bootstrap "
                        f"{conf}% CI over the same questions)")
    for col in ("task", "metric", "n", "base", "tuned", "delta", f"{conf}% CI", "uniform / random",
                "humans", "reading"):
        table.add_column(col, justify="left" if col in ("task", "metric", "reading") else "right")
    for r in comparison["metrics"]:
        notes = "".join(f" ({k}: {v['base']} -> {v['tuned']})" for k, v in (r.get("notes") or {}).items())
        table.add_row(r["task"], r["metric"], str(r.get("n", "")), _fmt(r["base"]), _fmt(r["tuned"]),
                      _fmt(r["delta"], sign=True), _ci(r), _fmt(r.get("uniform")), _fmt(r.get("humans")),
                      r["verdict"] + notes)
    console.print(table)
    correction = {"holm": "Holm (family-wise error)", "bh": "Benjamini-Hochberg (false discovery rate)",
                  "none": "no correction"}[comparison["bootstrap"].get("group_correction", "holm")]
    for task, groups in comparison["groups"].items():
        moved = {d: [g["group"] for g in groups if g["direction"] == d] for d in ("toward people", "away from people")}
        raw = sum(g.get("direction_unadjusted") in ("toward people", "away from people") for g in groups)
        console.print(f"{task}: {len(groups)} groups; verdicts over the family ({correction}, {conf}%): toward "
                      f"people: {', '.join(moved['toward people']) or 'none'}; away: "
                      f"{', '.join(moved['away from people']) or 'none'}; the rest: {CLEAR} or {FEW} "
                      f"({raw} group interval(s) exclude 0 before the correction)")
    for task, m in comparison["letter_mass"].items():
        console.print(f"{task}: letter mass {_fmt(m['base'])} -> {_fmt(m['tuned'])}")


def _fmt(x: Any, sign: bool = False) -> str:
    if x is None:
        return "–"
    return f"{x:+.4f}" if sign else f"{x:.4f}"


def _ci(r: Mapping[str, Any]) -> str:
    if r.get("ci_low") is None:
        return "–"
    return f"[{r['ci_low']:+.4f}, {r['ci_high']:+.4f}]"
