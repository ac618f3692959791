"""Survey supervision examples (SubPOP-style): a group's persona + a Pew question -> that group's answers.

The positive control of the arms experiment trains on opinion surveys, and its claim is worth
nothing if a question it is evaluated on was trained on. So the training questions are taken
only from waves **disjoint from the evaluated ones**, and, because Pew repeats questions across
waves (same item, new wave, sometimes a reworded stem or an SPSS label cut at 80 characters), a
question is also left out when it repeats an evaluated one by any of these rules
(:func:`repeat_of`):

* the same normalised text (NFKC, case-folded, punctuation and spacing collapsed) and options;
* the same options and the same Pew variable name without its wave suffix (``GOVT_ROLE_W18``
  repeats ``GOVT_ROLE_W32``, reworded);
* the same options and one normalised text (at least 30 characters) a prefix of the other (SPSS
  labels cut at 80 characters, a stem with or without its item);
* the same normalised text with other options (stricter than needed: a reworded option list is
  still the same question to a reader).

What was left out and why is recorded (:class:`SurveySplit`), and :func:`check_disjoint`
refuses, naming the questions, any example that breaks the rules: the experiment calls it on
the very examples it trains on.

The prompt is rendered by the caller (``render(question, persona) -> ScoreRequest``), because
the steering task's prompts live in :mod:`ava.evals`, above training: the experiment passes
:func:`ava.evals.tasks.opinion_items.make_request` and the steering personas, so a training
prompt is the evaluated prompt, character for character. The target is the persona's group's
weighted distribution over the question's substantive options (the letters the scorer
renormalises over).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from ava.contracts.scoring import ScoreRequest
from ava.contracts.surveys import SurveyQuestion
from ava.models.letters import LETTERS
from ava.subsets import seeded_subset

MIN_PREFIX = 30  # characters of normalised text a prefix must have to count as the same question


class SurveySplitError(ValueError):
    """A survey training set that cannot be used (no disjoint wave left, or a leaked question);
    the message names the questions and what to do."""


class PersonaLike(Protocol):
    """What a persona must offer (:class:`ava.evals.prompts.personas.Persona` does)."""

    @property
    def key(self) -> str: ...
    @property
    def attribute(self) -> str: ...
    @property
    def group(self) -> str: ...


Render = Callable[[str, SurveyQuestion, Any], ScoreRequest]
"""``render(example_id, question, persona)``: the steering task's request for that prompt."""


@dataclass(frozen=True)
class SurveyExample:
    """One persona-conditioned prompt and its target: the group's answer distribution over the
    question's substantive options (the first ``len(target)`` letters of ``request.options``)."""

    id: str
    question: str  # the question's key
    wave: str
    attribute: str
    group: str
    request: ScoreRequest
    target: tuple[float, ...]


