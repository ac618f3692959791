"""The experiment section of ``ava report``: base vs tuned, one plot that tells the whole story.

The plot has two panels sharing one scale (points, x100 where the metric is a fraction): left,
every task's headline differences (tuned - base) with their paired bootstrap CIs; right, the
per-group differences (OpinionQA groups, GlobalOpinionQA countries, steered groups), coloured
by whether the group moved toward people, away, or not clearly.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402

from ava.contracts.experiments import ExperimentFolder  # noqa: E402
from ava.evals.plots import png_bytes, write_png  # noqa: E402
from ava.io import read_json  # noqa: E402

FRACTION_METRICS = ("representativeness", "steered representativeness")  # 0..1, shown x100 like the others
COLOURS = {"toward people": "tab:green", "away from people": "tab:red", "better": "tab:green", "worse": "tab:red"}


def _points(row: Mapping[str, Any], key: str) -> float:
    value = row.get(key)
    if value is None:
        return float("nan")
    fraction = row["metric"] in FRACTION_METRICS or row["metric"].startswith(("steerability", "steering_gain",
                                                                              "default_group"))
    return 100 * value if fraction else value


def comparison_png(comparison: Mapping[str, Any]) -> bytes:
    rows = [(f"{r['task']}: {r['metric']}", r) for r in comparison["metrics"] if r.get("ci_low") is not None]
    groups = [(f"{task}: {g['group']}", g) for task, gs in comparison["groups"].items() for g in gs]
    fig, axes = plt.subplots(1, 2, figsize=(13, max(4.0, 0.22 * max(len(rows), len(groups)) + 1.5)),
                             gridspec_kw={"width_ratios": [1, 1.3]})
    for ax, items, title in ((axes[0], rows, "headline metrics"), (axes[1], groups, "groups (toward people = up)")):
        for y, (_, r) in enumerate(items):
            d, lo, hi = _points(r, "delta"), _points(r, "ci_low"), _points(r, "ci_high")
            colour = COLOURS.get(r.get("direction") or r.get("verdict"), "tab:grey")
            ax.errorbar(d, y, xerr=[[d - lo], [hi - d]], fmt="o", color=colour, capsize=2, markersize=4)
        ax.axvline(0, color="black", linewidth=0.8)
        ax.set_yticks(range(len(items)), [label.replace("$", r"\$") for label, _ in items], fontsize=7)
        ax.invert_yaxis()
        ax.set_xlabel("tuned - base (points; fractions x100)")
        ax.set_title(title, fontsize=10)
    conf = int(round(100 * comparison["bootstrap"]["confidence"]))
    fig.suptitle(f"{comparison['experiment']} ({comparison['model']}): what fine-tuning changed, with paired "
                 f"bootstrap {conf}% CIs (green: better / toward people, red: worse / away, grey: no clear change)",
                 fontsize=9)
    fig.tight_layout(rect=(0, 0, 1, 0.97))
    return png_bytes(fig)


def render_comparison(comparison: Mapping[str, Any], path: Path) -> None:
    write_png(comparison_png(comparison), path)


def experiment_section(folder: Path, img: Any) -> str:
    """HTML for a finished experiment folder: the plot, the table of differences, the training loss."""
    comparison = read_json(ExperimentFolder(folder).comparison)
    if str(comparison.get("schema", "")).startswith("ava-experiment-arms/"):
        from ava.reports.arms import arms_section

        return arms_section(comparison, img)
    e = html.escape
    conf = int(round(100 * comparison["bootstrap"]["confidence"]))
    head = "".join(f"<th>{e(c)}</th>" for c in ("task", "metric", "n", "base", "tuned", "delta",
                                                   f"{conf}% CI", "uniform / random", "humans", "reading"))
    body = []
    for r in comparison["metrics"]:
        ci = "–" if r.get("ci_low") is None else f"[{r['ci_low']:+.4f}, {r['ci_high']:+.4f}]"
        cells = [r["task"], r["metric"], r.get("n", ""), _num(r["base"]), _num(r["tuned"]), _num(r["delta"]), ci,
                 _num(r.get("uniform")), _num(r.get("humans")), r["verdict"]]
        body.append("<tr>" + "".join(f"<td>{e(str(c))}</td>" for c in cells) + "</tr>")
    losses = comparison["training"].get("losses") or []
    curve = img(loss_png(losses, "training loss"), "training loss") if losses else "<p class='note'>no loss logged</p>"
    return (f"<h2>Experiment {e(comparison['experiment'])}: base vs tuned</h2>"
            + img(comparison_png(comparison), "base vs tuned")
            + f"<table><tr>{head}</tr>{''.join(body)}</table>" + curve)


def _num(x: Any) -> str:
    return "–" if x is None else f"{x:.4f}"


def loss_png(losses: list[Mapping[str, Any]], title: str) -> bytes:
    """The training loss by optimiser step (``train/loss.json``'s ``losses``)."""
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot([x["step"] for x in losses], [x["loss"] for x in losses], marker="o", markersize=3)
    ax.set_xlabel("optimiser step")
    ax.set_ylabel("training loss (responses only)")
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return png_bytes(fig)
