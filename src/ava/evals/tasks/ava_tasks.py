"""``ava eval --benchmark ava-tasks``: the held-out AVA training tasks, generated and scored.

Unlike the letter-scored opinion benchmarks this one generates text: batched greedy decoding
with left padding, in the same prompt format the model was trained on
(:mod:`ava.training.format`). Predictive tasks (TAP) are scored by accuracy on normalised
labels, class-balanced, beside the random baseline; generative ones (TAG, TS, TC) by BLEU-1..4
precisions, ROUGE-Lsum, BERTScore F1 (bundled MiniLM encoder) and, for pair tasks, delta-PPL.

Outputs in ``out``: ``run_config.json`` (a resumed run must match it), ``items.partial.jsonl``
(appended per batch while generating, so an interrupted run resumes), then ``items.jsonl``,
``results.json`` and ``results.csv``, each written atomically once every item is done.
"""

from __future__ import annotations

import csv
import json
import math
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ava.benchmarks import text_metrics as tm
from ava.contracts.instructions import InstructionSample
from ava.io import atomic_write, write_json
from ava.models.loading import model_identity, resolve_model
from ava.training.data import manifest_sha256, read_split, stratified_sample
from ava.training.format import encode_prefix, generation_prefix

NAME = "ava-tasks"
TEST_SPLITS = ("test_advertiser", "test_temporal")


def run_config(model: str, adapter: str | None, data: Path, limit: int | None, seed: int) -> dict[str, Any]:
    """Everything that changes a result; a resumed run must have the same."""
    spec = tm.task_spec()
    return {
        "benchmark": NAME,
        "version": spec["version"],
        "model": model,
        "model_identity": model_identity(resolve_model(model), adapter),
        "adapter": adapter,
        "data": str(Path(data).resolve()),
        "data_manifest_sha256": manifest_sha256(Path(data)),
        "limit_per_task": limit,
        "seed": seed,
        "splits": list(TEST_SPLITS),
        "generation": {"greedy": True, "max_new_tokens": spec["generation"]["max_new_tokens"]},
    }


def _read_done(out: Path) -> dict[str, dict[str, Any]]:
    """Generated items of a finished (``items.jsonl``) or interrupted (partial) run."""
    done: dict[str, dict[str, Any]] = {}
    for path in (out / "items.jsonl", out / "items.partial.jsonl"):
        if path.exists():
            with open(path, encoding="utf-8") as fh:
                for line in fh:
                    if line.endswith("\n"):  # a torn last line (killed mid-write) is redone
                        record = json.loads(line)
                        record.pop("bertscore_f1", None)  # recomputed when scoring
                        done[record["id"]] = record
    return done


def generate(model: Any, tokenizer: Any, prompts: Sequence[str], max_new_tokens: int, batch_size: int = 8) -> list[str]:
    """Greedy continuations of formatted prompts, batched longest-first with left padding."""
    import torch

    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    encoded = encode_prefix(tokenizer, [generation_prefix(tokenizer, p) for p in prompts])
    device = next(model.parameters()).device
    outputs: list[str] = [""] * len(prompts)
    order = sorted(range(len(prompts)), key=lambda i: -len(encoded[i]))
    for b in range(0, len(order), batch_size):
        idx = order[b : b + batch_size]
        width = max(len(encoded[i]) for i in idx)
        ids = torch.full((len(idx), width), pad, dtype=torch.long)
        mask = torch.zeros((len(idx), width), dtype=torch.long)
        for row, i in enumerate(idx):
            ids[row, width - len(encoded[i]) :] = torch.tensor(encoded[i])
            mask[row, width - len(encoded[i]) :] = 1
        with torch.no_grad():
            generated = model.generate(
                input_ids=ids.to(device), attention_mask=mask.to(device), max_new_tokens=max_new_tokens,
                do_sample=False, pad_token_id=pad,
            )
        for row, i in enumerate(idx):
            outputs[i] = tokenizer.decode(generated[row, width:], skip_special_tokens=True).strip()
    return outputs


