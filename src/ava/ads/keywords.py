"""Keywords of an ad body, for the TAG prompts: KeyBERT (the method's extractor) or plain frequency.

``keybert`` (default): KeyBERT with the bundled all-MiniLM-L6-v2, as the method did: candidate words
from KeyBERT's default ``CountVectorizer`` (unigrams, English stop words, plus ``url``: the
``[URL]`` mask), ranked by cosine similarity to the body's embedding, top 5. The body vectors are
the ones pair mining already computed (no second pass over the bodies) and candidate words are
embedded once each through the same cache, so the cost is the vocabulary, not the ads. Every
vector is a pure function of its text (see ``ava.instructions.embed``), so an ad's keywords do not
depend on the other ads, the shard or the engine.

``frequency``: content words ranked by count in the ad, ties by first position (no model). Kept as
the cheap option: it needs no embeddings at all (measured in ``docs/dataset.md``).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache

import numpy as np
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS, CountVectorizer

N_KEYWORDS = 5
METHODS = ("keybert", "frequency")
_IGNORED = frozenset({"url"})  # the "[URL]" mask
STOP_WORDS = sorted(ENGLISH_STOP_WORDS | _IGNORED)


@lru_cache(maxsize=1)
def _analyzer():
    # Letters only, 3+ characters: drops numbers, emoji and "[URL]" debris.
    return CountVectorizer(
        stop_words="english", lowercase=True, token_pattern=r"(?u)\b[^\W\d_]{3,}\b"
    ).build_analyzer()


def frequency_keywords(text: str, k: int = N_KEYWORDS) -> tuple[str, ...]:
    """Up to ``k`` content words of ``text``, most frequent first, then earliest."""
    first: dict[str, int] = {}
    count: dict[str, int] = {}
    for pos, token in enumerate(_analyzer()(text)):
        if token in _IGNORED:
            continue
        first.setdefault(token, pos)
        count[token] = count.get(token, 0) + 1
    ranked = sorted(count, key=lambda t: (-count[t], first[t]))
    return tuple(ranked[:k])


def keybert_keywords(
    texts: list[str], doc_vectors: np.ndarray, embed_words: Callable[[list[str]], np.ndarray], k: int = N_KEYWORDS
) -> list[tuple[str, ...]]:
    """KeyBERT's top ``k`` words per text, given the texts' vectors and a word embedder."""
    from keybert import KeyBERT
    from keybert.backend import BaseEmbedder

    class Words(BaseEmbedder):
        """KeyBERT's model hook: only candidate words reach it (the documents' vectors are given)."""

        def embed(self, documents, verbose: bool = False) -> np.ndarray:  # noqa: ANN001
            return embed_words(list(documents))

    if not texts:
        return []
    found = KeyBERT(model=Words()).extract_keywords(texts, doc_embeddings=doc_vectors, top_n=k,
                                                    stop_words=STOP_WORDS)
    if not found:  # no candidate word in any text (KeyBERT returns one empty list)
        return [() for _ in texts]
    if len(texts) == 1:
        found = [found]
    return [tuple(word for word, _score in words) for words in found]
