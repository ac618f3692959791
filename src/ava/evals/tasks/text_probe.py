"""Does the model *say* what its first token reads? A diagnostic of every letter-read opinion result.

Wang et al. ("My Answer is C", Findings ACL 2024) found the first-token answer and the text a
model writes disagree on most OpinionQA questions. On a seeded sample of questions (at most
``probe.questions`` of the template, default 50) the question, exactly as ``logprobs`` reads it,
is answered greedily in text; the reply's letter (:func:`~.expression_replies.answer_letter`)
is compared with the argmax of the letter distribution in the survey's order (refusal letters
included). Recorded: the agreement over the sample (a non-answer counts as disagreeing), the
agreement among the replies that name an option, and the non-answer rate. Generation is
batched and cached like any other; it adds fields to the result and changes no number.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ava.contracts.scoring import ScoredItem
from ava.contracts.surveys import SurveyQuestion
from ava.evals.prompts.opinion import templates as opinion_templates
from ava.evals.task import EvalItem, GenerationItem
from ava.evals.tasks.expression import templates
from ava.evals.tasks.expression_replies import answer_letter
from ava.evals.tasks.opinion_items import question_block, shown_options
from ava.models.letters import option_letters
from ava.subsets import seeded_subset

GROUP = "probe"


def _survey_order(item: EvalItem) -> bool:
    order = item.meta.get("order")
    return "role" not in item.meta and (order is None or list(order) == sorted(order))


def letter_prompt(q: SurveyQuestion) -> str:
    """The question exactly as ``logprobs`` reads it: the question block and the answer cue."""
    return question_block(q) + opinion_templates()["cue"]


def probe_items(items: Sequence[EvalItem], by_key: Mapping[str, SurveyQuestion], seed: int) -> list[GenerationItem]:
    """A seeded sample of the questions whose survey-order prompt is among ``items``: one greedy
    generation item each (id ``probe:<item id>``), the question as ``logprobs`` reads it."""
    first = {}
    for item in items:
        if _survey_order(item):
            first.setdefault(str(item.meta["question"]), item)
    uids = list(first)
    size = int(templates()["probe"]["questions"])
    return [GenerationItem(f"probe:{first[uids[i]].id}", letter_prompt(by_key[uids[i]]), GROUP,
                           {"question": uids[i], "item": first[uids[i]].id})
            for i in seeded_subset(len(uids), size, seed, "numpy")]


def generate_probe(scorer: Any, chunk: Sequence[GenerationItem]) -> list[dict[str, Any]]:
    """One greedy reply per item, the chunk in one batched call."""
    texts = scorer.generate([i.prompt for i in chunk], max_new_tokens=int(templates()["probe"]["max_new_tokens"]))
    return [{"reply": t[0]} for t in texts]


def probe_section(probes: Sequence[GenerationItem], records: Mapping[str, Mapping[str, Any]],
                  scored: Mapping[str, ScoredItem], by_key: Mapping[str, SurveyQuestion], seed: int) -> dict[str, Any]:
    """The agreement of first-token and text answers over the probed questions."""
    agree = answered = 0
    for p in probes:
        q = by_key[str(p.meta["question"])]
        letters = option_letters(len(shown_options(q)))
        first = letters[int(np.argmax(scored[str(p.meta["item"])].logprobs))]
        said = answer_letter(str(records[p.id]["reply"]), letters)
        answered += said is not None
        agree += said == first
    n = len(probes)
    ids = [str(p.meta["question"]) for p in probes]
    return {
        "measured": True, "questions": n, "seed": seed, "max_questions": int(templates()["probe"]["questions"]),
        "max_new_tokens": int(templates()["probe"]["max_new_tokens"]), "decoding": "greedy",
        "template_version": templates()["version"],
        "agreement": round(agree / n, 6) if n else None,
        "agreement_among_answers": round(agree / answered, 6) if answered else None,
        "non_answer_rate": round(1 - answered / n, 6) if n else None,
        "ids_sha256": hashlib.sha256("\n".join(ids).encode()).hexdigest()[:16],
        "definition": "share of sampled questions whose greedy text answer (the question as logprobs reads it) names "
                      "the letter with the highest first-token probability (survey order, refusal letters included); "
                      "a reply naming no option counts as disagreeing and as a non-answer",
    }


def not_measured(reason: str) -> dict[str, Any]:
    return {"measured": False, "reason": reason}
