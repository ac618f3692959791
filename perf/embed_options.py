"""Embedding options for pair mining, on the real ads: speed and how far each moves the pairs.

    PYTHONPATH=src .venv/bin/python perf/embed_options.py            # ~4 minutes on 2 cores

Embeds every distinct body of ``../shared/data/ads`` (first 128 word pieces, one thread: what one
build worker gets) with each option, then mines TS/TC body pairs within brands exactly as the build
does and compares the pair sets with the reference (today's: sentence-transformers on torch,
batches of 64). Printed: texts/s (wall, and per CPU second, which a busy machine moves less),
the largest cosine drift, and the body pairs gained and lost. Then the keyword extractors'
cost per text (KeyBERT reusing the body vectors, and the frequency ranking).
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")  # a build worker's budget on 2 cores with 2 workers

import numpy as np  # noqa: E402
import torch  # noqa: E402

from ava.ads.keywords import frequency_keywords, keybert_keywords  # noqa: E402
from ava.ads.normalise import BadRecord, normalise  # noqa: E402
from ava.ads.readers import discover, iter_raw  # noqa: E402
from ava.ads.signals import compute_signals  # noqa: E402
from ava.instructions.embed import EmbeddingCache, OnnxEmbedder, TorchEmbedder, embed_cached, onnx_model  # noqa: E402
from ava.instructions.pairs import PairConfig, similar_body_pairs, text_key  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DEFAULT = "onnx fp32, equal-length batches of <= 64 texts and <= 512 word pieces, no padding (default)"


def real_bodies(folder: Path) -> tuple[dict[str, str], dict[str, list[str]]]:
    """Distinct bodies (key -> text) and each brand's distinct body keys."""
    texts: dict[str, str] = {}
    brands: dict[str, set[str]] = defaultdict(set)
    for inp in discover([folder]):
        for raw in iter_raw(inp):
            if raw.error:
                continue
            try:
                ad = compute_signals(normalise(raw.data, raw.source))
            except BadRecord:
                continue
            if ad.signals.text:
                k = text_key(ad.signals.text)
                texts[k] = ad.signals.text
                brands[ad.record.advertiser].add(k)
    return texts, {b: sorted(v) for b, v in brands.items()}


def body_pairs(brands: dict[str, list[str]], texts: dict[str, str], vecs: dict[str, np.ndarray]) -> set:
    cfg = PairConfig()
    found: set[tuple[str, str]] = set()
    for keys in brands.values():
        if len(keys) > 1:
            tokens = {k: texts[k].lower().split() for k in keys}
            found.update(similar_body_pairs(keys, np.stack([vecs[k] for k in keys]), tokens, cfg, Counter()))
    return found


class QuantisedVariant(OnnxEmbedder):
    """ORT dynamic int8 with other settings than the opt-in ``onnx-int8`` (tried to shrink its drift)."""

    def __init__(self, per_channel: bool, ffn_out: bool = True) -> None:
        super().__init__()
        self.per_channel, self.ffn_out = per_channel, ffn_out

    @property
    def session(self):  # noqa: ANN201
        if not hasattr(self, "_session"):
            import onnx
            import onnxruntime as ort
            from onnxruntime.quantization import QuantType, quantize_dynamic

            fp32 = onnx_model()
            skip = [] if self.ffn_out else [n.name for n in onnx.load(str(fp32)).graph.node
                                            if n.op_type == "MatMul" and "/output/dense/" in n.name
                                            and "attention" not in n.name]
            path = Path(os.environ["AVA_CACHE"]) / f"variant-{self.per_channel}-{self.ffn_out}.onnx"
            quantize_dynamic(str(fp32), str(path), weight_type=QuantType.QInt8, per_channel=self.per_channel,
                             nodes_to_exclude=skip)
            options = ort.SessionOptions()
            options.intra_op_num_threads, options.log_severity_level = 1, 3
            self._session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        return self._session


class Bf16Embedder(TorchEmbedder):
    """The transformer under torch's CPU bf16 autocast (AVX-512 BF16 here), mean-pooled as the others."""

    def __call__(self, texts: list[str]) -> np.ndarray:
        model = self.model
        out = np.zeros((len(texts), 384), dtype=np.float32)
        for row, text in enumerate(texts):
            with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
                vec = model.encode([text], convert_to_tensor=True, show_progress_bar=False)[0].float()
            out[row] = (vec / vec.norm()).numpy()
        return out


