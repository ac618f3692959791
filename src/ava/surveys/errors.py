"""The two ways survey data can be refused, each with a message that names the file and what to do.

Both are ``ValueError``s so callers that already turn ``ValueError`` into a one-line CLI error
(``ava eval``) do the right thing without knowing these classes.
"""

from __future__ import annotations


class SurveyInputError(ValueError):
    """An input of ``ava data build-surveys`` is missing, unreadable or ambiguous, or the output folder
    cannot be written; raised before the expensive work wherever it can be detected then."""


class SurveyDataError(ValueError):
    """A survey build that must not be used: unfinished, incomplete (``complete: false`` in its
    manifest, e.g. a wave failed to read or its demographics could not be mapped), or holding questions
    without any group data. ``ava.surveys.load_benchmark`` raises it instead of returning questions."""
