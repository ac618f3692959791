"""Embeddings for pair mining and KeyBERT: ONNX = torch on real ads, pure vectors, the cross-build cache."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from ava.ads.keywords import STOP_WORDS, frequency_keywords, keybert_keywords
from ava.instructions.embed import EmbeddingCache, OnnxEmbedder, TorchEmbedder, embed_cached
from ava.instructions.pairs import text_key
from ava.models.encoders import minilm_path
from conftest import shared_path


@pytest.fixture(scope="module")
def bodies() -> list[str]:
    """Distinct real bodies of the US file, the long ones included (truncated at 128 word pieces)."""
    import json

    from ava.ads.signals import clean_text

    path = shared_path("ads", "us-political-2020-sample.jsonl")
    texts = {clean_text((json.loads(line).get("ad_creative_bodies") or [""])[0]) for line in path.open()}
    return sorted(t for t in texts if t)[:60]


@pytest.fixture(scope="module")
def cache_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("ava-cache")
    old = os.environ.get("AVA_CACHE")
    os.environ["AVA_CACHE"] = str(root)  # the ONNX export and vector cache of these tests only
    yield root
    if old is None:
        os.environ.pop("AVA_CACHE")
    else:
        os.environ["AVA_CACHE"] = old


@pytest.mark.slow
def test_onnx_matches_sentence_transformers_on_real_bodies(bodies, cache_root):
    reference = TorchEmbedder()(bodies)
    onnx = OnnxEmbedder()(bodies)
    assert onnx.shape == (len(bodies), 384) and np.allclose(np.linalg.norm(onnx, axis=1), 1, atol=1e-6)
    assert np.abs(onnx @ onnx.T - reference @ reference.T).max() < 1e-5  # cosines: what pair mining reads


@pytest.mark.slow
def test_onnx_vectors_do_not_depend_on_the_batch(bodies, cache_root):
    """Equal-length batches: a text's bytes are the same alone, in any batch, with any thread count."""
    alone = OnnxEmbedder(batch_size=1)(bodies)
    assert np.array_equal(OnnxEmbedder(batch_size=64)(bodies), alone)
    assert np.array_equal(OnnxEmbedder(batch_size=5)(bodies[::-1])[::-1], alone)
    assert np.array_equal(OnnxEmbedder(batch_tokens=1 << 30)(bodies), alone)  # no word-piece budget
    padded = OnnxEmbedder(batch_size=64, pad=True)(bodies)
    assert not OnnxEmbedder(pad=True).pure and np.abs(padded - alone).max() < 1e-5


def test_equal_length_batches_keep_to_the_word_piece_budget():
    lengths = [128] * 10 + [40] * 30 + [3] * 100
    batches = OnnxEmbedder(batch_tokens=512)._batches(list(range(len(lengths))), lengths)
    assert [len(b) for b in batches] == [4, 4, 2, 12, 12, 6, 64, 36]
    assert all(len({lengths[i] for i in b}) == 1 for b in batches)
    assert [len(b) for b in OnnxEmbedder(batch_tokens=100)._batches([0, 1], [128, 128])] == [1, 1]  # one at least


@pytest.mark.slow
def test_cache_returns_the_computed_bytes_and_is_keyed_by_identity(bodies, cache_root):
    emb = OnnxEmbedder()
    texts = {text_key(t): t for t in bodies}
    cold, computed = embed_cached(emb, texts)
    assert computed == len(texts)
    warm, computed = embed_cached(emb, dict(list(texts.items())[:10]) | texts)
    assert computed == 0 and all(np.array_equal(cold[k], warm[k]) for k in texts)
    assert Path(EmbeddingCache(emb.identity).path).parent == cache_root / "embeddings"
    other = OnnxEmbedder(max_tokens=64)
    assert other.identity != emb.identity and embed_cached(other, texts)[1] == len(texts)
    _, computed = embed_cached(TorchEmbedder(), texts)  # padded batches: never cached
    assert computed == len(texts)


@pytest.mark.slow
def test_keybert_keywords_are_keyberts_own_on_real_ads(bodies, cache_root):
    """Our KeyBERT (body vectors reused, word vectors from the cache) = KeyBERT's own pipeline with the
    bundled MiniLM (sentence-transformers, 128 word pieces) on the same texts."""
    from keybert import KeyBERT
    from sentence_transformers import SentenceTransformer

    emb = OnnxEmbedder()

    def words(ws: list[str]) -> np.ndarray:
        found, _ = embed_cached(emb, {text_key(w): w for w in ws})
        return np.stack([found[text_key(w)] for w in ws])

    ours = keybert_keywords(bodies, emb(bodies), words)
    st = SentenceTransformer(minilm_path(), device="cpu")
    st.max_seq_length = 128
    theirs = [tuple(w for w, _ in kws) for kws in KeyBERT(model=st).extract_keywords(bodies, stop_words=STOP_WORDS)]
    assert ours == theirs
    assert all(0 < len(k) <= 5 for k in ours) and all("url" not in k for k in ours)
    assert keybert_keywords(["the and of"], emb(["the and of"]), words) == [()]  # only stop words


def test_frequency_keywords():
    assert frequency_keywords("Pizza pizza deals; fresh pizza and fresh deals at [URL]") == (
        "pizza", "deals", "fresh")
