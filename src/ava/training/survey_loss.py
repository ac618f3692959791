"""The survey loss (SubPOP-style): forward KL from a group's answers to the model's option letters.

For a persona-conditioned survey prompt the model is read exactly as the scorer reads it
(:class:`ava.models.encoding.PromptEncoder`: the prompt tokenised whole in the model's framing,
each option's letter the one token its spellings ``"A"`` / ``" A"`` append, combined with
logsumexp), at the answer position only, and renormalised over the question's substantive
options, as :func:`ava.evals.tasks.opinion_items.model_reading` does. The loss is
``KL(p_group || q_model) = sum_k p_k (log p_k - log q_k)``, averaged over the prompts of a batch:
what is trained is what is measured.

SubPOP (Suh et al. 2025, ``subpop/train/utils/train_utils.py``) softmaxes the full vocabulary at
every position, picks the answer position's option tokens and renormalises them with an ``1e-8``
inside the log. Here the batch is left-padded so the answer is every row's last position and the
model's ``logits_to_keep=1`` computes the LM head there only (one position instead of the whole
sequence, the vocabulary projection being the largest matrix product of a small model), and the
option log-probabilities are a ``log_softmax`` over the option logits: the same distribution
(the full-vocabulary normaliser cancels in the renormalisation) without an epsilon.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from ava.models.encoding import PromptEncoder
from ava.training.survey_data import SurveyExample


def letter_log_probs(logits: torch.Tensor, letter_ids: torch.Tensor, option_mask: torch.Tensor) -> torch.Tensor:
    """``[B, K]`` log-probabilities of each option under the model, renormalised over the options.

    ``logits`` ``[B, V]`` at the answer position; ``letter_ids`` ``[B, K, S]`` the token ids spelling
    each option's letter (-1 where a row has fewer spellings); ``option_mask`` ``[B, K]`` the
    options that exist in each row. An option's logit is the logsumexp of its spellings' logits.
    """
    b, k, s = letter_ids.shape
    picked = logits.gather(1, letter_ids.clamp(min=0).reshape(b, k * s)).reshape(b, k, s)
    # a missing spelling of a real option is -inf; a padded option keeps finite values (token 0) until
    # it is masked below, since logsumexp of only -inf has a NaN gradient
    picked = picked.masked_fill((letter_ids < 0) & option_mask[..., None], float("-inf"))
    option_logits = torch.logsumexp(picked, dim=-1).masked_fill(~option_mask, float("-inf"))
    return torch.log_softmax(option_logits, dim=-1)


def forward_kl(target: torch.Tensor, log_q: torch.Tensor) -> torch.Tensor:
    """``[B]`` ``KL(p || q) = sum_k p_k (log p_k - log q_k)``, terms with ``p_k = 0`` counted as 0."""
    safe_log_q = torch.where(target > 0, log_q, torch.zeros_like(log_q))  # -inf on padded options: p=0 there
    return (torch.special.xlogy(target, target) - target * safe_log_q).sum(dim=-1)


def answer_logits(model: Any, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Float32 logits ``[B, V]`` at each left-padded row's last position (one forward, LM head on one position).

    Position ids count real tokens only, so a left-padded row is read as it would be alone.
    """
    position_ids = (attention_mask.long().cumsum(-1) - 1).clamp(min=0)
    out = model(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids, logits_to_keep=1)
    return out.logits[:, -1, :].float()


def survey_loss(model: Any, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """Mean forward KL over the batch's prompts."""
    logits = answer_logits(model, batch["input_ids"], batch["attention_mask"])
    log_q = letter_log_probs(logits, batch["letter_ids"], batch["option_mask"])
    return forward_kl(batch["target"], log_q).mean()


# -- rows and batches ---------------------------------------------------------------------------
def encode_examples(examples: Sequence[SurveyExample], tokenizer: Any, chat: bool,
                    max_length: int | None) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Training rows (``input_ids``, ``letter_ids`` of the substantive options, ``target``) as the
    scorer encodes each request; prompts longer than ``max_length`` are left out and counted
    (the evaluation never cuts a prompt, so a cut one would train on what is never asked)."""
    encoded = PromptEncoder(tokenizer, chat=chat).encode([ex.request for ex in examples])
    rows, too_long = [], []
    for ex, enc in zip(examples, encoded, strict=True):
        if max_length is not None and len(enc.ids) > max_length:
            too_long.append(ex.id)
            continue
        letters = [list(t) for t in enc.letters[: len(ex.target)]]  # the substantive options' letters
        rows.append({"kind": 1, "input_ids": list(enc.ids), "letter_ids": letters, "target": list(ex.target)})
    lengths = [len(r["input_ids"]) for r in rows]
    info = {"n_examples": len(examples), "n_rows": len(rows), "n_too_long": len(too_long),
            "too_long": too_long[:20], "n_tokens": sum(lengths), "max_length": max_length,
            "max_length_seen": max(lengths, default=0)}
    return rows, info
