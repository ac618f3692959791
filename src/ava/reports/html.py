"""One self-contained HTML page comparing evaluation runs.

Headline table (value and 95% CI per run), a per-group heatmap per task, comparison plots
and each run's own plots, all inline (images base64-embedded): the page can be mailed or
opened offline. The bytes depend only on the runs (no clock), so a report can be diffed.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ava.contracts.experiments import ExperimentFolder
from ava.contracts.results import SCHEMA_VERSION, PlotSpec, RunDirectory
from ava.evals.tables import fmt_interval, fmt_number
from ava.io import UnreadableJson, read_json


class ReportError(ValueError):
    """A run directory that cannot be reported (missing, unfinished, unknown schema)."""


@dataclass(frozen=True)
class Run:
    label: str
    path: Path
    results: dict[str, Any]


def load_run(run_dir: str | Path) -> Run:
    """A finished run directory's results; :class:`ReportError` (one line) for anything else."""
    from ava.runs import RecordError, read_run_state

    path = Path(run_dir)
    if not path.is_dir():
        raise ReportError(f"{path}: no such run directory")
    try:
        record = read_run_state(path)  # a run killed mid-way says interrupted, not running
    except RecordError as exc:
        raise ReportError(str(exc)) from None
    if record is None:
        raise ReportError(f"{path}: no run.json; is this an `ava eval --out` directory?")
    if record.kind != "eval":
        raise ReportError(f"{path}: holds a {record.kind} output, not an evaluation run")
    if not record.complete:
        why = f" ({record.reason})" if record.reason else ""
        raise ReportError(f"{path}: the run is {record.status}{why}, not complete; rerun its `ava eval` command to "
                          "finish it")
    return Run(path.name, path, read_results(RunDirectory(path).results))


def read_results(path: Path) -> dict[str, Any]:
    """``results.json`` checked for what the report reads: an object of this schema with a task map."""
    if not path.is_file():
        raise ReportError(f"{path}: missing, although the run says complete; rerun its `ava eval` command")
    try:
        results = read_json(path)
    except UnreadableJson as exc:
        raise ReportError(f"{exc}, not a results file") from None
    if not isinstance(results, dict):
        raise ReportError(f"{path}: a JSON {type(results).__name__}, not a results object")
    major = str(results.get("schema_version", "")).split(".")[0]
    if major != SCHEMA_VERSION.split(".")[0]:
        raise ReportError(f"{path}: results schema {results.get('schema_version')!r}, this ava reads "
                          f"{SCHEMA_VERSION}; rerun its `ava eval` command (it resumes from its cache)")
    tasks = results.get("tasks")
    if not isinstance(tasks, dict) or not all(isinstance(t, dict) for t in tasks.values()):
        raise ReportError(f"{path}: \"tasks\" must map each task name to an object")
    if not isinstance(results.get("run", {}), dict):
        raise ReportError(f"{path}: \"run\" must be an object")
    for task, entry in tasks.items():
        for key in ("headline", "intervals", "groups", "task_info", "plots", "counts"):
            if not isinstance(entry.get(key) or {}, dict):
                raise ReportError(f"{path}: task {task!r}: {key!r} must be an object")
        if not all(isinstance(ci or {}, dict) for ci in (entry.get("intervals") or {}).values()):
            raise ReportError(f"{path}: task {task!r}: each interval must be an object")
    return results


def _labels(paths: Sequence[Path]) -> list[str]:
    """Directory names, with the parent added where names repeat."""
    names = [p.name for p in paths]
    return [f"{p.parent.name}/{p.name}" if names.count(p.name) > 1 else p.name for p in paths]


def _e(x: Any) -> str:
    return html.escape(str(x))


def _img(data: bytes, alt: str) -> str:
    return f'<img alt="{_e(alt)}" src="data:image/png;base64,{base64.b64encode(data).decode()}">'


def _colour(value: float | None, lo: float, hi: float) -> tuple[str, str]:
    """Background (viridis) and a readable text colour for a heatmap cell."""
    from matplotlib import colormaps

    if value is None:
        return "#eeeeee", "#000000"
    t = 0.5 if hi <= lo else (value - lo) / (hi - lo)
    r, g, b, _ = colormaps["viridis"](t)
    text = "#000000" if 0.299 * r + 0.587 * g + 0.114 * b > 0.5 else "#ffffff"
    return f"#{int(r * 255):02x}{int(g * 255):02x}{int(b * 255):02x}", text