def _generate_items(
    model: Any, tokenizer: Any, todo: list[InstructionSample], partial: Path, batch_size: int
) -> None:
    from tqdm.auto import tqdm

    max_new = tm.task_spec()["generation"]["max_new_tokens"]
    by_family: dict[str, list[InstructionSample]] = defaultdict(list)
    for s in todo:
        by_family[s.family].append(s)
    partial.parent.mkdir(parents=True, exist_ok=True)
    with open(partial, "a", encoding="utf-8") as fh, tqdm(total=len(todo), unit="item", desc=NAME) as bar:
        for family in sorted(by_family):
            # Longest prompts first, one batch per write: little padding, and a kill loses one batch.
            items = sorted(by_family[family], key=lambda s: (-len(s.prompt), s.id))
            for start in range(0, len(items), batch_size):
                part = items[start : start + batch_size]
                predictions = generate(model, tokenizer, [s.prompt for s in part], max_new[family], batch_size)
                paired = [s for s in part if s.source_text]
                ppl: dict[str, tuple[float, float]] = {}
                if paired:
                    prefixes = [generation_prefix(tokenizer, s.prompt) for s in paired]
                    src = tm.conditional_perplexities(model, tokenizer, prefixes, [s.source_text for s in paired])
                    targets = [tm.target_body(s.response) for s in paired]
                    tgt = tm.conditional_perplexities(model, tokenizer, prefixes, targets)
                    ppl = {s.id: (a, b) for s, a, b in zip(paired, src, tgt, strict=True)}
                for s, pred in zip(part, predictions, strict=True):
                    record = {
                        "id": s.id, "split": s.split, "task": s.task, "family": s.family,
                        "prediction": pred, "reference": s.response, "label": s.label,
                        "ppl_source": ppl.get(s.id, (None, None))[0], "ppl_target": ppl.get(s.id, (None, None))[1],
                    }
                    fh.write(json.dumps(record, ensure_ascii=False) + "\n")
                fh.flush()
                bar.update(len(part))


def data_vocabularies(data: Path) -> dict[str, list[str]]:
    """Label sets of the tasks whose labels come from the data (budget, impression buckets).

    Taken over every split, not only the scored items: a sample of a few items would otherwise
    shrink the label set, inflate the random baseline and hide predictions of unseen buckets.
    """
    tasks = {t for t, v in tm.task_spec()["predictive"].items() if v.get("labels") == "data"}
    labels: dict[str, set[str]] = defaultdict(set)
    for split in ("train", *TEST_SPLITS):
        for s in read_split(data, split):
            if s.task in tasks and s.label:
                labels[s.task].add(s.label)
    return {t: sorted(v) for t, v in labels.items()}


def _vocabulary(task: str, records: list[dict[str, Any]], known: dict[str, list[str]] | None) -> list[str]:
    spec = tm.task_spec()
    name = spec["predictive"][task]["labels"]
    if name == "data":
        return list((known or {}).get(task) or sorted({r["label"] for r in records if r["label"]}))
    return list(spec["vocabularies"][name])


def score_predictive(
    task: str, records: list[dict[str, Any]], vocabularies: dict[str, list[str]] | None = None
) -> dict[str, Any]:
    """Accuracy of normalised labels; items whose gold label cannot be read are counted, not scored."""
    kind = tm.task_spec()["predictive"][task]["kind"]
    gold_ok, correct, top3, unparsed, bad_gold = [], [], [], 0, []
    if kind == "states":
        for r in records:
            gold = tm.normalise_gold_states(r["label"] or "")
            if gold is None:
                bad_gold.append(r["id"])
                continue
            pred = tm.normalise_states(r["prediction"])
            unparsed += not pred
            gold_ok.append(gold[0])
            correct.append(bool(pred) and pred[0] == gold[0])
            top3.append(gold[0] in pred[:3])
        n_states = len(tm.state_names()[0])
        metrics = {
            "top1_balanced": tm.balanced_accuracy(gold_ok, correct), "top1": tm.accuracy(correct),
            "top3": tm.accuracy(top3), "baseline_top1": 100.0 / n_states, "baseline_top3": 300.0 / n_states,
        }
    else:
        vocab = _vocabulary(task, records, vocabularies)
        for r in records:
            gold = tm.find_labels(r["label"] or "", vocab)
            if len(gold) != 1:
                bad_gold.append(r["id"])
                continue
            pred = tm.find_labels(r["prediction"], vocab)
            unparsed += not pred
            gold_ok.append(gold[0])
            correct.append(bool(pred) and pred[0] == gold[0])
        metrics = {
            "accuracy_balanced": tm.balanced_accuracy(gold_ok, correct), "accuracy": tm.accuracy(correct),
            "baseline": 100.0 / len(vocab) if vocab else math.nan, "n_classes": len(vocab),
        }
    return {"n": len(gold_ok), "n_unparsed": unparsed, "n_bad_gold": len(bad_gold),
            "bad_gold_ids": bad_gold[:20], **metrics}


def score_generative(records: list[dict[str, Any]], bertscore: dict[str, float]) -> dict[str, Any]:
    hyps = [r["prediction"] for r in records]
    refs = [r["reference"] for r in records]
    bleu = tm.bleu_precisions(hyps, refs)
    metrics: dict[str, Any] = {
        "n": len(records),
        **{f"bleu{n}": p for n, p in enumerate(bleu, 1)},
        "rouge_lsum": tm.rouge_lsum(hyps, refs),
        "bertscore_f1": sum(bertscore[r["id"]] for r in records) / len(records),
    }
    paired = [r for r in records if r["ppl_source"] is not None]
    if paired:
        metrics["ppl_source"] = sum(r["ppl_source"] for r in paired) / len(paired)
        metrics["ppl_target"] = sum(r["ppl_target"] for r in paired) / len(paired)
        metrics["delta_ppl"] = tm.delta_perplexity([r["ppl_source"] for r in paired], [r["ppl_target"] for r in paired])
    return metrics


