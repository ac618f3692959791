"""Metrics of the AVA training tasks: label accuracy, BLEU, ROUGE-Lsum, BERTScore, delta-perplexity.

Thin wrappers over the reference packages (sacrebleu, rouge-score, bert-score) so that every
number is computed the way the field computes it; only the label normalisation and the
class-balanced mean are ours.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

import yaml

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


# -- predictive accuracy -------------------------------------------------------------------------


def balanced_accuracy(gold: Sequence[str], correct: Sequence[bool]) -> float:
    """Mean over gold classes of the accuracy within the class, in percent.

    Equal to plain accuracy on a class-balanced test set (what the method published), without
    throwing away items to balance it.
    """
    by_class: dict[str, list[bool]] = defaultdict(list)
    for g, c in zip(gold, correct, strict=True):
        by_class[g].append(c)
    if not by_class:
        return float("nan")
    return 100.0 * sum(sum(v) / len(v) for v in by_class.values()) / len(by_class)


def accuracy(correct: Sequence[bool]) -> float:
    return 100.0 * sum(correct) / len(correct) if correct else float("nan")


# -- generation metrics --------------------------------------------------------------------------


def bleu_precisions(hypotheses: Sequence[str], references: Sequence[str]) -> list[float]:
    """Corpus BLEU-1..4 modified (clipped) n-gram precisions in percent, sacrebleu's 13a tokens.

    Read from sacrebleu's raw match counts: its ``precisions`` attribute is smoothed (a zero
    count shows as a small positive number), which is not what an n-gram precision reports.
    """
    from sacrebleu.metrics import BLEU

    result = BLEU().corpus_score(list(hypotheses), [list(references)])
    return [100.0 * c / t if t else 0.0 for c, t in zip(result.counts, result.totals, strict=True)]


def rouge_lsum(hypotheses: Sequence[str], references: Sequence[str]) -> float:
    """Mean ROUGE-Lsum F-measure (percent), rouge-score with Porter stemming.

    Lsum treats newlines as sentence breaks (summary-level LCS), as the reference package does.
    """
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(["rougeLsum"], use_stemmer=True)
    scores = [scorer.score(r, h)["rougeLsum"].fmeasure for h, r in zip(hypotheses, references, strict=True)]
    return 100.0 * sum(scores) / len(scores) if scores else float("nan")


PUBLISHED_BERTSCORE = ("roberta-large", 17)
"""The configuration published BERTScore numbers use (bert-score's default for English):
online only (downloads roberta-large); ``--set bertscore_model=roberta-large`` selects it."""
MINILM_LAYER = 6
"""The bundled all-MiniLM-L6-v2's last layer: the offline default's layer."""


@dataclass(frozen=True)
class BertScoreConfig:
    """Which encoder and layer BERTScore reads; ``model`` None = the bundled MiniLM (offline).

    ``layer`` None = bert-score's own layer for a ``model`` it knows (``model2layers``: 17 for
    roberta-large), the last layer (6) for the bundled MiniLM; a model bert-score does not know
    needs an explicit layer.
    """

    model: str | None = None
    layer: int | None = None

    @property
    def resolved_layer(self) -> int:
        if self.layer is not None:
            return self.layer
        if self.model is None:
            return MINILM_LAYER
        from bert_score.utils import model2layers

        if self.model not in model2layers:
            raise ValueError(f"bert-score has no default layer for {self.model!r}: "
                             "pass --set bertscore_layer=N as well")
        return int(model2layers[self.model])

    @property
    def comparable(self) -> bool:
        """Whether numbers are comparable with published BERTScore (roberta-large, layer 17)."""
        return (self.model, self.resolved_layer) == PUBLISHED_BERTSCORE

    def describe(self) -> dict[str, Any]:
        """What the results record about the configuration (and whether it is comparable)."""
        name = self.model or "all-MiniLM-L6-v2 (bundled, offline)"
        note = ("comparable to published numbers (roberta-large, layer 17)" if self.comparable else
                "not comparable to published numbers (those use roberta-large, layer 17: "
                "--set bertscore_model=roberta-large, online)")
        return {"model": name, "layer": self.resolved_layer, "comparable_to_published": self.comparable,
                "note": note}


def bertscore_f1(hypotheses: Sequence[str], references: Sequence[str], config: BertScoreConfig | None = None,
                 device: str | None = None) -> list[float]:
    """Per-pair BERTScore F1 (0..1), bert-score's ``score`` with ``config``'s model and layer.

    The default, the bundled all-MiniLM-L6-v2 at its last layer (6), is offline and NOT
    comparable with published BERTScore (roberta-large, layer 17): see :class:`BertScoreConfig`.
    """
    from bert_score import score

    from ava.models.encoders import minilm_path

    config = config or BertScoreConfig()
    if not hypotheses:
        return []
    _, _, f1 = score(
        list(hypotheses), list(references), model_type=config.model or minilm_path(),
        num_layers=config.resolved_layer, device=device or "cpu", batch_size=32,
    )
    return [float(x) for x in f1]


# -- perplexity ----------------------------------------------------------------------------------


def conditional_perplexities(
    model: Any,
    tokenizer: Any,
    prefixes: Sequence[str],
    texts: Sequence[str],
    batch_size: int = 8,
    encode: Callable[[Any, list[str]], list[list[int]]] | None = None,
) -> list[float]:
    """Perplexity of each ``text`` as the continuation of its ``prefix`` under ``model``.

    The continuation's tokens are those after the longest common prefix of the tokenised prefix
    and the tokenised prefix+text (tokens may merge at the boundary, as TRL also handles).
    """
    import torch

    from ava.instructions.prompt_format import encode_prefix

    encode = encode or encode_prefix
    pairs = []
    for prefix_ids, full_ids in zip(encode(tokenizer, list(prefixes)),
                                    encode(tokenizer, [p + t for p, t in zip(prefixes, texts, strict=True)]),
                                    strict=True):
        start = next((i for i, (a, b) in enumerate(zip(prefix_ids, full_ids, strict=False)) if a != b),
                     min(len(prefix_ids), len(full_ids)))
        if start >= len(full_ids):
            raise ValueError("empty continuation: cannot compute the perplexity of an empty text")
        pairs.append((full_ids, max(start, 1)))
    device = next(model.parameters()).device
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    result: list[float] = [math.nan] * len(pairs)
    order = sorted(range(len(pairs)), key=lambda i: -len(pairs[i][0]))
    for b in range(0, len(order), batch_size):
        idx = order[b : b + batch_size]
        width = max(len(pairs[i][0]) for i in idx)
        ids = torch.full((len(idx), width), pad, dtype=torch.long)
        mask = torch.zeros((len(idx), width), dtype=torch.long)
        labels = torch.full((len(idx), width), -100, dtype=torch.long)
        for row, i in enumerate(idx):
            full, start = pairs[i]
            ids[row, : len(full)] = torch.tensor(full)
            mask[row, : len(full)] = 1
            labels[row, start : len(full)] = torch.tensor(full[start:])
        with torch.no_grad():
            logits = model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits.float()
        logprobs = torch.log_softmax(logits[:, :-1], dim=-1)
        target = labels[:, 1:].to(device)
        valid = target != -100
        nll = -logprobs.gather(-1, target.clamp(min=0).unsqueeze(-1)).squeeze(-1) * valid
        for row, i in enumerate(idx):
            result[i] = math.exp(float(nll[row].sum() / valid[row].sum()))
    return result


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
