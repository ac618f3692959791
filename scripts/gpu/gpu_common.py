"""Shared by the GPU check's sections (scripts/gpu-check.sh): results, time budgets, the card,
the carried files, and the randomly initialised model of Llama-2-7B's shape.

Every section writes what it has measured into ``$OUT/gpu-check.json`` as it goes (atomic
rewrite) and re-renders ``$OUT/gpu-check.md``, so a section that dies or runs out of time still
leaves the others' tables and its own partial one.
"""

from __future__ import annotations

import json
import os
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
OUT = Path(os.environ.get("OUT") or "/tmp/gpu-out")
RESULTS = OUT / "gpu-check.json"
CARRIED = REPO / ".gpu"  # made by scripts/gpu-prepare.sh; travels with `carry`
SHAPE = os.environ.get("GPU_CHECK_SHAPE", "7b")  # "small": the CPU dry run's few-layer model

# Llama-2-7B (hidden 4096, 32 layers, 32 heads, MLP 11008) and a few-layer stand-in for dry runs.
SHAPES: dict[str, dict[str, int]] = {
    "7b": {"hidden_size": 4096, "num_hidden_layers": 32, "num_attention_heads": 32,
           "num_key_value_heads": 32, "intermediate_size": 11008},
    "small": {"hidden_size": 256, "num_hidden_layers": 2, "num_attention_heads": 4,
              "num_key_value_heads": 4, "intermediate_size": 688},
}
# Dense bf16 tensor-core peaks from NVIDIA's data sheets (TFLOP/s, no sparsity), by name fragment.
PEAK_BF16_TFLOPS = (("H200", 989.4), ("H100 PCIe", 756.0), ("H100 NVL", 835.0), ("H100", 989.4),
                    ("A100", 312.0), ("L40S", 362.1), ("L4", 121.0), ("A10G", 70.0))

sys.path[:0] = [str(REPO / "src"), str(REPO / "perf")]  # the package and perf/scoring.py (not installed there)


def device() -> str:
    """cuda, or cpu for the small dry run; a full-shape run without CUDA is refused."""
    import torch

    if torch.cuda.is_available():
        return "cuda"
    if SHAPE == "small":
        return "cpu"
    raise SystemExit("no CUDA device: run the dry run with GPU_CHECK_SHAPE=small")


def sync() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()


class Budget:
    """Seconds a section may still spend (``$GPU_CHECK_<NAME>_S`` overrides the default)."""

    def __init__(self, name: str, default_s: float) -> None:
        self.total = float(os.environ.get(f"GPU_CHECK_{name.upper()}_S", default_s))
        self.start = time.monotonic()

    def left(self) -> float:
        return self.total - (time.monotonic() - self.start)


def update(section: str, values: dict[str, Any]) -> None:
    """Merge ``values`` into the section's entry of the results file and re-render the tables."""
    OUT.mkdir(parents=True, exist_ok=True)
    data = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    data.setdefault(section, {}).update(values)
    tmp = RESULTS.with_name(RESULTS.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True, default=str))
    os.replace(tmp, RESULTS)
    from gpu_report import render  # the sibling module (scripts/gpu is sys.path[0])

    render(data, OUT / "gpu-check.md")


@contextmanager
def step(section: str, name: str):
    """Run one part of a section; a failure is recorded under ``errors`` and does not stop the rest."""
    try:
        yield
    except Exception as exc:  # any failure: the point is to keep going and say what broke
        import traceback

        traceback.print_exc()
        data = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
        errors = data.get(section, {}).get("errors", {})
        errors[name] = f"{exc.__class__.__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"
        update(section, {"errors": errors})


def card() -> dict[str, Any]:
    """The device, its bf16 peak (data sheet) and the library versions."""
    import torch
    import transformers

    info: dict[str, Any] = {"torch": torch.__version__, "transformers": transformers.__version__,
                            "python": sys.version.split()[0]}
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        info.update(name=props.name, capability=f"{props.major}.{props.minor}", cuda=torch.version.cuda,
                    memory_gib=round(props.total_memory / 2**30, 1), sms=props.multi_processor_count)
        info["peak_bf16_tflops"] = next((peak for key, peak in PEAK_BF16_TFLOPS if key in props.name), None)
    else:
        info.update(name=f"CPU ({os.cpu_count()} cores; dry run)", peak_bf16_tflops=None)
    return info


