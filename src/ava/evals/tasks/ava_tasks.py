"""``ava eval --benchmark ava-tasks``: the held-out AVA training tasks, generated and scored.

A generation task (:class:`~ava.evals.task.GenerationTask`): the runner has the model answer
each held-out sample (batched greedy decoding with left padding, in the prompt format the
model was trained on, :mod:`ava.instructions.prompt_format`), caches every answer in the run directory
and hands them to ``metrics``. Predictive tasks (TAP) are scored by accuracy on normalised
labels, class-balanced, beside the random baseline; generative ones (TAG, TS, TC) by BLEU-1..4
precisions, ROUGE-Lsum, BERTScore F1 (bundled MiniLM encoder) and, for pair tasks, delta-PPL.

``--data`` is the instruction build (``ava data build-ads --out DIR``); ``--limit N`` a seeded
sample of N items per task and split.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ava.contracts.instructions import InstructionSample
from ava.contracts.results import ItemScore
from ava.evals.data import DataNotFound
from ava.evals.model_metrics import MINILM_LAYER, BertScoreConfig, bertscore_f1, conditional_perplexities
from ava.evals.task import GenerationItem, TaskOptions, TaskResult
from ava.instructions.dataset import manifest_sha256, read_split
from ava.instructions.prompt_format import encode_prefix, generation_prefix
from ava.instructions.selection import stratified_sample
from ava.metrics import text as tm
from ava.metrics.classification import accuracy, balanced_accuracy
from ava.models.backends.transformers_generate import generate_ids
from ava.runs import incomplete_reason

NAME = "ava-tasks"
TEST_SPLITS = ("test_advertiser", "test_temporal")
SETTINGS = {
    "batch_size": "prompts generated per batch (default: ava_tasks.yaml generation.batch_size)",
    "bertscore_model": "BERTScore encoder: a bert-score model_type or local folder (default: the bundled MiniLM, "
                       "offline, not comparable to published numbers; published: roberta-large, online)",
    "bertscore_layer": "BERTScore layer (default: bert-score's for the model, 17 for roberta-large; 6 for MiniLM)",
}
HEADLINE = {
    "TAP": ("accuracy_balanced", "top1_balanced", "top3", "baseline", "baseline_top1"),
    "GEN": ("bleu1", "bleu4", "rouge_lsum", "bertscore_f1", "delta_ppl"),
}


def generate(model: Any, tokenizer: Any, prompts: Sequence[str], max_new_tokens: int, batch_size: int = 8) -> list[str]:
    """Greedy continuations of formatted prompts in the training prompt format (not the scorer's
    framing), through the one in-process generation loop."""
    encoded = encode_prefix(tokenizer, [generation_prefix(tokenizer, p) for p in prompts])
    texts = generate_ids(model, tokenizer, encoded, max_new_tokens=max_new_tokens, batch_size=batch_size)
    return [t[0].strip() for t in texts]


def data_vocabularies(data: Path) -> dict[str, list[str]]:
    """Label sets of the tasks whose labels come from the data (budget, impression buckets).

    Taken over every split, not only the scored items: a sample of a few items would otherwise
    shrink the label set, inflate the random baseline and hide predictions of unseen buckets.
    """
    tasks = {t for t, v in tm.task_spec()["predictive"].items() if v.get("labels") == "data"}
    labels: dict[str, set[str]] = defaultdict(set)
    for split in ("train", *TEST_SPLITS):
        samples = read_split(data, split)
        if "label" not in samples.dataset.column_names:  # an optional column
            continue
        for task, label in zip(samples.column("task"), samples.column("label"), strict=True):
            if task in tasks and label:
                labels[task].add(label)
    return {t: sorted(v) for t, v in labels.items()}


def _vocabulary(task: str, golds: Sequence[str | None], known: Mapping[str, list[str]] | None) -> list[str]:
    spec = tm.task_spec()
    name = spec["predictive"][task]["labels"]
    if name == "data":
        return list((known or {}).get(task) or sorted({g for g in golds if g}))
    return list(spec["vocabularies"][name])


def judge_predictions(task: str, records: Sequence[Mapping[str, Any]],
                      vocabularies: Mapping[str, list[str]] | None = None) -> list[dict[str, Any]]:
    """Per record of one TAP task: the canonical gold label (None when it cannot be read: such an
    item is counted, not scored), whether the prediction names it first (``correct``) or among
    its first three (``top3``), and whether it names any label at all (``parsed``)."""
    kind = tm.task_spec()["predictive"][task]["kind"]
    states = kind == "states"
    vocab = [] if states else _vocabulary(task, [r["label"] for r in records], vocabularies)
    out = []
    for r in records:
        gold = tm.normalise_gold_states(r["label"] or "") if states else tm.find_labels(r["label"] or "", vocab)
        pred = tm.normalise_states(r["prediction"]) if states else tm.find_labels(r["prediction"], vocab)
        readable = gold is not None and (states or len(gold) == 1)
        out.append({"kind": "states" if states else "labels", "n_classes": len(tm.state_names()[0]) if states
                    else len(vocab), "gold": gold[0] if readable else None, "parsed": bool(pred),
                    "correct": readable and bool(pred) and pred[0] == gold[0],
                    "top3": readable and gold[0] in pred[:3]})
    return out


def summarise_predictive(ids: Sequence[str], judged: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """One TAP task's numbers from its judged items (:func:`judge_predictions`)."""
    scored = [j for j in judged if j["gold"] is not None]
    gold, correct = [j["gold"] for j in scored], [bool(j["correct"]) for j in scored]
    n_classes = judged[0]["n_classes"] if judged else 0
    if judged and judged[0]["kind"] == "states":
        metrics = {
            "top1_balanced": balanced_accuracy(gold, correct), "top1": accuracy(correct),
            "top3": accuracy([bool(j["top3"]) for j in scored]), "baseline_top1": 100.0 / n_classes,
            "baseline_top3": 300.0 / n_classes,
        }
    else:
        metrics = {
            "accuracy_balanced": balanced_accuracy(gold, correct), "accuracy": accuracy(correct),
            "baseline": 100.0 / n_classes if n_classes else math.nan, "n_classes": n_classes,
        }
    bad = [i for i, j in zip(ids, judged, strict=True) if j["gold"] is None]
    return {"n": len(scored), "n_unparsed": sum(not j["parsed"] for j in scored), "n_bad_gold": len(bad),
            "bad_gold_ids": bad[:20], **metrics}


