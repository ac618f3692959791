"""The figure ``ava report`` opens with: per benchmark, each run's score beside the uniform guess
and the human band, and the letter prior.

A reader should see first whether the model beats a guess and how far it is from people, and
how much of its answer is letter position; the tables follow. Runs that differ in how the
distribution was read (``orders``, ``expression``, ``debias``: their recorded settings) are
labelled by what differs, side by side. Everything is read from what the runs wrote
(``results.json``); nothing is recomputed. docs/evaluation.md, "The report".
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

VARIANT_SETTINGS = {"expression": "logprobs", "orders": "1", "order_kind": "cyclic", "debias": "none"}
"""The settings that change how a run reads a model's distribution, with their defaults."""


def figure_tasks(runs: Sequence[Any]) -> list[str]:
    """Tasks with a representativeness headline and its uniform baseline, in first-seen order."""
    out: dict[str, None] = {}
    for run in runs:
        for task, m in run.results.get("tasks", {}).items():
            head = m.get("headline") or {}
            if "representativeness" in head and "uniform_representativeness" in head:
                out.setdefault(task, None)
    return list(out)


def run_settings(run: Any, task: str) -> dict[str, str]:
    """The reading settings a run recorded: its ``--set`` values, else what its result says."""
    config = (run.results.get("run") or {}).get("config") or {}
    # --set values, and any of these recorded as an option of their own (e.g. --expression)
    recorded = {**(config.get("settings") or {}), **{k: config[k] for k in VARIANT_SETTINGS if config.get(k)}}
    m = run.results.get("tasks", {}).get(task, {})
    details = m.get("details") or {}
    found = {k: str(recorded.get(k, v)) for k, v in VARIANT_SETTINGS.items()}
    orders = details.get("orders") or {}
    for key, name in (("orders", "orders"), ("order_kind", "order_kind"), ("debias", "debias")):
        if key not in recorded and name in orders:
            found[key] = str(orders[name])
    if "expression" not in recorded and "calibration" in details:
        found["expression"] = "calibrated"
    return found


def variant_labels(runs: Sequence[Any], task: str) -> list[str]:
    """Each run's label, with the reading settings that differ between the runs (if any)."""
    settings = [run_settings(run, task) for run in runs]
    differ = [k for k in VARIANT_SETTINGS if len({s[k] for s in settings}) > 1]
    return [run.label + ("\n" + ", ".join(f"{k}={s[k]}" for k in differ) if differ else "")
            for run, s in zip(runs, settings, strict=True)]


def common_k(runs: Sequence[Any], task: str) -> int | None:
    """The option count with the most questions in the runs' letter priors (one panel for all)."""
    counts: dict[int, int] = {}
    for run in runs:
        by = (((run.results.get("tasks", {}).get(task, {}).get("details") or {}).get("letter_prior") or {})
              .get("by_options") or {})
        for k, entry in by.items():
            counts[int(k)] = counts.get(int(k), 0) + int(entry.get("n_questions", 0))
    return max(counts, key=lambda k: (counts[k], -k)) if counts else None


def headline_figure(task: str, runs: Sequence[Any]) -> bytes:
    """The PNG for one benchmark over the runs that have it."""
    from ava.evals.plots import Variant, headline_figure_png

    have = [run for run in runs if task in run.results.get("tasks", {})]
    k = common_k(have, task)
    variants = []
    for run, label in zip(have, variant_labels(have, task), strict=True):
        m = run.results["tasks"][task]
        head: Mapping[str, Any] = m.get("headline") or {}
        ci = (m.get("intervals") or {}).get("representativeness") or {}
        prior = (((m.get("details") or {}).get("letter_prior") or {}).get("by_options") or {}).get(str(k)) or {}
        variants.append(Variant(label, head.get("representativeness"), ci.get("low"), ci.get("high"),
                                head.get("uniform_representativeness"), head.get("humans_worst"),
                                head.get("humans_average"), prior.get("prior")))
    n = sorted({str(run.results["tasks"][task].get("units")) for run in have})
    return headline_figure_png(f"{task}: representativeness ({'/'.join(n)} questions)", variants,
                               "representativeness (1 - mean WD)",
                               f"letter prior, {k}-option questions" if k else "")
