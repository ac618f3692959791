"""The default opinion task read from text the model writes: ``--expression verbalized`` or ``sampled``.

Same questions, same ids, same metrics as :class:`~ava.evals.tasks.opinion_task.OpinionTask`;
only the model's distribution per question comes from generated text instead of the letters'
next-token probabilities. ``verbalized``: the model is asked for the percentage of people who
would pick each option (one greedy reply, parsed strictly by
:func:`~ava.evals.tasks.expression_replies.parse_verbalized`). ``sampled``: the question exactly
as ``logprobs`` reads it, answered K times at temperature 1 with a per-question seed; the
distribution is the share of each option among the replies that name one. A question whose
reply does not parse (or whose K replies name no substantive option) gets no score: it is
counted with its reason, never imputed. Generation goes through the scorer's own ``generate``
(the canonical tokenisation and framing of scoring, batched). docs/evaluation.md, "How the
model's distribution is read".
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from ava.contracts.results import ItemScore
from ava.contracts.surveys import SurveyQuestion
from ava.evals.task import GenerationItem, TaskResult
from ava.evals.tasks.expression import ExpressionSpec, check_backend, templates
from ava.evals.tasks.expression_replies import answer_letter, parse_verbalized
from ava.evals.tasks.opinion_items import all_groups, question_block, shown_options
from ava.evals.tasks.opinion_task import OpinionTask, question_score
from ava.evals.tasks.text_probe import letter_prompt as sampled_prompt
from ava.evals.tasks.text_probe import not_measured
from ava.metrics.resampling import N_RESAMPLES
from ava.models.letters import option_letters
from ava.subsets import first_units

MOST_FAIL = 0.5
"""Share of unparsable questions above which the run says, in one line at its end, that the
method mostly failed for this model."""


def question_seed(seed: int, uid: str) -> int:
    """A question's own sampling seed: the same replies whatever else is in its batch (or resumed)."""
    return (seed * 1_000_003 + int(hashlib.sha256(uid.encode()).hexdigest()[:8], 16)) % 2**31


def verbalized_prompt(q: SurveyQuestion) -> str:
    return templates()["verbalized"]["prompt"].format(question_block=question_block(q))


