"""Cheap, deterministic keyword extraction from an ad body.

The method used KeyBERT, which is not installed here and would add a second embedding pass per ad
(embedding is already the bottleneck at 1 M ads). Instead a YAKE-like, per-document score: content
words (sklearn's English stop list removed) ranked by frequency in the ad, ties broken by first
position. Per-document scores need no corpus-wide IDF pass, so the keywords of an ad do not depend
on which other ads (or which shard) it was processed with: the build stays streaming and
byte-identical whatever the shard count.
"""

from __future__ import annotations

from functools import lru_cache

from sklearn.feature_extraction.text import CountVectorizer

N_KEYWORDS = 5
_IGNORED = frozenset({"url"})  # the "[URL]" mask


@lru_cache(maxsize=1)
def _analyzer():
    # Letters only, 3+ characters: drops numbers, emoji and "[URL]" debris.
    return CountVectorizer(
        stop_words="english", lowercase=True, token_pattern=r"(?u)\b[^\W\d_]{3,}\b"
    ).build_analyzer()


def extract_keywords(text: str, k: int = N_KEYWORDS) -> tuple[str, ...]:
    """Up to ``k`` keywords of ``text``, most frequent first, then earliest."""
    first: dict[str, int] = {}
    count: dict[str, int] = {}
    for pos, token in enumerate(_analyzer()(text)):
        if token in _IGNORED:
            continue
        first.setdefault(token, pos)
        count[token] = count.get(token, 0) + 1
    ranked = sorted(count, key=lambda t: (-count[t], first[t]))
    return tuple(ranked[:k])
