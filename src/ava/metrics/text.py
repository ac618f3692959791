"""Text metrics of the AVA training tasks: label normalisation, BLEU, ROUGE-Lsum, delta-perplexity.

Thin wrappers over the reference packages (sacrebleu, rouge-score) so that every number is
computed the way the field computes it; only the label normalisation is ours. The metrics that
run a model (BERTScore, conditional perplexity) are in :mod:`ava.evals.model_metrics`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from functools import cache
from typing import Any

import numpy as np
import yaml

from ava.contracts.results import ItemScore
from ava.metrics.reduction import Reduction
from ava.paths import bundled

# -- label normalisation -------------------------------------------------------------------------


@cache
def task_spec() -> dict[str, Any]:
    with open(bundled("training", "ava_tasks.yaml"), encoding="utf-8") as fh:
        return yaml.safe_load(fh)


def _label_pattern(labels: Iterable[str]) -> re.Pattern[str]:
    # Longest first, so "West Virginia" wins over "Virginia" and "female" is never read as "male".
    alts = sorted(set(labels), key=len, reverse=True)
    return re.compile(r"(?<![\w-])(" + "|".join(re.escape(a) for a in alts) + r")(?![\w-]|\+)", re.IGNORECASE)


@cache
def _rewrites() -> list[tuple[re.Pattern[str], str]]:
    return [(re.compile(pattern), repl) for pattern, repl in task_spec()["rewrites"]]


def canonical_text(text: str) -> str:
    """``text`` with number ranges written as labels are ("between 400 to 499" -> "400-499")."""
    for pattern, repl in _rewrites():
        text = pattern.sub(repl, text)
    return text


def find_labels(text: str, labels: Sequence[str], aliases: dict[str, str] | None = None) -> list[str]:
    """Labels named in ``text``, in order of appearance, canonical spelling, without repeats."""
    aliases = aliases or {}
    text = canonical_text(text)
    canon = {lab.lower(): lab for lab in labels} | {a.lower(): c for a, c in aliases.items()}
    found: list[str] = []
    for match in _label_pattern(canon).finditer(text):
        label = canon[match.group(1).lower()]
        if label not in found:
            found.append(label)
    return found


def state_names() -> tuple[list[str], dict[str, str]]:
    spec = task_spec()
    return list(spec["states"]), dict(spec["state_aliases"])


def normalise_states(text: str) -> list[str]:
    states, aliases = state_names()
    return find_labels(text, states + sorted(set(aliases.values())), aliases)


def normalise_gold_states(label: str) -> list[str] | None:
    """A gold "Ohio|Iowa|Maine" label as canonical names; None when any part is not a state."""
    parts = [p.strip() for p in label.split("|") if p.strip()]
    states = [normalise_states(p) for p in parts]
    if not parts or any(len(s) != 1 for s in states):
        return None
    return [s[0] for s in states]


# -- generation metrics --------------------------------------------------------------------------


def bleu_statistics(hypothesis: str, reference: str) -> tuple[list[int], list[int]]:
    """One pair's clipped n-gram matches and hypothesis n-grams, n = 1..4 (sacrebleu, 13a tokens).

    Corpus BLEU's precisions are ratios of these sums over the pairs (what sacrebleu's
    ``corpus_score`` sums), so per-item statistics reduce to the corpus numbers exactly and can
    be resampled. ``effective_order`` only changes sacrebleu's sentence score, not the counts.
    """
    result = _sentence_bleu().sentence_score(hypothesis, [reference])
    return list(result.counts), list(result.totals)


@cache
def _sentence_bleu() -> Any:
    from sacrebleu.metrics import BLEU

    return BLEU(effective_order=True)


def precisions(counts: Sequence[float], totals: Sequence[float]) -> list[float]:
    """BLEU-1..4 modified n-gram precisions in percent from summed statistics (0 where no n-grams).

    Read from the raw counts: sacrebleu's ``precisions`` attribute is smoothed (a zero count
    shows as a small positive number), which is not what an n-gram precision reports.
    """
    return [100.0 * c / t if t else 0.0 for c, t in zip(counts, totals, strict=True)]


def bleu_precisions(hypotheses: Sequence[str], references: Sequence[str]) -> list[float]:
    """Corpus BLEU-1..4 modified (clipped) n-gram precisions in percent, sacrebleu's 13a tokens."""
    stats = [bleu_statistics(h, r) for h, r in zip(hypotheses, references, strict=True)]
    return precisions([sum(c[n] for c, _ in stats) for n in range(4)], [sum(t[n] for _, t in stats) for n in range(4)])


def rouge_lsum_f(hypothesis: str, reference: str) -> float:
    """One pair's ROUGE-Lsum F-measure (0..1), rouge-score with Porter stemming.

    Lsum treats newlines as sentence breaks (summary-level LCS), as the reference package does.
    """
    return float(_rouge().score(reference, hypothesis)["rougeLsum"].fmeasure)


@cache
def _rouge() -> Any:
    from rouge_score import rouge_scorer

    return rouge_scorer.RougeScorer(["rougeLsum"], use_stemmer=True)


def rouge_lsum(hypotheses: Sequence[str], references: Sequence[str]) -> float:
    """Mean ROUGE-Lsum F-measure over the pairs, in percent."""
    scores = [rouge_lsum_f(h, r) for h, r in zip(hypotheses, references, strict=True)]
    return 100.0 * sum(scores) / len(scores) if scores else float("nan")


