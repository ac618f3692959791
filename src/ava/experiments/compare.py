"""Base vs tuned on the same questions: the comparison a reviewer asks for.

For every benchmark's headline metric: base, tuned, the difference and its paired bootstrap
confidence interval (questions resampled once, the same draw applied to both models, so the
noise the two share cancels), the uniform and human baselines beside them; per group (OpinionQA
demographic groups, GlobalOpinionQA countries) the same, with whether the group moved toward
people or away; TAP accuracies beside their random baseline; the letter mass before and after.

Why the project's weight-matrix bootstrap (:func:`ava.evals.metrics.opinion.question_weights`)
rather than ``scipy.stats.bootstrap(paired=True)``: the statistics are ratios over questions with
missing values per group; one weight matrix gives every group's base and tuned score in every
resample with one matrix product each, and it is the same resampling the evaluation's own CIs use.
TAP's class-balanced accuracy is not a mean over items, so its resamples call the task's own
scorer (:func:`ava.evals.tasks.ava_tasks.score_predictive`) on each paired draw.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ava.contracts.scoring import ScoredItem
from ava.evals.metrics import opinion as om

SCHEMA = "ava-experiment-comparison/1"
Rows = list[dict[str, Any]]
CLEAR = "no clear change"
FEW = "too few questions"
MIN_UNITS = 5
"""Below this many questions (a country asked only once or twice) a resampled interval is no
interval at all: such a row gets no verdict."""


def compare(out: Path, recipe: Any, base: Mapping[str, Any], tuned: Mapping[str, Any],
            loss: Mapping[str, Any]) -> dict[str, Any]:
    """The comparison of two finished evaluation runs of the same tasks (``out/eval-base``, ``out/eval-tuned``)."""
    from ava.experiments.tasks import make_tasks

    settings = recipe["compare"]
    build = Path(recipe["data"]["build"]) if recipe["data"]["build"] else out / "build"
    by_bench = make_tasks(recipe.benchmarks, build, recipe["eval"]["seed"])
    rows, groups, tap, mass = [], {}, [], {}
    for bench, tasks in by_bench.items():
        for task in tasks:
            b_items, t_items = _items(out / "eval-base", task.name), _items(out / "eval-tuned", task.name)
            b_res, t_res = base["tasks"][task.name], tuned["tasks"][task.name]
            if task.name in ("opinionqa", "opinionqa-xl"):  # not the steering tasks
                row, grp = _opinion(task, b_items, t_items, b_res, settings)
            elif bench == "globalopinionqa" and task.name.startswith("globalopinionqa"):
                row, grp = _goqa(b_items, t_items, b_res, settings)
            elif bench == "ava-tasks":
                tap += _tap(build, b_items, t_items, settings)
                continue
            else:
                row, grp = _headline_only(b_res, t_res), []
            rows += [{"benchmark": bench, "task": task.name, **r} for r in row]
            if grp:
                groups[task.name] = grp
            mass[task.name] = {"base": _mass(b_res), "tuned": _mass(t_res)}
    return {
        "schema": SCHEMA,
        "experiment": recipe["name"],
        "model": recipe["model"]["name"],
        "bootstrap": {"paired": True, "n_resamples": settings["n_resamples"], "confidence": settings["confidence"],
                      "seed": settings["seed"], "unit": "question (TAP: item)"},
        "metrics": rows,
        "groups": groups,
        "tap": tap,
        "letter_mass": mass,
        "training": {k: loss.get(k) for k in ("result", "data", "train_s")} | {"losses": loss.get("losses", [])},
    }


def _items(run: Path, task: str) -> list[dict[str, Any]]:
    from ava.evals.rundir import safe_name

    path = run / "items" / f"{safe_name(task)}.jsonl"
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _scored(row: Mapping[str, Any]) -> ScoredItem:
    return ScoredItem(row["id"], tuple(-np.inf if v is None else float(v) for v in row["logprobs"]))


def _mass(result: Mapping[str, Any]) -> float | None:
    diag = result.get("diagnostics") or {}
    return diag.get("letter_mass_mean")


def _interval(delta: np.ndarray, confidence: float) -> tuple[float, float]:
    """Percentile interval of the resampled differences (rows 1..; row 0 is the point estimate)."""
    boot = delta[1:][np.isfinite(delta[1:])]
    if boot.size == 0:
        return float("nan"), float("nan")
    tail = 100 * (1 - confidence) / 2
    return float(np.percentile(boot, tail)), float(np.percentile(boot, 100 - tail))


def _row(metric: str, b: np.ndarray, t: np.ndarray, confidence: float, *, higher_is_better: bool = True,
         **extra: Any) -> dict[str, Any]:
    delta = t - b
    low, high = _interval(delta, confidence)
    better = (low > 0) if higher_is_better else (high < 0)
    worse = (high < 0) if higher_is_better else (low > 0)
    verdict = "better" if better else "worse" if worse else CLEAR
    if extra.get("n", MIN_UNITS) < MIN_UNITS:
        verdict = FEW
    return {"metric": metric, "base": _f(b[0]), "tuned": _f(t[0]), "delta": _f(delta[0]), "ci_low": _f(low),
            "ci_high": _f(high), "higher_is_better": higher_is_better, "verdict": verdict, **extra}


def _f(x: Any) -> float | None:
    x = float(x)
    return round(x, 6) if np.isfinite(x) else None


def _direction(row: Mapping[str, Any]) -> str:
    return {"better": "toward people", "worse": "away from people", FEW: FEW}.get(row["verdict"], CLEAR)


# -- OpinionQA / OpinionQA-XL: representativeness, overall and per group -------------------------


def _opinion(task: Any, b_items: Sequence[Mapping[str, Any]], t_items: Sequence[Mapping[str, Any]],
             b_res: Mapping[str, Any], settings: Mapping[str, Any]) -> tuple[Rows, Rows]:
    from ava.evals.tasks.opinionqa import all_groups, group_matrix, model_reading

    tuned_by_id = {r["id"]: r for r in t_items}
    qs = [task.by_key[r["meta"]["question"]] for r in b_items]
    groups = all_groups(qs)
    dist = {"base": np.full((len(qs), 1 + len(groups)), np.nan), "tuned": np.full((len(qs), 1 + len(groups)), np.nan)}
    for j, (q, row) in enumerate(zip(qs, b_items, strict=True)):
        humans = np.vstack([np.array(q.overall.distribution, float)[None, :], group_matrix(q, groups)])
        for label, r in (("base", row), ("tuned", tuned_by_id[row["id"]])):
            dist[label][j] = om.wd_many(q.ordinals, model_reading(q, _scored(r))[0], humans)
    weights = om.question_weights(len(qs), settings["n_resamples"], settings["seed"])
    rep_b, rep_t = om.representativeness(weights, dist["base"]), om.representativeness(weights, dist["tuned"])
    head = b_res["headline"]
    conf = settings["confidence"]
    rows = [_row("representativeness", rep_b[:, 0], rep_t[:, 0], conf, n=len(qs), unit="questions",
                 uniform=head.get("uniform_representativeness"), humans=head.get("humans_average"),
                 humans_worst=head.get("humans_worst"))]
    per_group = []
    for k, (attr, grp) in enumerate(groups):
        r = _row("representativeness", rep_b[:, 1 + k], rep_t[:, 1 + k], conf,
                 n=int(np.isfinite(dist["base"][:, 1 + k]).sum()))
        per_group.append({"group": f"{attr}: {grp}", **r, "direction": _direction(r)})
    return rows, per_group


# -- GlobalOpinionQA: similarity to each country ------------------------------------------------


def _goqa(b_items: Sequence[Mapping[str, Any]], t_items: Sequence[Mapping[str, Any]], b_res: Mapping[str, Any],
          settings: Mapping[str, Any]) -> tuple[Rows, Rows]:
    from ava.evals.tasks.globalopinionqa import similarity

    tuned_by_id = {r["id"]: r for r in t_items}
    units = list(dict.fromkeys(str(r["meta"]["unit"]) for r in b_items))
    countries = sorted({c for r in b_items for c in _humans(r)})
    col = {c: 1 + i for i, c in enumerate(countries)}
    shape = (len(units), 1 + len(countries))
    sums = {"base": np.zeros(shape), "tuned": np.zeros(shape)}
    counts = np.zeros(shape)
    for r in b_items:
        j = units.index(str(r["meta"]["unit"]))
        for country, human in _humans(r).items():
            counts[j, [0, col[country]]] += 1
            for label, row in (("base", r), ("tuned", tuned_by_id[r["id"]])):
                sims = similarity(_scored(row).probs, human)
                sums[label][j, [0, col[country]]] += sims
    weights = om.question_weights(len(units), settings["n_resamples"], settings["seed"]).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        means = {k: 100 * (weights @ v) / (weights @ counts) for k, v in sums.items()}
    conf = settings["confidence"]
    reference = (b_res.get("details") or {}).get("reference", {})
    rows = [_row("avg_sim", means["base"][:, 0], means["tuned"][:, 0], conf, n=len(units), unit="questions",
                 uniform=reference.get("uniform_avg_sim"), humans=None)]
    if len(countries) >= 2:
        skew = {k: np.nanstd(v[:, 1:], axis=1, ddof=1) for k, v in means.items()}
        rows.append(_row("skew", skew["base"], skew["tuned"], conf, higher_is_better=False, n=len(units),
                         unit="questions", uniform=reference.get("uniform_skew"), humans=None))
    per_country = []
    for c in countries:
        r = _row("similarity", means["base"][:, col[c]], means["tuned"][:, col[c]], conf,
                 n=int((counts[:, col[c]] > 0).sum()))
        per_country.append({"group": c, **r, "direction": _direction(r)})
    return rows, per_country


def _humans(row: Mapping[str, Any]) -> dict[str, list[float]]:
    meta = row["meta"]
    return {meta["country"]: meta["human"]} if "country" in meta else dict(meta["humans"])


# -- ava-tasks: TAP accuracy against the random baseline -----------------------------------------


def _tap(build: Path, b_items: Sequence[Mapping[str, Any]], t_items: Sequence[Mapping[str, Any]],
         settings: Mapping[str, Any]) -> list[dict[str, Any]]:
    from ava.evals.metrics import text as tm
    from ava.evals.tasks.ava_tasks import data_vocabularies, score_predictive

    vocab = data_vocabularies(build)
    tuned_by_id = {r["id"]: r for r in t_items}
    rows = []
    for task in sorted({r["task"] for r in b_items if r["family"] == "TAP"} & set(tm.task_spec()["predictive"])):
        b = [r for r in b_items if r["task"] == task]
        t = [tuned_by_id[r["id"]] for r in b]
        point_b, point_t = score_predictive(task, b, vocab), score_predictive(task, t, vocab)
        key = "accuracy_balanced" if "accuracy_balanced" in point_b else "top1_balanced"
        rng = np.random.default_rng(settings["seed"])
        draws = [rng.integers(0, len(b), len(b)) for _ in range(settings["n_resamples"])]
        acc_b = np.array([point_b[key]] + [score_predictive(task, [b[i] for i in d], vocab)[key] for d in draws])
        acc_t = np.array([point_t[key]] + [score_predictive(task, [t[i] for i in d], vocab)[key] for d in draws])
        baseline = point_b.get("baseline", point_b.get("baseline_top1"))
        rows.append({"task": task, **_row(key, acc_b, acc_t, settings["confidence"], n=point_b["n"], unit="items",
                                          uniform=baseline, humans=None),
                     "unparsed": {"base": point_b["n_unparsed"], "tuned": point_t["n_unparsed"]}})
    return rows


def _headline_only(b_res: Mapping[str, Any], t_res: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Tasks without a paired resampling here (steering): the headline numbers, no interval."""
    rows = []
    for metric, b in b_res["headline"].items():
        t = t_res["headline"].get(metric)
        if isinstance(b, int | float) and isinstance(t, int | float):
            rows.append({"metric": metric, "base": _f(b), "tuned": _f(t), "delta": _f(t - b), "ci_low": None,
                         "ci_high": None, "higher_is_better": None, "verdict": "no paired interval",
                         "uniform": None, "humans": None})
    return rows


