"""Typed access to the fields of one raw ad record: every value is checked against the JSON type the
Ad Library gives (``docs/ad-library.md``) before it is used, so a wrong type is a skipped record with
a reason, never a crash and never a ``str()`` of a list or dict passed off as text.

Policy for ``null``: a field that is ``null`` is absent; a ``null`` entry inside a list is ignored
(it carries nothing); a ``null`` where a cell needs a value (a share, a region name) is an error.
"""

from __future__ import annotations

import math
import re
from typing import Any

from ava.ads.redact import redact

# Undecodable input bytes arrive as U+DC80..U+DCFF (the readers decode with "surrogateescape");
# a JSON "\ud800"-style escape leaves an unpaired surrogate. Neither is text that can be written.
_SURROGATE = re.compile(r"[\ud800-\udfff]")


class BadRecord(ValueError):
    """A record that fails validation: ``reason`` is a stable code, the message says what to fix."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(redact(" ".join(message.split())))  # one line, whatever the input held
        self.reason = reason


def kind(value: Any) -> str:
    """The JSON name of a value's type, for messages ("a list", "an object", ...)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return f"a {type(value).__name__}"


def wrong_type(field: str, value: Any, expected: str) -> BadRecord:
    """``bad_type``, or ``missing_field`` when a value the record needs is null or empty."""
    if value is None or value == "":
        return BadRecord("missing_field", f"{field} is {'missing' if value is None else 'empty'}, expected {expected}")
    return BadRecord("bad_type", f"{field} is {kind(value)}, expected {expected}")


def check_text(text: str, field: str, limit: int, reason: str = "text_too_long") -> str:
    """``text`` stripped; refuses text that cannot be written as UTF-8 or is longer than ``limit``."""
    bad = _SURROGATE.search(text)
    if bad:
        code = ord(bad.group())
        what = (f"byte 0x{code - 0xDC00:02X} that is not UTF-8" if 0xDC80 <= code <= 0xDCFF
                else f"an unpaired surrogate \\u{code:04x}")
        raise BadRecord("invalid_text", f"{field} holds {what} at character {bad.start() + 1}")
    text = text.strip()
    if len(text) > limit:
        raise BadRecord(reason, f"{field} has {len(text):,} characters, above the cap of {limit:,}")
    return text


def text(value: Any, field: str, limit: int) -> str | None:
    """A string field, stripped; ``None`` when absent or blank."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise wrong_type(field, value, "a string")
    return check_text(value, field, limit) or None


def ident(value: Any, field: str, limit: int) -> str | None:
    """An id: a string, or a JSON integer (exports store page ids as numbers); never a float or bool."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if value is not None and not isinstance(value, str):
        raise wrong_type(field, value, "a string or an integer")
    return text(value, field, limit)


def entries(value: Any, field: str, expected: str) -> list[tuple[str, Any]]:
    """The non-null entries of a list field with their labels (``field[i]``); a non-list is an error."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise wrong_type(field, value, f"a list of {expected}")
    return [(f"{field}[{i}]", item) for i, item in enumerate(value) if item is not None]


def objects(value: Any, field: str) -> list[tuple[str, dict[str, Any]]]:
    """A list of objects (distribution cells, locations) with their labels."""
    out = []
    for label, item in entries(value, field, "objects"):
        if not isinstance(item, dict):
            raise wrong_type(label, item, "an object")
        out.append((label, item))
    return out


def strings(value: Any, field: str, limit: int) -> list[str]:
    """A list of strings (blank and null entries left out)."""
    out = []
    for label, item in entries(value, field, "strings"):
        if not isinstance(item, str):
            raise wrong_type(label, item, "a string")
        item = check_text(item, label, limit)
        if item:
            out.append(item)
    return out


def number(value: Any, field: str) -> float:
    """A finite, non-negative number given as a JSON number or a numeric string (``"4.5E-5"``)."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise BadRecord("bad_number" if value is None else "bad_type",
                        f"{field} is {kind(value)}, expected a number")
    try:
        result = float(value)
    except (ValueError, OverflowError):
        raise BadRecord("bad_number", f"{field} is not a number") from None
    if not math.isfinite(result) or result < 0:
        raise BadRecord("bad_number", f"{field} must be a finite, non-negative number")
    return result


MAX_WHOLE = 10**18
"""Largest bucket bound accepted (real bounds stay below 10**9); keeps every bound an int64."""


def whole(value: Any, field: str) -> int:
    """A non-negative whole number (a bucket bound: ``"300"``, ``300``, ``"1E3"``); ``12.7`` is refused."""
    digits = value.strip() if isinstance(value, str) else ""
    if digits.isascii() and digits.isdigit():
        if len(digits) > 18:
            raise BadRecord("bad_number", f"{field} has {len(digits)} digits, above the largest bound 10^18")
        return int(digits)
    if isinstance(value, int) and not isinstance(value, bool):
        result: float = value
    else:
        result = number(value, field)
        if not result.is_integer():
            raise BadRecord("bad_number", f"{field} is {result:g}, expected a whole number")
    if not 0 <= result <= MAX_WHOLE:
        raise BadRecord("bad_number", f"{field} must be a whole number from 0 to 10^18")
    return int(result)


def first_present(data: dict[str, Any], *keys: str) -> tuple[str, Any]:
    """The first of ``keys`` (current name, then legacy names) holding a value other than null/""/[]."""
    for key in keys:
        value = data.get(key)
        if value is not None and value != "" and value != []:
            return key, value
    return keys[0], None
