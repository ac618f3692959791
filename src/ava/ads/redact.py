"""Keep access tokens out of every output and log line.

Source URLs (snapshot links, paging links) may carry Graph API tokens; the normaliser never keeps
those URLs, and every message that quotes input text goes through :func:`redact` first.
"""

from __future__ import annotations

import re

_TOKEN_PARAM = re.compile(r"(access_token|token|fbtoken)=[^&\s\"']+", re.IGNORECASE)
# Graph API user/page tokens start with "EAA"; long opaque runs after it are never real words.
_GRAPH_TOKEN = re.compile(r"\bEAA[A-Za-z0-9]{20,}")


def redact(text: str) -> str:
    """``text`` with token query parameters and Graph-API-token-like strings replaced."""
    return _GRAPH_TOKEN.sub("[TOKEN]", _TOKEN_PARAM.sub(r"\1=[TOKEN]", text))