def runs_table(runs: Sequence[Run]) -> str:
    head = "".join(f"<th>{_e(c)}</th>" for c in ("run", "model", "identity", "backend", "seed", "limit",
                                                   "tasks", "dataset hashes", "wall s"))
    rows = []
    for run in runs:
        info = run.results.get("run", {})
        tasks = run.results.get("tasks", {})
        hashes = ", ".join(f"{t}: {m.get('task_info', {}).get('dataset_hash', '?')}" for t, m in tasks.items())
        cells = [run.label, info.get("model"), info.get("identity"), info.get("backend"), info.get("seed"),
                 info.get("limit") if info.get("limit") is not None else "all", ", ".join(tasks), hashes,
                 info.get("wall_s")]
        rows.append("<tr>" + "".join(f"<td>{_e(c)}</td>" for c in cells) + "</tr>")
    return f'<table id="runs"><tr>{head}</tr>{"".join(rows)}</table>'


def comparability_note(runs: Sequence[Run]) -> str:
    """Name the tasks whose runs scored different items (other data, template or --limit)."""
    hashes: dict[str, set[str]] = {}
    for run in runs:
        for task, m in run.results.get("tasks", {}).items():
            hashes.setdefault(task, set()).add(str(m.get("task_info", {}).get("dataset_hash")))
    differ = sorted(t for t, h in hashes.items() if len(h) > 1)
    if not differ:
        return ""
    return (f'<p class="warn" id="not-comparable">Not the same items (dataset hashes differ) for: '
            f'{_e(", ".join(differ))}; compare those numbers with care.</p>')


def headline_table(runs: Sequence[Run]) -> str:
    keys: dict[tuple[str, str], None] = {}
    for run in runs:
        for task, m in run.results.get("tasks", {}).items():
            for name in m.get("headline", {}):
                keys.setdefault((task, name), None)
    head = "<tr><th>task</th><th>metric</th>" + "".join(f"<th>{_e(r.label)}</th>" for r in runs) + "</tr>"
    rows = []
    for task, name in keys:
        cells = []
        for run in runs:
            m = run.results.get("tasks", {}).get(task, {})
            value = m.get("headline", {}).get(name)
            raw = m.get("intervals", {}).get(name)
            ci = fmt_interval(raw)
            why = f' title="{_e(str(raw["reason"]))}"' if isinstance(raw, dict) and raw.get("reason") else ""
            cells.append(f"<td>{_e(fmt_number(value))}" + (f' <span class="ci"{why}>{_e(ci)}</span>' if ci else "")
                         + "</td>")
        rows.append(f"<tr><td>{_e(task)}</td><td>{_e(name)}</td>{''.join(cells)}</tr>")
    return f'<table id="headline">{head}{"".join(rows)}</table>'


def group_heatmap(task: str, runs: Sequence[Run]) -> str:
    """Rows = groups, columns = runs, cells coloured by the task's per-group score."""
    groups: dict[str, None] = {}
    for run in runs:
        groups.update(dict.fromkeys(run.results.get("tasks", {}).get(task, {}).get("groups", {})))
    values = [run.results.get("tasks", {}).get(task, {}).get("groups", {}) for run in runs]
    finite = [v for d in values for v in d.values() if isinstance(v, int | float)]
    lo, hi = (min(finite), max(finite)) if finite else (0.0, 1.0)
    head = "<tr><th>group</th>" + "".join(f"<th>{_e(r.label)}</th>" for r in runs) + "</tr>"
    rows = []
    for g in groups:
        cells = []
        for d in values:
            v = d.get(g)
            v = v if isinstance(v, int | float) else None
            bg, fg = _colour(v, lo, hi)
            cells.append(f'<td style="background:{bg};color:{fg}">{_e(fmt_number(v))}</td>')
        rows.append(f"<tr><th>{_e(g)}</th>{''.join(cells)}</tr>")
    return (f'<table class="heatmap" id="heatmap-{_e(task)}">{head}{"".join(rows)}</table>'
            f'<p class="note">colour scale {fmt_number(lo)} (dark) to {fmt_number(hi)} (light)</p>')


def comparison_plot(task: str, runs: Sequence[Run]) -> bytes:
    from ava.evals.plots import bar_plot_png

    groups: dict[str, None] = {}
    for run in runs:
        groups.update(dict.fromkeys(run.results.get("tasks", {}).get(task, {}).get("groups", {})))
    series = {
        run.label: [run.results.get("tasks", {}).get(task, {}).get("groups", {}).get(g) for g in groups]
        for run in runs
    }
    return bar_plot_png(PlotSpec(name=f"{task}-groups", title=f"{task}: per-group score by run",
                                 labels=list(groups), series=series, ylabel="score"))


CSS = """
body{font-family:system-ui,sans-serif;margin:2em;max-width:1400px}
table{border-collapse:collapse;margin:1em 0;font-size:13px}
td,th{border:1px solid #ccc;padding:3px 8px;text-align:left}
.ci{color:#666;font-size:11px}.warn{color:#a40000}.note{color:#666;font-size:12px}
img{max-width:100%;border:1px solid #eee;margin:0.5em 0}
"""