def target_body(response: str) -> str:
    """The ad body inside a rendered pair-task response (the whole response if not rendered)."""
    marker = task_spec()["delta_ppl"]["body_marker"]
    _, found, body = response.partition(marker)
    return body.strip() if found and body.strip() else response


def delta_perplexity(source_ppl: Sequence[float], target_ppl: Sequence[float]) -> float:
    """Mean perplexity of the source ads minus that of the target ads (positive: target favoured)."""
    if not source_ppl:
        return float("nan")
    return sum(source_ppl) / len(source_ppl) - sum(target_ppl) / len(target_ppl)


# -- item scores -> resampled statistics (the AVA training tasks) ---------------------------
def reduce_ava_tasks(scores: Sequence[ItemScore], weights: np.ndarray) -> Reduction:
    """Per subtask, pooled over the held-out splits: TAP class-balanced accuracy (``top1_balanced``
    and ``top3`` for the state task), generation BLEU-1/4, ROUGE-Lsum (x100), BERTScore F1 and
    delta-PPL. Records: ``task``, ``split``, ``family``; TAP: ``kind`` (labels / states), ``gold``
    (None: unreadable, not scored), ``correct``, ``top3``; generation: ``bleu_counts``,
    ``bleu_totals``, ``rouge_lsum`` (0..1), ``bertscore_f1``, ``ppl_source``, ``ppl_target``.
    Items are taken in (split, task, id) order, the order the task's own metrics sum in."""
    from ava.metrics.classification import balanced_accuracy_resampled, item_weights

    order = sorted(range(len(scores)), key=lambda k: (scores[k].values["split"], scores[k].values["task"],
                                                      scores[k].id))
    w_all = item_weights(scores, weights)
    metrics: dict[str, np.ndarray] = {}
    references: dict[str, dict[str, float | None]] = {}
    notes: dict[str, dict[str, int]] = {}
    for task in sorted({s.values["task"] for s in scores}):
        cols = [k for k in order if scores[k].values["task"] == task]
        rows = [scores[k].values for k in cols]
        w = w_all[:, cols]
        if rows[0]["family"] == "TAP":
            tap = _reduce_tap(task, rows, w, balanced_accuracy_resampled)
            metrics.update(tap)
            n_classes = rows[0].get("n_classes") or 0
            unparsed = sum(not r["parsed"] for r in rows if r["gold"] is not None)
            for k, name in enumerate(tap):
                references[name] = {"random": (100.0 if k == 0 else 300.0) / n_classes if n_classes else None}
                notes[name] = {"unparsed": unparsed}
        else:
            metrics.update(_reduce_generation(task, rows, w))
    return Reduction(metrics=metrics, higher_is_better={k: True for k in metrics}, n_units=weights.shape[1],
                     references=references, notes=notes)


def _reduce_tap(task: str, rows: Sequence[Mapping[str, Any]], w: np.ndarray, balanced: Any) -> dict[str, np.ndarray]:
    """Class-balanced accuracy (first: the one the random baseline is 1 / classes of), and for the
    state task the top-3 share (baseline 3 / states)."""
    scored = [k for k, r in enumerate(rows) if r["gold"] is not None]
    if not scored:
        return {}
    gold = [rows[k]["gold"] for k in scored]
    correct = [bool(rows[k]["correct"]) for k in scored]
    if rows[0]["kind"] == "states":
        top3 = np.array([float(rows[k]["top3"]) for k in scored])
        with np.errstate(invalid="ignore", divide="ignore"):
            share = 100.0 * (w[:, scored] @ top3) / w[:, scored].sum(axis=1)
        share[0] = 100.0 * sum(bool(rows[k]["top3"]) for k in scored) / len(scored)
        return {f"{task}/top1_balanced": balanced(w[:, scored], gold, correct), f"{task}/top3": share}
    return {f"{task}/accuracy_balanced": balanced(w[:, scored], gold, correct)}


def _reduce_generation(task: str, rows: Sequence[Mapping[str, Any]], w: np.ndarray) -> dict[str, np.ndarray]:
    counts = np.array([r["bleu_counts"] for r in rows], dtype=float)
    totals = np.array([r["bleu_totals"] for r in rows], dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        bleu = np.where(w @ totals > 0, 100.0 * (w @ counts) / (w @ totals), 0.0)
    bleu[0] = precisions(counts.sum(axis=0).astype(int).tolist(), totals.sum(axis=0).astype(int).tolist())
    out = {f"{task}/bleu1": bleu[:, 0], f"{task}/bleu4": bleu[:, 3]}
    for key, scale in (("rouge_lsum", 100.0), ("bertscore_f1", 1.0)):
        values = [float(r[key]) for r in rows]
        series = scale * (w @ np.array(values)) / w.sum(axis=1)
        series[0] = scale * sum(values) / len(values)
        out[f"{task}/{key}"] = series
    paired = [k for k, r in enumerate(rows) if r["ppl_source"] is not None]
    if paired:
        src = [float(rows[k]["ppl_source"]) for k in paired]
        tgt = [float(rows[k]["ppl_target"]) for k in paired]
        wp = w[:, paired]
        with np.errstate(invalid="ignore", divide="ignore"):
            delta = (wp @ np.array(src) - wp @ np.array(tgt)) / wp.sum(axis=1)
        delta[0] = delta_perplexity(src, tgt)
        out[f"{task}/delta_ppl"] = delta
    return out
