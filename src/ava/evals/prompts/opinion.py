"""The opinion benchmarks' prompt template (``data/evals/opinion_templates.yaml``)."""

from __future__ import annotations

from functools import cache
from typing import Any

import yaml

from ava.models.letters import option_letters
from ava.paths import bundled


@cache
def templates() -> dict[str, Any]:
    """The opinion prompt templates (versioned data)."""
    with open(bundled("evals", "opinion_templates.yaml"), encoding="utf-8") as fh:
        return yaml.safe_load(fh)


def render_options(options: list[str] | tuple[str, ...]) -> str:
    tpl = templates()["option"]
    letters = option_letters(len(options))
    return "".join(tpl.format(letter=letter, option=opt) for letter, opt in zip(letters, options, strict=True))