def score_predictive(task: str, records: list[Mapping[str, Any]],
                     vocabularies: Mapping[str, list[str]] | None = None) -> dict[str, Any]:
    """Accuracy of normalised labels; items whose gold label cannot be read are counted, not scored."""
    return summarise_predictive([r["id"] for r in records], judge_predictions(task, records, vocabularies))


def summarise_generative(values: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """One generation task's numbers from its items' statistics (BLEU counts, ROUGE, BERTScore, PPL)."""
    counts = [sum(v["bleu_counts"][n] for v in values) for n in range(4)]
    totals = [sum(v["bleu_totals"][n] for v in values) for n in range(4)]
    rouge = [v["rouge_lsum"] for v in values]
    metrics: dict[str, Any] = {
        "n": len(values),
        **{f"bleu{n}": p for n, p in enumerate(tm.precisions(counts, totals), 1)},
        "rouge_lsum": 100.0 * sum(rouge) / len(rouge),
        "bertscore_f1": sum(v["bertscore_f1"] for v in values) / len(values),
    }
    paired = [v for v in values if v["ppl_source"] is not None]
    if paired:
        metrics["ppl_source"] = sum(v["ppl_source"] for v in paired) / len(paired)
        metrics["ppl_target"] = sum(v["ppl_target"] for v in paired) / len(paired)
        metrics["delta_ppl"] = tm.delta_perplexity([v["ppl_source"] for v in paired],
                                                   [v["ppl_target"] for v in paired])
    return metrics


def summarise(scores: Sequence[ItemScore]) -> dict[str, dict[str, dict[str, Any]]]:
    """Metrics per split (and pooled "all") per task, from the items' scores."""
    groups: dict[tuple[str, str], list[ItemScore]] = defaultdict(list)
    for s in sorted(scores, key=lambda s: (s.values["split"], s.values["task"], s.id)):
        groups[(s.values["split"], s.values["task"])].append(s)
        groups[("all", s.values["task"])].append(s)
    results: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
    for (split, task), rows in sorted(groups.items()):
        if rows[0].values["family"] == "TAP":
            if task in tm.task_spec()["predictive"]:
                results[split][task] = summarise_predictive([r.id for r in rows], [r.values for r in rows])
        else:
            results[split][task] = summarise_generative([r.values for r in rows])
    return dict(results)


def summary_table(results: Mapping[str, Mapping[str, Mapping[str, Any]]], n_items: int, split: str = "all") -> str:
    """The pooled results as a fixed-width text table (one row per subtask)."""
    rows = results.get(split, {})
    lines = [f"ava-tasks ({split}, {n_items} items)"]
    for kind, keys in HEADLINE.items():
        tasks = [t for t in sorted(rows) if (t.startswith("TAP")) == (kind == "TAP")]
        if not tasks:
            continue
        lines.append(f"{'task':<7}{'n':>5} " + " ".join(f"{k:>17}" for k in keys))
        for t in tasks:
            cells = [f"{rows[t][k]:>17.2f}" if k in rows[t] else f"{'':>17}" for k in keys]
            lines.append(f"{t:<7}{rows[t]['n']:>5} " + " ".join(cells))
    return "\n".join(lines)


class AvaTasks:
    """The held-out samples of an instruction build, answered by the model and scored."""

    name = NAME
    reducer = "ava-tasks"

    def __init__(self, data: Path, samples: Sequence[InstructionSample], *, limit: int | None, seed: int,
                 batch_size: int, bertscore: BertScoreConfig | None = None) -> None:
        spec = tm.task_spec()
        self.data = Path(data)
        self.generation = dict(spec["generation"]["max_new_tokens"])
        settings_hash = hashlib.sha256(json.dumps(self.generation, sort_keys=True).encode()).hexdigest()[:8]
        self.version = f"{spec['version']}+gen{settings_hash}"
        self.template_version = ",".join(sorted({s.template_version for s in samples if s.template_version})) or None
        self.samples_ = list(samples)
        self.limit, self.seed, self.batch_size = limit, seed, batch_size
        self.bertscore = bertscore or BertScoreConfig()

    def items(self) -> list[GenerationItem]:
        """Family by family, longest prompt first within each: little padding in a batch."""
        ordered = sorted(self.samples_, key=lambda s: (s.family, -len(s.prompt), s.id))
        return [GenerationItem(s.id, s.prompt, s.family, {
            "split": s.split, "task": s.task, "family": s.family, "reference": s.response, "label": s.label,
            "source_text": s.source_text}) for s in ordered]

    def generate(self, model: Any, tokenizer: Any, chunk: Sequence[GenerationItem]) -> list[dict[str, Any]]:
        """One record per item: the prediction and, for pair tasks, both conditional perplexities."""
        predictions = generate(model, tokenizer, [i.prompt for i in chunk], self.generation[chunk[0].group],
                               self.batch_size)
        paired = [i for i in chunk if i.meta["source_text"]]
        ppl: dict[str, tuple[float, float]] = {}
        if paired:
            prefixes = [generation_prefix(tokenizer, i.prompt) for i in paired]
            src = conditional_perplexities(model, tokenizer, prefixes, [i.meta["source_text"] for i in paired])
            tgt = conditional_perplexities(model, tokenizer, prefixes,
                                              [tm.target_body(i.meta["reference"]) for i in paired])
            ppl = {i.id: (a, b) for i, a, b in zip(paired, src, tgt, strict=True)}
        return [{
            "id": i.id, "split": i.meta["split"], "task": i.meta["task"], "family": i.meta["family"],
            "prediction": pred, "reference": i.meta["reference"], "label": i.meta["label"],
            "ppl_source": ppl.get(i.id, (None, None))[0], "ppl_target": ppl.get(i.id, (None, None))[1],
        } for i, pred in zip(chunk, predictions, strict=True)]

    def score(self, items: Sequence[GenerationItem], outputs: Mapping[str, Mapping[str, Any]]) -> list[ItemScore]:
        """Per item: TAP, the judged prediction (:func:`judge_predictions`); generation, the BLEU
        statistics, ROUGE-Lsum, BERTScore F1 (one batch over all items) and the perplexities."""
        records = [outputs[i.id] for i in items]
        generative = [r for r in records if r["family"] != "TAP"]
        f1 = bertscore_f1([r["prediction"] for r in generative], [r["reference"] for r in generative], self.bertscore)
        bert = {r["id"]: v for r, v in zip(generative, f1, strict=True)}
        vocab = data_vocabularies(self.data) if len(generative) < len(records) else {}
        judged: dict[str, dict[str, Any]] = {}
        for task in sorted({r["task"] for r in records if r["family"] == "TAP"} & set(tm.task_spec()["predictive"])):
            mine = [r for r in records if r["task"] == task]
            judged.update(zip((r["id"] for r in mine), judge_predictions(task, mine, vocab), strict=True))
        out = []
        for r in records:
            values: dict[str, Any] = {"task": r["task"], "split": r["split"], "family": r["family"]}
            if r["family"] == "TAP":
                values.update(judged.get(r["id"], {"kind": "unknown task", "gold": None}))
            else:
                counts, totals = tm.bleu_statistics(r["prediction"], r["reference"])
                values.update({"bleu_counts": counts, "bleu_totals": totals,
                               "rouge_lsum": tm.rouge_lsum_f(r["prediction"], r["reference"]),
                               "bertscore_f1": bert[r["id"]], "ppl_source": r["ppl_source"],
                               "ppl_target": r["ppl_target"]})
            out.append(ItemScore(r["id"], r["id"], values))
        return out

    def metrics(self, scores: Sequence[ItemScore]) -> TaskResult:
        results = summarise(scores)
        rows = sorted(scores, key=lambda s: (s.values["split"], s.values["task"], s.id))
        bert = self.bertscore.describe()
        pooled = results.get("all", {})
        headline = {f"{task}/{k}": m[k] for task, m in sorted(pooled.items())
                    for k in HEADLINE["TAP" if task.startswith("TAP") else "GEN"] if k in m}
        table = [{"split": split, "task": task, "metric": metric, "value": value}
                 for split in sorted(results) for task in sorted(results[split])
                 for metric, value in sorted(results[split][task].items()) if isinstance(value, int | float)]
        per_split: dict[str, int] = defaultdict(int)
        for r in rows:
            per_split[r.values["split"]] += 1
        return TaskResult(
            headline=headline,
            units=len(rows),
            unit="items",
            description="pooled over the held-out splits: TAP accuracy (class-balanced, %) beside the random "
                        "baseline; TAG/TS/TC BLEU-1..4 precisions, ROUGE-Lsum, BERTScore F1 "
                        f"({bert['model']}, layer {bert['layer']}: {bert['note']}) and delta-PPL (source minus "
                        "target perplexity).",
            counts={"items": len(rows), **{f"items_{s}": n for s, n in sorted(per_split.items())}},
            details={"by_split": results, "summary": summary_table(results, len(rows)),
                     "generation": {"greedy": True, "max_new_tokens": self.generation},
                     "bertscore": bert,
                     "data": {"path": str(self.data.resolve()), "manifest_sha256": manifest_sha256(self.data),
                              "splits": list(TEST_SPLITS), "limit_per_task": self.limit, "seed": self.seed}},
            tables={"results": table,
                    "bertscore": [{"id": r.id, "split": r.values["split"], "task": r.values["task"],
                                   "bertscore_f1": r.values["bertscore_f1"]} for r in rows
                                  if "bertscore_f1" in r.values]},
        )


def make_tasks(options: TaskOptions) -> list[AvaTasks]:
    """The ava-tasks task over the held-out splits of the instruction build at ``options.data``."""
    if options.data is None:
        raise DataNotFound("ava-tasks needs --data DIR: the output folder of `ava data build-ads` "
                           "(its held-out splits are what is evaluated)")
    data = Path(options.data).expanduser()
    why = incomplete_reason(data, "instructions") if data.is_dir() else "no such folder"
    if why is not None:
        raise DataNotFound(f"{data}: not a finished instruction build ({why}); "
                           "build one with `ava data build-ads --ads PATH --out DIR`")
    limit = options.limit_for(NAME)
    samples = [s for split in TEST_SPLITS
               for s in stratified_sample(read_split(data, split), limit, options.seed, per_task=True)]
    batch = options.settings.get("batch_size", tm.task_spec()["generation"]["batch_size"])
    try:
        batch_size = int(batch)
    except ValueError:
        raise ValueError(f"--set batch_size={batch!r}: expected an integer") from None
    return [AvaTasks(data, samples, limit=limit, seed=options.seed, batch_size=batch_size,
                     bertscore=bertscore_config(options.settings))]


def bertscore_config(settings: Mapping[str, str]) -> BertScoreConfig:
    """``--set bertscore_model=... bertscore_layer=...``, checked before anything is generated."""
    layer = settings.get("bertscore_layer")
    if layer is not None:
        try:
            layer = int(layer)
        except ValueError:
            raise ValueError(f"--set bertscore_layer={layer!r}: expected a layer number") from None
        if layer < 1:
            raise ValueError(f"--set bertscore_layer={layer}: layers count from 1")
    config = BertScoreConfig(settings.get("bertscore_model") or None, layer)
    if config.model is None and config.resolved_layer > MINILM_LAYER:
        raise ValueError(f"--set bertscore_layer={layer}: the bundled MiniLM has {MINILM_LAYER} layers")
    _ = config.resolved_layer  # an unknown model without a layer is refused here, not after generating
    return config
