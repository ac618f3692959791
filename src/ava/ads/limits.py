"""Size limits on ad-library input: the versioned defaults in ``data/ads/limits.yaml``, overridable per build.

Kept apart from the normaliser so a build can record the limits it ran with (they are part of its
identity) and a user can see them in one place.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import lru_cache

import yaml

from ava.paths import bundled


@dataclass(frozen=True, slots=True)
class AdLimits:
    """Character caps; a record over one is skipped (counted, with file and line), never truncated."""

    max_body_chars: int
    max_text_chars: int
    max_id_chars: int
    version: int

    def with_body_cap(self, max_body_chars: int | None) -> AdLimits:
        """These limits with the body cap replaced (``None`` keeps the default)."""
        if max_body_chars is None:
            return self
        if max_body_chars < 1:
            raise ValueError(f"--max-body-chars must be at least 1, not {max_body_chars}")
        return replace(self, max_body_chars=max_body_chars)


@lru_cache(maxsize=1)
def default_limits() -> AdLimits:
    """The bundled limits (``data/ads/limits.yaml``)."""
    with bundled("ads", "limits.yaml").open(encoding="utf-8") as fh:
        doc = yaml.safe_load(fh)
    return AdLimits(int(doc["max_body_chars"]), int(doc["max_text_chars"]), int(doc["max_id_chars"]),
                    int(doc["version"]))