def opening_figures(runs: Sequence[Run]) -> list[str]:
    """One figure per benchmark before any table (:mod:`ava.reports.figure`)."""
    from ava.reports.figure import figure_tasks, headline_figure

    tasks = figure_tasks(runs)
    if not tasks:
        return []
    out = ["<h2>At a glance</h2><p class='note'>each run's representativeness (95% CI) beside the uniform guess "
           "(dashed) and the human band (shaded: the worst group .. the average group vs the population); right: "
           "the letter prior, the mean probability per answer letter (dashed: no letter preference)</p>"]
    for task in tasks:
        out.append(f'<figure id="figure-{_e(task)}">{_img(headline_figure(task, runs), f"{task} at a glance")}'
                   "</figure>")
    return out


def build_report(run_dirs: Sequence[str | Path]) -> str:
    if not run_dirs:
        raise ReportError("give at least one run directory")
    experiments, run_dirs = _experiments(run_dirs)
    runs = [load_run(d) for d in run_dirs]
    labels = _labels([r.path for r in runs])
    runs = [Run(label, r.path, r.results) for label, r in zip(labels, runs, strict=True)]
    parts = [
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>ava evaluation report</title>",
        f"<style>{CSS}</style></head><body>",
        f"<h1>ava evaluation report</h1><p>{len(runs)} run(s): {_e(', '.join(labels))}</p>",
        *opening_figures(runs),
        "<h2>Runs</h2>", runs_table(runs),
        "<h2>Headline numbers</h2><p class='note'>value [95% bootstrap CI over questions]</p>",
        comparability_note(runs),
        headline_table(runs),
    ]
    if experiments:
        from ava.reports.experiment import experiment_section

        at = parts.index("<h2>Runs</h2>") + 1  # where it always went: after the figures
        parts[at:at] = [experiment_section(folder, _img) for folder in experiments]
    tasks = list(dict.fromkeys(t for r in runs for t, m in r.results.get("tasks", {}).items() if m.get("groups")))
    for task in tasks:
        parts += [f"<h2>Groups: {_e(task)}</h2>", group_heatmap(task, runs)]
        if len(runs) > 1:
            parts.append(_img(comparison_plot(task, runs), f"{task} per-group comparison"))
    parts.append("<h2>Plots</h2>")
    for run in runs:
        for task, m in run.results.get("tasks", {}).items():
            for name, rel in (m.get("plots") or {}).items():
                png = run.path / rel
                if png.exists():
                    parts.append(f"<h3>{_e(run.label)} — {_e(task)}: {_e(name)}</h3>")
                    parts.append(_img(png.read_bytes(), f"{run.label} {task} {name}"))
                else:
                    parts.append(f"<p class='note'>{_e(run.label)}: plot {_e(rel)} is missing</p>")
    # Counts the images the browser could decode (a check that the embedded PNGs are intact).
    parts.append("<p class='note' id='render-check'></p><script>window.addEventListener('load',()=>{"
                 "const n=[...document.images].filter(i=>i.complete&&i.naturalWidth>0).length;"
                 "document.getElementById('render-check').textContent="
                 "`${n} of ${document.images.length} images rendered`;});</script>")
    parts.append("</body></html>")
    return "\n".join(parts)


def _experiments(run_dirs: Sequence[str | Path]) -> tuple[list[Path], list[Path]]:
    """Experiment folders (``ava experiment run --out``) and the evaluation runs to report: an
    experiment brings its comparison section and its two evaluations (before, after)."""
    from ava.runs import RecordError, read_run_state

    experiments, runs = [], []
    for d in map(Path, run_dirs):
        try:
            record = read_run_state(d) if d.is_dir() else None
        except RecordError as exc:
            raise ReportError(str(exc)) from None
        if record is None or record.kind != "experiment":
            runs.append(d)
            continue
        folder = ExperimentFolder(d)
        if not record.complete or not folder.comparison.is_file():
            why = f" ({record.reason})" if record.reason else ""
            raise ReportError(f"{d}: the experiment is {record.status}{why}, not complete; rerun its "
                              "`ava experiment run` command to finish it")
        experiments.append(d)
        arms = sorted(p.parent for p in (folder.root / "arms").glob("*/eval/results.json"))
        runs += arms if arms else [folder.evaluation("base"), folder.evaluation("tuned")]
    return experiments, runs


def write_report(run_dirs: Sequence[str | Path], out: str | Path) -> Path:
    from ava.io import atomic_write

    page = build_report(run_dirs)
    with atomic_write(out) as fh:
        fh.write(page)
    return Path(out)