def score(
    records: list[dict[str, Any]], vocabularies: dict[str, list[str]] | None = None
) -> dict[str, dict[str, dict[str, Any]]]:
    """Metrics per split (and pooled "all") per task."""
    generative = [r for r in records if r["family"] != "TAP"]
    f1 = tm.bertscore_f1([r["prediction"] for r in generative], [r["reference"] for r in generative])
    bertscore = {r["id"]: v for r, v in zip(generative, f1, strict=True)}
    groups: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for r in records:
        groups[(r["split"], r["task"])].append(r)
        groups[("all", r["task"])].append(r)
    results: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
    for (split, task), rows in sorted(groups.items()):
        if rows[0]["family"] == "TAP":
            if task in tm.task_spec()["predictive"]:
                results[split][task] = score_predictive(task, rows, vocabularies)
        else:
            results[split][task] = score_generative(rows, bertscore)
    for r in generative:
        r["bertscore_f1"] = bertscore[r["id"]]
    return dict(results)


def _write_csv(path: Path, results: dict[str, dict[str, dict[str, Any]]]) -> None:
    with atomic_write(path) as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(["split", "task", "metric", "value"])
        for split in sorted(results):
            for task in sorted(results[split]):
                for metric, value in sorted(results[split][task].items()):
                    if isinstance(value, int | float):
                        writer.writerow([split, task, metric, f"{value:.4f}" if isinstance(value, float) else value])


HEADLINE = {
    "TAP": ("accuracy_balanced", "top1_balanced", "top3", "baseline", "baseline_top1"),
    "GEN": ("bleu1", "bleu4", "rouge_lsum", "bertscore_f1", "delta_ppl"),
}


def summary_table(document: dict[str, Any], split: str = "all") -> str:
    """The pooled results as a fixed-width text table (one row per subtask)."""
    rows = document["results"].get(split, {})
    lines = [f"ava-tasks ({split}, {document['n_items']} items)"]
    for kind, keys in HEADLINE.items():
        tasks = [t for t in sorted(rows) if (t.startswith("TAP")) == (kind == "TAP")]
        if not tasks:
            continue
        lines.append(f"{'task':<7}{'n':>5} " + " ".join(f"{k:>17}" for k in keys))
        for t in tasks:
            cells = [f"{rows[t][k]:>17.2f}" if k in rows[t] else f"{'':>17}" for k in keys]
            lines.append(f"{t:<7}{rows[t]['n']:>5} " + " ".join(cells))
    return "\n".join(lines)


def evaluate(
    model: str,
    adapter: str | None,
    data: Path,
    out: Path,
    limit: int | None = None,
    seed: int = 0,
    batch_size: int | None = None,
) -> dict[str, Any]:
    """Generate answers for the held-out splits of ``data`` and score them; resumable per item.

    ``limit`` caps the items per task and split (a seeded sample). Returns the results document
    also written to ``out/results.json``.
    """
    out = Path(out)
    config = run_config(model, adapter, Path(data), limit, seed)
    saved = out / "run_config.json"
    if saved.exists() and json.loads(saved.read_text(encoding="utf-8")) != config:
        raise ValueError(f"{saved}: this folder holds a run with other settings; use a new --out")
    write_json(saved, config)
    samples = [
        s for split in TEST_SPLITS for s in stratified_sample(read_split(Path(data), split), limit, seed, per_task=True)
    ]
    partial = out / "items.partial.jsonl"
    done = _read_done(out)
    todo = [s for s in samples if s.id not in done]
    if todo:
        from ava.models import load_model

        lm, tokenizer = load_model(model, adapter=adapter)
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token
        size = batch_size or tm.task_spec()["generation"]["batch_size"]
        # Rewrite the partial file without torn lines before appending to it.
        with atomic_write(partial) as fh:
            for record in done.values():
                fh.write(json.dumps(record, ensure_ascii=False) + "\n")
        _generate_items(lm, tokenizer, todo, partial, size)
        done = _read_done(out)
    wanted = {s.id for s in samples}
    records = sorted((r for r in done.values() if r["id"] in wanted), key=lambda r: (r["split"], r["task"], r["id"]))
    results = score(records, data_vocabularies(Path(data)))
    document = {"benchmark": NAME, "config": config, "n_items": len(records), "results": results}
    with atomic_write(out / "items.jsonl") as fh:
        for r in records:
            fh.write(json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n")
    _write_csv(out / "results.csv", results)
    write_json(out / "results.json", document)
    partial.unlink(missing_ok=True)
    print(summary_table(document))
    return document
