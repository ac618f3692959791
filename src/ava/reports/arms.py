"""The picture and the table of an experiment with arms (``compare/comparison.json``, schema ``ava-experiment-arms``).

One figure: on top, one panel per headline metric with every arm's value (the base reference's
point; each trained arm's mean over seeds with its paired bootstrap interval, and each seed as a
small dot), the uniform baseline and the humans as vertical reference lines, so a change is read
against how far there was to go; below, per group (OpinionQA groups, GlobalOpinionQA countries),
one cell per arm (vs the base): green toward people, red away, after the family-wise correction;
a cell whose unadjusted interval alone excluded 0 is shown pale, so nothing hides.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.colors import ListedColormap  # noqa: E402

from ava.evals.plots import png_bytes, write_png  # noqa: E402
from ava.reports.experiment import _points  # noqa: E402

CELLS = {"away from people": 0, "away (unadjusted only)": 1, "no clear change": 2, "seeds disagree": 2,
         "toward (unadjusted only)": 3, "toward people": 4}
BUDGET_COLUMNS = ("optimizer_steps", "n_samples", "survey_examples", "tokens_seen", "final_loss", "train_s")
CMAP = ListedColormap(["#c0392b", "#f1b6ae", "#eeeeee", "#b7e1c1", "#27ae60"])


def _vs_base(comparison: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [r for r in comparison["metrics"] if r["against"] == comparison["reference"]]


def arms_png(comparison: Mapping[str, Any]) -> bytes:
    rows = _vs_base(comparison)
    metrics = list(dict.fromkeys((r["task"], r["metric"]) for r in rows if r.get("ci_low") is not None))
    arms = [a["name"] for a in comparison["arms"]]
    columns = list(dict.fromkeys((g["arm"], g["against"]) for g in comparison["groups"]))
    group_keys = list(dict.fromkeys((g["task"], g["group"]) for g in comparison["groups"]
                                    if g["direction"] != "too few questions"))
    ncol = min(3, max(1, len(metrics)))
    nrow_m = -(-len(metrics) // ncol)
    metric_h = 0.35 * len(arms) + 1.2
    group_h = 0.16 * len(group_keys) + 1.5 if group_keys else 0
    fig = plt.figure(figsize=(13, nrow_m * metric_h + group_h + 0.8))
    grid = fig.add_gridspec(nrow_m + (1 if group_keys else 0), ncol,
                            height_ratios=[metric_h] * nrow_m + ([group_h] if group_keys else []))
    for k, (task, metric) in enumerate(metrics):
        ax = fig.add_subplot(grid[k // ncol, k % ncol])
        _metric_panel(ax, comparison, [r for r in rows if (r["task"], r["metric"]) == (task, metric)], arms)
        ax.set_title(f"{task}: {metric}", fontsize=8)
    if group_keys:
        ax = fig.add_subplot(grid[nrow_m, :])
        _group_panel(ax, comparison, group_keys, columns)
    conf = int(round(100 * comparison["bootstrap"]["confidence"]))
    fig.suptitle(f"{comparison['experiment']} ({comparison['model']}), seeds {comparison['seeds']}: each arm's mean "
                 f"over seeds with its paired bootstrap {conf}% CI (dots: each seed); dashed: uniform, dotted: humans",
                 fontsize=9)
    fig.tight_layout(rect=(0, 0, 1, 0.98))
    return png_bytes(fig, dpi=90)


def _metric_panel(ax: Any, comparison: Mapping[str, Any], rows: list[Mapping[str, Any]], arms: list[str]) -> None:
    by_arm = {r["arm"]: r for r in rows}
    base = _points(rows[0], "against_value")
    for y, arm in enumerate(arms):
        r = by_arm.get(arm)
        if r is None:  # the base reference: its own point
            ax.plot(base, y, "s", color="black", markersize=5)
            continue
        value = _points(r, "arm_value")
        lo, hi = base + _points(r, "ci_low"), base + _points(r, "ci_high")
        colour = {"better": "tab:green", "worse": "tab:red"}.get(r["verdict"], "tab:grey")
        ax.errorbar(value, y, xerr=[[value - lo], [hi - value]], fmt="o", color=colour, capsize=2, markersize=5)
        for d in r.get("seed_deltas") or []:
            if d is not None:
                ax.plot(base + _points({**r, "v": d}, "v"), y + 0.18, ".", color=colour, markersize=4, alpha=0.7)
    for key, style in (("uniform", "--"), ("humans", ":")):
        if rows[0].get(key) is not None:
            ax.axvline(_points(rows[0], key), color="tab:blue", linestyle=style, linewidth=1)
    ax.axvline(base, color="black", linewidth=0.6, alpha=0.5)
    ax.set_yticks(range(len(arms)), arms, fontsize=7)
    ax.invert_yaxis()
    ax.tick_params(axis="x", labelsize=7)


def _group_panel(ax: Any, comparison: Mapping[str, Any], keys: list[tuple[str, str]],
                 columns: list[tuple[str, str]]) -> None:
    """One column per comparison (each arm vs the base, behaviour vs each control), one row per group;
    each cell coloured by its verdict and labelled with the change (points)."""
    import numpy as np

    cell = {(g["task"], g["group"], g["arm"], g["against"]): g for g in comparison["groups"]}
    grid = np.full((len(columns), len(keys)), CELLS["no clear change"], dtype=float)
    for i, (arm, against) in enumerate(columns):
        for j, (task, group) in enumerate(keys):
            g = cell.get((task, group, arm, against))
            if g is None:
                continue
            grid[i, j] = CELLS[_cell(g)]
            if g.get("delta") is not None:
                ax.text(i, j, f"{_points(g, 'delta'):+.2f}", ha="center", va="center", fontsize=5)
    ax.imshow(grid.T, aspect="auto", cmap=CMAP, vmin=0, vmax=4, interpolation="nearest")
    ax.set_xticks(range(len(columns)), [f"{a} vs {b}" for a, b in columns], fontsize=8)
    ax.xaxis.tick_top()
    ax.set_yticks(range(len(keys)), [f"{t}: {g}".replace("$", r"\$") for t, g in keys], fontsize=6)
    ax.set_title(f"groups ({comparison['bootstrap'].get('group_correction', 'holm')} over each task's groups; "
                 "cells: the change in points): green toward people, red away; pale: the unadjusted interval only; "
                 "groups with too few questions left out", fontsize=8)


def _cell(g: Mapping[str, Any]) -> str:
    if g["direction"] in ("toward people", "away from people"):
        return g["direction"]
    raw = g.get("direction_unadjusted")
    if raw == "toward people":
        return "toward (unadjusted only)"
    if raw == "away from people":
        return "away (unadjusted only)"
    return "no clear change"


def render_arms(comparison: Mapping[str, Any], path: Path) -> None:
    write_png(arms_png(comparison), path)


def arms_section(comparison: Mapping[str, Any], img: Any) -> str:
    """HTML: the figure, the table of every comparison, the per-group verdicts and each run's budget."""
    e = html.escape
    conf = int(round(100 * comparison["bootstrap"]["confidence"]))
    cols = ("task", "metric", "arm vs", "n", "arm", "against", "delta (mean over seeds)", f"{conf}% CI",
            "each seed", "uniform", "humans", "reading")
    body = []
    for r in comparison["metrics"]:
        ci = "–" if r.get("ci_low") is None else f"[{r['ci_low']:+.4f}, {r['ci_high']:+.4f}]"
        seeds = ", ".join("–" if d is None else f"{d:+.4f}" for d in r.get("seed_deltas") or [])
        cells = [r["task"], r["metric"], f"{r['arm']} vs {r['against']}", r.get("n", ""), _num(r.get("arm_value")),
                 _num(r.get("against_value")), _num(r["delta"], True), ci, seeds, _num(r.get("uniform")),
                 _num(r.get("humans")), r["verdict"]]
        body.append("<tr>" + "".join(f"<td>{e(str(c))}</td>" for c in cells) + "</tr>")
    budget = []
    for arm in comparison["arms"]:
        for seed, run in (arm.get("runs") or {}).items():
            budget.append(f"<tr><td>{e(arm['name'])}</td><td>{e(arm['kind'])}</td><td>{e(seed)}</td>"
                          + "".join(f"<td>{e(_cell_text(run.get(k)))}</td>"
                                    for k in BUDGET_COLUMNS)
                          + "</tr>")
    head = "".join(f"<th>{e(c)}</th>" for c in cols)
    note = ("<p class='note'>" + e(comparison["bootstrap"]["seeds"]) + ". Groups: "
            + "<br>".join(e(line) for line in group_summary(comparison)) + "</p>")
    unequal = "<p class='warn'>allow_unequal_budget: the arms were trained on different budgets</p>" \
        if comparison.get("allow_unequal_budget") else ""
    return (f"<h2>Experiment {e(comparison['experiment'])}: arms vs {e(comparison['reference'])}, seeds "
            f"{e(str(comparison['seeds']))}</h2>" + img(arms_png(comparison), "arms") + unequal
            + f"<table id='arms'><tr>{head}</tr>{''.join(body)}</table>" + note
            + "<h3>Budget as trained</h3><table id='arms-budget'><tr><th>arm</th><th>kind</th><th>seed</th>"
              "<th>optimiser steps</th><th>pairs</th><th>survey examples</th>"
              "<th>tokens seen</th><th>final loss</th><th>seconds</th></tr>"
            + "".join(budget)
            + "</table>")


