"""The culture benchmarks' prompt templates (``data/evals/culture_templates.yaml``)."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from typing import Any

import yaml

from ava.paths import bundled


@cache
def culture_templates() -> dict[str, Any]:
    """Prompts, cultures, thresholds and the held-out split of the culture benchmarks."""
    with open(bundled("evals", "culture_templates.yaml"), encoding="utf-8") as fh:
        return yaml.safe_load(fh)


def join_segments(parts: Sequence[str]) -> tuple[str, ...]:
    """Prompt segments that each end at a line break: a part not ending in one joins the next.

    Why: segments are only a hint for sharing computation (the prompt is tokenised whole), and
    a break after a newline is where the shared token prefixes of these prompts end anyway.
    """
    out: list[str] = []
    pending = ""
    for part in parts[:-1]:
        pending += part
        if pending.endswith("\n"):
            out.append(pending)
            pending = ""
    out.append(pending + parts[-1])
    return tuple(s for s in out if s)
