"""Bar charts as PNG (matplotlib, Agg backend: no display needed, same bytes every run)."""

from __future__ import annotations

import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from ava.contracts.results import PlotSpec  # noqa: E402
from ava.io import atomic_write  # noqa: E402

# Fixed metadata: PNG bytes do not depend on the matplotlib build date or the clock.
_PNG_META = {"Software": None}


def render_bar_plot(spec: PlotSpec, path: Path) -> None:
    """Write :func:`bar_plot_png` to ``path`` atomically."""
    data = bar_plot_png(spec)
    with atomic_write(path, "wb") as fh:
        fh.write(data)


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
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100, metadata=_PNG_META)
    plt.close(fig)
    return buffer.getvalue()
