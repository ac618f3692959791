"""Bar charts as PNG (matplotlib, Agg backend: no display needed, same bytes every run)."""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from ava.contracts.results import PlotSpec  # noqa: E402
from ava.io import atomic_write  # noqa: E402

# Fixed metadata: PNG bytes do not depend on the matplotlib build date or the clock.
_PNG_META = {"Software": None}


def png_bytes(fig: plt.Figure, dpi: int = 100, **savefig: object) -> bytes:
    """``fig`` as PNG bytes with the fixed metadata, and closed: every figure of ava's (runs,
    reports, experiments) ends here, so the same data gives the same bytes."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, metadata=_PNG_META, **savefig)
    plt.close(fig)
    return buffer.getvalue()


def write_png(data: bytes, path: Path) -> None:
    """PNG bytes to ``path`` atomically (a reader never sees half a picture)."""
    with atomic_write(path, "wb") as fh:
        fh.write(data)


def render_bar_plot(spec: PlotSpec, path: Path) -> None:
    """Write :func:`bar_plot_png` to ``path`` atomically."""
    write_png(bar_plot_png(spec), path)


def bar_plot_png(spec: PlotSpec) -> bytes:
    """Grouped bars, one group per label and one colour per series."""
    labels, series, errors = spec.labels, spec.series, spec.errors
    width = 0.8 / max(1, len(series))
    x = np.arange(len(labels))
    fig, ax = plt.subplots(figsize=(min(24.0, max(6.0, 0.3 * len(labels) * max(1, len(series)) + 2)), 5.0))
    for k, (name, values) in enumerate(series.items()):
        vals = np.array([np.nan if v is None else v for v in values], dtype=float)
        yerr = None
        if name in errors:
            lo_hi = np.array([[np.nan, np.nan] if e is None else e for e in errors[name]], dtype=float)
            yerr = np.abs(np.vstack([vals - lo_hi[:, 0], lo_hi[:, 1] - vals]))
        ax.bar(x + (k - (len(series) - 1) / 2) * width, vals, width, label=name, yerr=yerr, capsize=2)
    for name, value in spec.reference.items():
        ax.axhline(value, linestyle="--", linewidth=1, color="grey")
        ax.annotate(name, (len(labels) - 0.5, value), ha="right", va="bottom", fontsize=8, color="grey")
    finite = [v for vs in series.values() for v in vs if v is not None and np.isfinite(v)]
    finite += list(spec.reference.values())
    if finite:
        lo, hi = min(finite), max(finite)
        pad = max(0.01, (hi - lo) * 0.15)
        ax.set_ylim(max(0.0, lo - pad) if lo >= 0 else lo - pad, hi + pad)
    ax.set_xticks(x, labels, rotation=60, ha="right", fontsize=8)
    ax.set_ylabel(spec.ylabel)
    ax.set_title(spec.title)
    if len(series) > 1 or spec.reference:
        # Outside the axes, on the right: never over a bar, and no "best"-location search (which
        # matplotlib warns is slow for many bars and would differ with the machine's speed).
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.tight_layout()
    return png_bytes(fig)


@dataclass(frozen=True)
class Variant:
    """One run of a benchmark in the headline figure: its score with its interval, the uniform
    guess's and the human band (worst group .. average group) on the same questions, and its
    letter prior over the ``k`` positions of the figure's option count (None when not recorded)."""

    label: str
    value: float | None
    low: float | None = None
    high: float | None = None
    uniform: float | None = None
    humans_worst: float | None = None
    humans_average: float | None = None
    prior: Sequence[float] | None = None


def headline_figure_png(title: str, variants: Sequence[Variant], ylabel: str, prior_title: str = "") -> bytes:
    """Left: each variant's score (dot, interval) beside the uniform guess (dashed) and the human
    band (shaded), so whether the model beats a guess and how far it is from people reads at once.
    Right (when any variant has one): the letter prior as bars per position, uniform dashed."""
    priors = [v for v in variants if v.prior is not None]
    widths = [max(3.0, 1.1 * len(variants) + 1.5)] + ([max(3.5, 0.9 * len(priors[0].prior) + 2.5)] if priors else [])
    fig, axes = plt.subplots(1, len(widths), figsize=(sum(widths) + 1.0, 4.5), width_ratios=widths, squeeze=False)
    ax = axes[0, 0]
    finite: list[float] = []
    for i, v in enumerate(variants):
        worst, avg = v.humans_worst, v.humans_average
        if worst is not None and avg is not None:
            ax.fill_between([i - 0.4, i + 0.4], worst, avg, color="tab:green", alpha=0.25, linewidth=0,
                            label="humans (worst .. average group)" if i == 0 else None)
            finite += [worst, avg]
        if v.uniform is not None:
            ax.hlines(v.uniform, i - 0.4, i + 0.4, colors="black", linestyles="--", linewidth=1.2,
                      label="uniform guess" if i == 0 else None)
            finite.append(v.uniform)
        if v.value is not None:
            yerr = None
            if v.low is not None and v.high is not None:
                yerr = [[max(0.0, v.value - v.low)], [max(0.0, v.high - v.value)]]
                finite += [v.low, v.high]
            ax.errorbar([i], [v.value], yerr=yerr, fmt="o", color="tab:blue", capsize=4, markersize=7,
                        label="model (95% CI)" if i == 0 else None)
            ax.annotate(f"{v.value:.3f}", (i, v.value), xytext=(8, 0), textcoords="offset points", va="center",
                        fontsize=9, color="tab:blue", bbox={"facecolor": "white", "edgecolor": "none", "pad": 1})
            finite.append(v.value)
    if finite:
        lo, hi = min(finite), max(finite)
        pad = max(0.01, (hi - lo) * 0.15)
        ax.set_ylim(lo - pad, hi + pad)
    ax.set_xlim(-0.6, len(variants) - 0.4)
    ax.set_xticks(range(len(variants)), [v.label for v in variants], rotation=20 if len(variants) > 2 else 0,
                  ha="right" if len(variants) > 2 else "center", fontsize=8)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    if priors:
        _prior_bars(axes[0, 1], priors, prior_title)
    handles = [h for a in axes[0] for h in a.get_legend_handles_labels()[0]]
    labels = [lab for a in axes[0] for lab in a.get_legend_handles_labels()[1]]
    fig.tight_layout()
    # outside the axes on the right, as in bar_plot_png: never over a mark, no "best" search
    fig.legend(handles, labels, fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 0.95))
    return png_bytes(fig, bbox_inches="tight")


def _prior_bars(ax: plt.Axes, variants: Sequence[Variant], title: str) -> None:
    """Grouped bars: the mean probability per letter position, one colour per variant."""
    k = len(variants[0].prior or ())
    width = 0.8 / len(variants)
    x = np.arange(k)
    for j, v in enumerate(variants):
        label = "prior: " + v.label.replace("\n", ", ")
        ax.bar(x + (j - (len(variants) - 1) / 2) * width, list(v.prior or ()), width, label=label,
               color=plt.get_cmap("tab10")(1 + j % 9))
    ax.axhline(1.0 / k, linestyle="--", linewidth=1, color="grey", label="no letter preference (1/k)")
    ax.set_xticks(x, [chr(ord("A") + i) for i in range(k)])
    ax.set_ylabel("mean probability")
    ax.set_title(title, fontsize=10)
