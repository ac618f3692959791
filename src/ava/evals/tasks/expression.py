"""How the opinion tasks read a model's distribution: ``--expression`` / ``--set expression=METHOD``.

``logprobs`` (the default, the published protocol: the next-token probabilities of the option
letters), ``calibrated`` (log-probabilities with a temperature fitted per model on a seeded,
unscored set of questions: :mod:`ava.evals.tasks.calibration`), ``verbalized`` (the model
states its distribution as percentages, parsed strictly) and ``sampled`` (the model answers K
times at temperature 1; the distribution is the share of each letter). The method, its template
version and its numbers are part of the task version, so a run's caches never mix methods.
docs/evaluation.md, "How the model's distribution is read".
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

import yaml

from ava.paths import bundled

METHODS = ("logprobs", "calibrated", "verbalized", "sampled")
GENERATION_METHODS = ("verbalized", "sampled")
"""Methods that have the model write text (a backend that cannot generate cannot do them)."""

DRAWS = "own-generator-v2"
"""How ``sampled``'s answers are drawn, part of its version: each question from its own
generator, its K answers after one shared prefill, questions batched
(:mod:`ava.models.backends.transformers_generate`). Replies drawn the earlier way (torch's
global generator, one question per call: v1) are never reused."""

SETTINGS = {
    "expression": "how the model's distribution is read: logprobs (default, the published protocol), calibrated, "
                  "verbalized (the model states percentages per option) or sampled (K answers at temperature 1)",
    "samples": "sampled: answers per question (default 20)",
}


@cache
def templates() -> dict[str, Any]:
    """The expression prompts and their numbers (versioned data)."""
    with open(bundled("evals", "expression_templates.yaml"), encoding="utf-8") as fh:
        return yaml.safe_load(fh)


@dataclass(frozen=True)
class ExpressionSpec:
    """What ``expression`` asks for; ``samples`` and ``seed`` matter for ``sampled`` only."""

    method: str = "logprobs"
    samples: int = 20
    seed: int = 0

    @property
    def generates(self) -> bool:
        return self.method in GENERATION_METHODS

    def version_suffix(self) -> str:
        """Appended to the task version (results and caches never mix methods); empty for logprobs."""
        if self.method == "logprobs":
            return ""
        if self.method == "sampled":
            return f"+sampled{self.samples}-seed{self.seed}-{templates()['version']}-{DRAWS}"
        if self.method == "verbalized":
            return f"+verbalized-{templates()['version']}"
        return f"+{self.method}"

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"method": self.method}
        if self.generates:
            out["template_version"] = templates()["version"]
        if self.method == "sampled":
            out.update(samples=self.samples, seed=self.seed, temperature=templates()["sampled"]["temperature"],
                       draws=DRAWS)
        return out


def expression_spec(settings: Mapping[str, Any], seed: int) -> ExpressionSpec:
    """The expression settings, checked: an unknown method is refused with the close names."""
    method = str(settings.get("expression", "logprobs")).strip()
    if method not in METHODS:
        close = difflib.get_close_matches(method, METHODS, n=2)
        hint = f"; did you mean {' or '.join(close)}?" if close else ""
        raise ValueError(f"expression {method!r}: unknown method (known: {', '.join(METHODS)}){hint}")
    raw = settings.get("samples", templates()["sampled"]["samples"])
    try:
        samples = int(raw)
    except (TypeError, ValueError):
        raise ValueError(f"samples={raw!r}: expected a whole number of answers per question") from None
    if samples < 1:
        raise ValueError(f"samples={samples}: expected at least 1 answer per question")
    if "samples" in settings and method != "sampled":
        raise ValueError(f"samples: only the sampled method draws answers (this run reads {method}); "
                         "drop samples or set expression to sampled")
    if method in GENERATION_METHODS and (str(settings.get("orders", 1)).strip() != "1"
                                         or str(settings.get("debias", "none")).strip() != "none"):
        raise ValueError(f"expression {method}: option orders and debiasing (orders, debias) apply to the letters' "
                         "probabilities only; drop them or read logprobs")
    return ExpressionSpec(method, samples, seed)


def check_backend(spec: ExpressionSpec, backend: str, where: str = "") -> None:
    """Refuse, before anything is scored, a method the backend cannot do (the ``uniform``
    baseline has no text to generate)."""
    if spec.generates and backend == "uniform":
        raise ValueError(f"{where}expression {spec.method}: the 'uniform' baseline cannot write text; "
                         "give a language model with --model, or read logprobs")

