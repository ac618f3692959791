"""What a batch keeps when its server dies in the middle of it.

The runners save work chunk by chunk (:func:`ava.runs.run_in_chunks`); a chunk whose scoring
raises saves nothing. Against a server a chunk is many requests, most of which may have
finished when the server died: :class:`~ava.models.backends.http.ServerError` carries the items
they completed, and the runner appends them to its log before the error ends the run, so a
rerun redoes only the requests that were in flight.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ava.runs import JsonlLog


def keep_finished(log: JsonlLog, rows: Sequence[Mapping[str, Any]]) -> None:
    """Append ``rows`` to ``log`` (its own append handle: the runner's is mid-chunk)."""
    if not rows:
        return
    log.path.parent.mkdir(parents=True, exist_ok=True)
    with open(log.path, "a", encoding="utf-8") as fh:
        log.append(rows, fh)