def timed(fn, items):
    fn(items[:8])  # load the model / session first
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn(items)
    return out, time.perf_counter() - wall, time.process_time() - cpu


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ads", default=str(ROOT.parent / "shared" / "data" / "ads"))
    args = ap.parse_args()
    torch.set_num_threads(1)
    os.environ["AVA_CACHE"] = scratch = tempfile.mkdtemp(prefix="ava-embed-bench-")  # a cold cache
    texts, brands = real_bodies(Path(args.ads))
    keys = sorted(texts)
    items = [texts[k] for k in keys]
    start = time.perf_counter()
    OnnxEmbedder().session  # noqa: B018  (the one-off export of the bundled weights)
    export_s = time.perf_counter() - start
    options = {
        "torch, padded length-sorted batches of 64 (reference: 1.0)": TorchEmbedder(batch_size=64),
        "torch, one text per forward": TorchEmbedder(batch_size=1),
        "onnx fp32, padded length-sorted batches of 16": OnnxEmbedder(batch_size=16, pad=True),
        "onnx fp32, padded length-sorted batches of 64": OnnxEmbedder(batch_size=64, pad=True),
        "onnx fp32, one text per forward": OnnxEmbedder(batch_size=1),
        "onnx fp32, equal-length batches of 64 texts (the default before 2026-11-26)":
            OnnxEmbedder(batch_tokens=1 << 30),
        DEFAULT: OnnxEmbedder(),
        "onnx int8, equal-length batches of 64": OnnxEmbedder(quantized=True),
        "onnx int8 per channel (rejected)": QuantisedVariant(per_channel=True),
        "onnx int8 per channel, FFN output layers fp32 (rejected)": QuantisedVariant(per_channel=True, ffn_out=False),
        "torch bf16 autocast, one text per forward (rejected)": Bf16Embedder(),
    }
    results = {}
    for name, emb in options.items():
        vecs, wall, cpu = timed(emb, items)
        results[name] = (dict(zip(keys, vecs, strict=True)), wall, cpu)
    default = OnnxEmbedder()
    embed_cached(default, texts)  # fills the cache
    cached, wall, cpu = timed(lambda _items: embed_cached(default, texts)[0], items)
    results["onnx fp32, read from the embedding cache"] = (cached, wall, cpu)

    ref_name = next(iter(results))
    ref = results[ref_name][0]
    ref_pairs = body_pairs(brands, texts, ref)
    print(f"\n## Embedding options on the real ads ({len(items)} distinct bodies, {len(brands)} brands, "
          f"1 thread, load avg {os.getloadavg()[0]:.1f}; one-off ONNX export {export_s:.1f} s)\n")
    print(f"Reference body pairs (cos > 0.7, > 15 word edits): {len(ref_pairs)}\n")
    print("| option | texts/s | texts per CPU s | speed-up (CPU) | max cosine drift | pairs lost | pairs gained |")
    print("|---|---|---|---|---|---|---|")
    ref_cpu = results[ref_name][2]
    ref_matrix = np.stack([ref[k] for k in keys])
    for name, (vecs, wall, cpu) in results.items():
        matrix = np.stack([vecs[k] for k in keys])
        drift = float(np.abs(matrix @ matrix.T - ref_matrix @ ref_matrix.T).max())  # every pair's cosine
        pairs = body_pairs(brands, texts, vecs)
        print(f"| {name} | {len(items) / wall:.0f} | {len(items) / cpu:.0f} | {ref_cpu / cpu:.2f} | {drift:.1e} | "
              f"{len(ref_pairs - pairs)} | {len(pairs - ref_pairs)} |")
    keyword_costs(default, keys, items, results[DEFAULT][0])
    shutil.rmtree(scratch, ignore_errors=True)


def keyword_costs(default: OnnxEmbedder, keys: list[str], items: list[str], vectors: dict[str, np.ndarray]) -> None:
    """KeyBERT over the default body vectors (candidate words embedded through the cache) vs frequency."""
    doc = np.stack([vectors[k] for k in keys])
    computed = Counter()

    def embed_words(words: list[str]) -> np.ndarray:
        found, n = embed_cached(default, {text_key(w): w for w in words})
        computed["words"] += n
        return np.stack([found[text_key(w)] for w in words])

    rows = []
    for name in ("KeyBERT, word vectors computed", "KeyBERT, word vectors cached"):
        before = computed["words"]
        _kw, wall, cpu = timed(lambda t: keybert_keywords(t, doc[: len(t)], embed_words), items)
        rows.append((name, wall, cpu, computed["words"] - before))
    _kw, wall, cpu = timed(lambda t: [frequency_keywords(x) for x in t], items)
    rows.append(("frequency", wall, cpu, 0))
    print("\n| keywords | ms per text (wall) | ms per text (CPU) | words embedded |\n|---|---|---|---|")
    for name, wall, cpu, words in rows:
        print(f"| {name} | {1000 * wall / len(items):.2f} | {1000 * cpu / len(items):.2f} | {words} |")
    size = EmbeddingCache(default.identity).path.stat().st_size
    print(f"\nembedding cache: {size / 1e6:.1f} MB for {len(items)} bodies + {computed['words']} words")


if __name__ == "__main__":
    main()