def _num(x: Any, sign: bool = False) -> str:
    if x is None:
        return "–"
    return f"{x:+.4f}" if sign else f"{x:.4f}"


def _cell_text(x: Any) -> str:
    if x is None:
        return "–"
    return str(round(x, 4)) if isinstance(x, float) else str(x)


def group_summary(comparison: Mapping[str, Any]) -> list[str]:
    """Per task and arm (vs the base): how many groups moved toward people, away, and how many
    intervals excluded 0 before the correction."""
    correction = comparison["bootstrap"].get("group_correction", "holm")
    lines = []
    keyed: dict[tuple[str, str, str], list[Mapping[str, Any]]] = {}
    for g in comparison["groups"]:
        keyed.setdefault((g["task"], g["arm"], g["against"]), []).append(g)
    for (task, arm, against), rows in keyed.items():
        toward = [g["group"] for g in rows if g["direction"] == "toward people"]
        away = [g["group"] for g in rows if g["direction"] == "away from people"]
        raw = sum(g.get("direction_unadjusted") in ("toward people", "away from people") for g in rows)
        lines.append(f"{task}, {arm} vs {against}: {len(rows)} groups ({correction}); toward people: "
                     f"{', '.join(toward) or 'none'}; away: {', '.join(away) or 'none'} ({raw} unadjusted interval(s) "
                     "exclude 0)")
    return lines