@dataclass(frozen=True)
class SurveySplit:
    """Which waves and questions a survey training set came from, and what was left out and why."""

    training_waves: tuple[str, ...]
    excluded_waves: tuple[str, ...]
    counts: dict[str, int]
    repeats: tuple[tuple[str, str, str], ...]  # (training-wave question, evaluated question, rule) left out
    seed: int
    limit: int | None
    personas: tuple[str, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict[str, Any]:
        found = asdict(self)
        found["repeats"] = [list(r) for r in self.repeats]
        found["training_waves"], found["excluded_waves"] = list(self.training_waves), list(self.excluded_waves)
        found["personas"] = list(self.personas)
        return found


def normalise(text: str) -> str:
    """Text as compared across waves: NFKC, case-folded, every run of punctuation or space one space."""
    return " ".join(re.sub(r"[\W_]+", " ", unicodedata.normalize("NFKC", text).casefold()).split())


def variable_stem(key: str) -> str:
    """A Pew variable name without its wave suffix (``GOVT_ROLE_W32`` -> ``GOVT_ROLE``)."""
    return re.sub(r"_W\d+(\.\d+)?$", "", key)


class EvaluatedIndex:
    """The evaluated questions, indexed by every rule that makes another question a repeat of one."""

    def __init__(self, evaluated: Iterable[SurveyQuestion]) -> None:
        self.waves: set[str] = set()
        self.texts: dict[str, str] = {}
        self.stems: dict[tuple[str, tuple[str, ...]], str] = {}
        self.by_options: dict[tuple[str, ...], list[tuple[str, str]]] = {}
        for q in evaluated:
            self.waves.add(q.wave)
            text, options = normalise(q.text), tuple(normalise(o) for o in q.options)
            self.texts.setdefault(text, q.key)
            self.stems.setdefault((variable_stem(q.key), options), q.key)
            self.by_options.setdefault(options, []).append((text, q.key))

    def leak(self, q: SurveyQuestion) -> tuple[str, str] | None:
        """(evaluated question, rule) when ``q`` is evaluated or repeats an evaluated question, else None."""
        if q.wave in self.waves:
            return q.key, f"wave {q.wave} is evaluated"
        return self.repeat_of(q)

    def repeat_of(self, q: SurveyQuestion) -> tuple[str, str] | None:
        """The most specific rule first: a generic stem ("Which statement comes closer to your views?")
        matches many evaluated questions by text alone, but fewer by text and options."""
        text, options = normalise(q.text), tuple(normalise(o) for o in q.options)
        for other, key in self.by_options.get(options, ()):
            if other == text:
                return key, "same text and options"
        stem = self.stems.get((variable_stem(q.key), options))
        if stem is not None:
            return stem, "same variable and options"
        for other, key in self.by_options.get(options, ()):
            short, long_ = sorted((text, other), key=len)
            if len(short) >= MIN_PREFIX and long_.startswith(short):
                return key, "same options, text a prefix of the other"
        if text in self.texts:
            return self.texts[text], "same text, other options"
        return None


def scorable(q: SurveyQuestion) -> bool:
    """A question the loss can read: 2+ substantive options, every shown option a letter."""
    return len(q.options) >= 2 and len(q.options) + len(q.refusal_options) <= len(LETTERS)


def group_target(q: SurveyQuestion, attribute: str, group: str) -> tuple[float, ...] | None:
    """The group's distribution over the substantive options, or None when it has no answers."""
    g = q.group(attribute, group)
    if g is None or len(g.distribution) != len(q.options) or not sum(g.distribution) > 0:
        return None
    total = float(sum(g.distribution))
    return tuple(float(p) / total for p in g.distribution)


def survey_examples(
    questions: Sequence[SurveyQuestion], evaluated: Sequence[SurveyQuestion], personas: Sequence[PersonaLike],
    render: Render, *, seed: int, limit: int | None = None,
) -> tuple[list[SurveyExample], SurveySplit]:
    """Persona-conditioned training examples from the waves of ``questions`` that no evaluated
    question comes from, minus every repeat of an evaluated question; a seeded sample of
    ``limit`` examples (all when None), in (question, persona) order.

    ``evaluated`` is every question the experiment scores (OpinionQA's 1,506, or whatever it
    evaluates); ``personas`` the steering personas (one example per question x persona whose
    group answered it); ``render`` the steering task's request builder.
    """
    index = EvaluatedIndex(evaluated)
    counts = {"questions": len(questions), "evaluated_questions": len(evaluated), "in_evaluated_waves": 0,
              "repeats_of_evaluated": 0, "unscorable": 0, "training_questions": 0,
              "pairs_without_group_answers": 0}
    kept: list[SurveyQuestion] = []
    repeats: list[tuple[str, str, str]] = []
    seen: set[tuple[str, str]] = set()
    for q in questions:
        if q.wave in index.waves:
            counts["in_evaluated_waves"] += 1
        elif (hit := index.repeat_of(q)) is not None:
            counts["repeats_of_evaluated"] += 1
            repeats.append((q.key, *hit))
        elif not scorable(q) or (q.wave, q.key) in seen:
            counts["unscorable"] += 1
        else:
            kept.append(q)
        seen.add((q.wave, q.key))
    training_waves = sorted({q.wave for q in kept}, key=_wave_order)
    if not kept:
        raise SurveySplitError(
            f"survey training data: no question left in a wave disjoint from the evaluated ones "
            f"({len(questions)} questions, waves {', '.join(sorted({q.wave for q in questions}, key=_wave_order))}; "
            f"evaluated waves {', '.join(sorted(index.waves, key=_wave_order))}); train on a survey build with "
            "other waves (the bundled OpinionQA-XL) or evaluate fewer waves")
    counts["training_questions"] = len(kept)
    pairs = []
    for qi, q in enumerate(kept):
        for pi, p in enumerate(personas):
            if group_target(q, p.attribute, p.group) is None:
                counts["pairs_without_group_answers"] += 1
            else:
                pairs.append((qi, pi))
    counts["examples_available"] = len(pairs)
    chosen = [pairs[i] for i in seeded_subset(len(pairs), limit, seed, "python")]
    ids = _question_ids(kept)
    examples = []
    for qi, pi in chosen:
        q, p = kept[qi], personas[pi]
        example_id = f"{ids[qi]}|{p.key}"
        target = group_target(q, p.attribute, p.group)
        assert target is not None
        examples.append(SurveyExample(example_id, q.key, q.wave, p.attribute, p.group, render(example_id, q, p),
                                      target))
    counts["examples"] = len(examples)
    split = SurveySplit(tuple(training_waves), tuple(sorted(index.waves, key=_wave_order)), counts,
                        tuple(repeats), seed, limit, tuple(dict.fromkeys(p.key for p in personas)))
    return examples, split


def check_disjoint(examples: Sequence[SurveyExample], questions: Sequence[SurveyQuestion],
                   evaluated: Sequence[SurveyQuestion]) -> None:
    """Refuse, naming them, training examples whose question is evaluated or repeats an evaluated
    one (by wave, text, or options with a prefix text or the same variable name).

    ``questions`` are the survey questions the examples were made from (looked up by key and wave).
    """
    index = EvaluatedIndex(evaluated)
    by_key = {(q.wave, q.key): q for q in questions}
    leaks: dict[str, str] = {}
    for ex in examples:
        q = by_key.get((ex.wave, ex.question))
        if q is None:
            raise SurveySplitError(f"survey example {ex.id}: its question {ex.question} ({ex.wave}) is not in the "
                                   "survey data given; pass the questions the examples were made from")
        hit = index.leak(q)
        if hit is not None and q.key not in leaks:
            leaks[q.key] = f"{q.key} ({hit[1]}: {hit[0]})" if hit[0] != q.key else f"{q.key} ({hit[1]})"
    if leaks:
        names = list(leaks.values())
        more = f" and {len(names) - 5} more" if len(names) > 5 else ""
        raise SurveySplitError(
            f"survey training data: {len(names)} question(s) also evaluated: {'; '.join(names[:5])}{more}; "
            "train only on waves disjoint from the evaluated ones (ava.training.survey_data.survey_examples)")


def _question_ids(questions: Sequence[SurveyQuestion]) -> list[str]:
    counts: dict[str, int] = {}
    for q in questions:
        counts[q.key] = counts.get(q.key, 0) + 1
    return [q.key if counts[q.key] == 1 else f"{q.key}@{q.wave}" for q in questions]


def _wave_order(wave: str) -> tuple[float, str]:
    """W8.5 after W8, W10 after W9 (numeric), anything else after, by name."""
    m = re.fullmatch(r"W(\d+(?:\.\d+)?)", wave)
    return (float(m.group(1)), wave) if m else (float("inf"), wave)
