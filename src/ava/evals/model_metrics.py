"""Metrics that run a model: BERTScore (an encoder) and conditional perplexity (the evaluated LM).

The pure text metrics of the AVA training tasks (labels, BLEU, ROUGE) are in :mod:`ava.metrics.text`;
these two need a model in memory, so they live with the evaluation that has one.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

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