class OpinionTextTask(OpinionTask):
    """Representativeness, consistency and refusal from verbalized or sampled distributions."""

    batch_size = 8

    def __init__(self, name: str, questions: Sequence[SurveyQuestion], *, expression: ExpressionSpec,
                 seed: int = 0, n_resamples: int = N_RESAMPLES, limit: int | None = None) -> None:
        super().__init__(name, questions, seed=seed, n_resamples=n_resamples, limit=limit)
        self.expression = expression
        self.version += expression.version_suffix()
        self.unparsable: dict[str, str] = {}
        self.non_answers: dict[str, float] = {}
        self.asked = 0
        self.text_probe = not_measured(f"{expression.method}: no letters are read (see details.expression)")

    def check_backend(self, backend: str) -> None:
        check_backend(self.expression, backend, f"{self.name}: ")

    def items(self) -> list[GenerationItem]:  # type: ignore[override]
        prompt = verbalized_prompt if self.expression.method == "verbalized" else sampled_prompt
        return first_units([GenerationItem(uid, prompt(q), self.expression.method,
                                           {"unit": uid, "question": uid, "wave": q.wave})
                            for uid, q in zip(self.ids, self.questions, strict=True)], self.limit)

    def generate_with(self, scorer: Any, chunk: Sequence[GenerationItem]) -> list[dict[str, Any]]:
        """Verbalized: one greedy reply per question; sampled: K replies per question, each
        question drawn with its own seed (its replies do not depend on its batch). The chunk in
        one batched call either way."""
        prompts = [i.prompt for i in chunk]
        if self.expression.method == "verbalized":
            tpl = templates()["verbalized"]
            texts = scorer.generate(prompts, max_new_tokens=int(tpl["max_new_tokens"]))
            return [{"reply": t[0]} for t in texts]
        tpl = templates()["sampled"]
        seeds = [question_seed(self.expression.seed, item.id) for item in chunk]
        replies = scorer.generate(prompts, max_new_tokens=int(tpl["max_new_tokens"]),
                                  temperature=float(tpl["temperature"]), n=self.expression.samples, seed=seeds)
        return [{"replies": list(r), "seed": seed} for r, seed in zip(replies, seeds, strict=True)]

    def score(self, items: Sequence[GenerationItem], outputs: Mapping[str, Mapping[str, Any]]) -> list[ItemScore]:  # type: ignore[override]
        """A question's item score from its parsed distribution; an unparsable one: none (counted)."""
        qs = [self.by_key[str(item.meta["question"])] for item in items]
        groups = all_groups(qs)
        self.unparsable, self.non_answers, self.asked = {}, {}, len(items)
        out = []
        for item, q in zip(items, qs, strict=True):
            read = self._read(item.id, q, outputs[item.id])
            if read is not None:
                dist, refusal, mass = read
                out.append(question_score(item.id, q, groups, dist, refusal, mass, dist, 1))
        return out

    def _read(self, uid: str, q: SurveyQuestion,
              record: Mapping[str, Any]) -> tuple[np.ndarray, float, float | None] | None:
        """(distribution over the substantive options, refusal rate, letter mass), or None with
        the reason kept in ``self.unparsable``."""
        letters = option_letters(len(shown_options(q)))
        n = len(q.options)
        if self.expression.method == "verbalized":
            parsed = parse_verbalized(str(record["reply"]), letters, float(templates()["verbalized"]["sum_tolerance"]))
            if parsed.probs is None:
                self.unparsable[uid] = str(parsed.reason)
                return None
            probs, mass = np.array(parsed.probs), None
        else:
            answers = [answer_letter(str(r), letters) for r in record["replies"]]
            counts = np.array([sum(a == letter for a in answers) for letter in letters], dtype=float)
            self.non_answers[uid] = 1.0 - counts.sum() / len(answers)
            if counts.sum() == 0:
                self.unparsable[uid] = "no reply names an option"
                return None
            probs, mass = counts / counts.sum(), float(counts.sum() / len(answers))
        substantive = probs[:n]
        if substantive.sum() <= 0:
            self.unparsable[uid] = "everything on the refusal option(s)"
            return None
        refusal = 1.0 - float(substantive.sum()) if q.refusal_options else float("nan")
        return substantive / substantive.sum(), refusal, mass

    def metrics(self, scores: Sequence[ItemScore]) -> TaskResult:
        """The opinion metrics over the questions that parsed, and what the method did: its
        settings, how many questions were asked, unparsable (by reason) and the non-answer rate."""
        section = self._expression_section()
        if not scores:
            return TaskResult(headline={"representativeness": None, "uniform_representativeness": None}, units=0,
                              unit="questions", description="no question's reply could be read: no score",
                              counts={"questions": 0, "unparsable": len(self.unparsable)},
                              details={"expression": section})
        result = super().metrics(scores)
        return replace(result, counts={**result.counts, "unparsable": len(self.unparsable)},
                       details={**result.details, "expression": section})

    def _expression_section(self) -> dict[str, Any]:
        asked, bad = self.asked, len(self.unparsable)
        section: dict[str, Any] = {
            **self.expression.to_dict(), "questions_asked": asked, "questions_scored": asked - bad,
            "unparsable": bad, "unparsable_reasons": dict(sorted(Counter(self.unparsable.values()).items())),
            "unparsable_ids": sorted(self.unparsable), "imputed": False,
        }
        if self.expression.method == "sampled":
            rate = float(np.mean(list(self.non_answers.values()))) if self.non_answers else float("nan")
            section["non_answer_rate"] = round(rate, 6)
        if asked and bad > MOST_FAIL * asked:
            section["warning"] = (f"{self.name}: {bad} of {asked} questions' {self.expression.method} replies could "
                                  f"not be read (most often: {Counter(self.unparsable.values()).most_common(1)[0][0]});"
                                  f" the scores cover only {asked - bad} questions: this model does not express a "
                                  "distribution this way; compare with --expression logprobs")
        return section