# -- the terminal table ----------------------------------------------------------------------------


def print_comparison(comparison: Mapping[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(width=max(Console().width, 150))  # a log file is read in full, not cut at 80
    conf = int(round(100 * comparison["bootstrap"]["confidence"]))
    table = Table(title=f"{comparison['experiment']}: base vs tuned ({comparison['model']}; paired bootstrap "
                        f"{conf}% CI over the same questions)")
    for col in ("benchmark / task", "metric", "n", "base", "tuned", "delta", f"{conf}% CI", "uniform",
                "humans", "reading"):
        table.add_column(col, justify="left" if col in ("benchmark / task", "metric", "reading") else "right")
    for r in comparison["metrics"]:
        table.add_row(r["task"], r["metric"], str(r.get("n", "")), _fmt(r["base"]), _fmt(r["tuned"]),
                      _fmt(r["delta"], sign=True), _ci(r), _fmt(r.get("uniform")), _fmt(r.get("humans")), r["verdict"])
    for r in comparison["tap"]:
        table.add_row(f"ava-tasks / {r['task']}", r["metric"], str(r["n"]), _fmt(r["base"]), _fmt(r["tuned"]),
                      _fmt(r["delta"], sign=True), _ci(r), _fmt(r["uniform"]) + " (random)", "", r["verdict"])
    console.print(table)
    for task, groups in comparison["groups"].items():
        moved = {d: [g["group"] for g in groups if g["direction"] == d] for d in ("toward people", "away from people")}
        console.print(f"{task}: {len(groups)} groups; toward people: {', '.join(moved['toward people']) or 'none'}; "
                      f"away: {', '.join(moved['away from people']) or 'none'}; the rest: {CLEAR} or {FEW}")
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