def measured_matmul_tflops() -> float | None:
    """bf16 8192^3 matrix products on random data (10 after 3 warm-ups): the card's usable peak."""
    import torch

    if not torch.cuda.is_available():
        return None
    n = 8192
    a, b = (torch.randn(n, n, device="cuda", dtype=torch.bfloat16) for _ in range(2))
    for _ in range(3):
        a @ b
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(10):
        a @ b
    end.record()
    torch.cuda.synchronize()
    return round(2 * n**3 * 10 / (start.elapsed_time(end) / 1e3) / 1e12, 1)


def tokenizer_dir() -> tuple[Path, str]:
    """The tokenizer for the timed model and what it is.

    Default: the ``tiny`` built-in's tokenizer, a 32000-token SentencePiece vocabulary that
    encodes like Llama-2's (``GPU_CHECK_TOKENIZER=smollm2``: SmolLM2's 49152-token BPE one).
    Carried under .gpu/ (scripts/gpu-prepare.sh); here, read from the converted model cache.
    """
    which = os.environ.get("GPU_CHECK_TOKENIZER", "tiny")
    carried = CARRIED / ("tiny" if which == "tiny" else f"{which}-tokenizer")
    if carried.exists():
        folder = carried
    else:
        from ava.models.loading import resolve_model, weights_dir

        folder = Path(weights_dir(resolve_model(which)))
    label = {"tiny": "Llama-2-compatible SentencePiece (from the tiny built-in)",
             "smollm2": "SmolLM2 BPE"}.get(which, which)
    return folder, label


def tiny_dir() -> Path:
    """The ``tiny`` built-in model (real, trained weights) as a plain model folder."""
    carried = CARRIED / "tiny"
    if carried.exists():
        return carried
    from ava.models.loading import resolve_model, weights_dir

    return Path(weights_dir(resolve_model("tiny")))


def random_llama(vocab_size: int, tokenizer: Any, dev: str, dtype: Any, seed: int = 0) -> Any:
    """A randomly initialised Llama of ``SHAPE`` built directly on ``dev`` in ``dtype``.

    Timing and exactness need the shape, not trained weights, and nothing can be downloaded on
    the GPU machine; building on the device avoids a 13 GB host-to-device copy.
    """
    import torch
    from transformers import AutoModelForCausalLM, LlamaConfig

    config = LlamaConfig(
        **SHAPES[SHAPE], vocab_size=vocab_size, max_position_embeddings=4096, rms_norm_eps=1e-5,
        tie_word_embeddings=False, bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id,
    )
    torch.manual_seed(seed)
    with torch.device(dev):
        model = AutoModelForCausalLM.from_config(config, dtype=dtype)
    return model.eval()


def block_parameters(model: Any) -> int:
    """Parameters of the transformer blocks (what every forwarded token multiplies through)."""
    return sum(p.numel() for p in model.model.layers.parameters())


def head_parameters(model: Any) -> int:
    return model.lm_head.weight.numel()


class ForwardCounter:
    """What a model's forward passes compute, read from their inputs (so it counts any caller:
    the engine, the naive scorer, lm-eval): padded and real tokens, and logit positions."""

    def __init__(self, model: Any) -> None:
        self.handle = model.register_forward_pre_hook(self._pre, with_kwargs=True)
        self.reset()

    def reset(self) -> None:
        self.calls = self.computed = self.logits = 0
        self._real: list[Any] = []

    def _pre(self, module: Any, args: tuple, kwargs: dict) -> None:
        ids = kwargs.get("input_ids", args[0] if args else None)
        rows, width = ids.shape
        mask = kwargs.get("attention_mask")
        self.calls += 1
        self.computed += rows * width
        self._real.append(mask[:, -width:].sum() if mask is not None else rows * width)  # no sync here
        keep = kwargs.get("logits_to_keep") or 0
        self.logits += rows * (keep if isinstance(keep, int) and keep > 0 else width)

    def real(self) -> int:
        return int(sum(int(x) for x in self._real))

    def flops(self, blocks: int, head: int) -> float:
        """2 x block parameters per computed token + 2 x head parameters per logit position
        (attention's own score/value products are left out: small at these lengths)."""
        return 2.0 * blocks * self.computed + 2.0 * head * self.logits
