"""Devices and dtypes: which device, which dtype it can run, and whether a model's weights fit.

Checked before any weights are read, so a dtype the device cannot run or a model too large for
its memory fails in a second with what to pass instead, not after minutes of loading.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from ava.models.errors import ModelError

DTYPE_CHOICES = ("auto", "bf16", "fp16", "fp32")
# accelerate's placement strategies (from_pretrained's device_map strings).
DEVICE_MAP_CHOICES = ("auto", "balanced", "balanced_low_0", "sequential")
_DTYPE_ALIASES = {"bfloat16": "bf16", "float16": "fp16", "half": "fp16", "float32": "fp32", "float": "fp32"}


def dtype_name(dtype: Any) -> str:
    """``torch.bfloat16`` -> "bf16" (and "auto", "float16", ... normalised)."""
    text = str(dtype).removeprefix("torch.").lower()
    return _DTYPE_ALIASES.get(text, text)


def default_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def _gpu_label(device: str) -> str:
    import torch

    major, minor = torch.cuda.get_device_capability(device)
    return f"{torch.cuda.get_device_name(device)} (compute capability {major}.{minor})"


def _cuda_bf16_ok(device: str) -> bool:
    """Native bf16 (Ampere and later): emulated bf16 runs but is slow and not what users ask for."""
    import torch

    return torch.cuda.get_device_capability(device) >= (8, 0)


@cache
def _cpu_runs(dtype_key: str) -> bool:
    """Whether this CPU build of torch runs a transformer's kernels in ``dtype_key``."""
    import torch

    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}[dtype_key]
    try:
        x = torch.ones(4, 8, dtype=dtype)
        y = torch.nn.functional.silu(x @ x.T).softmax(-1)
        torch.nn.functional.rms_norm(y, (4,))
        return True
    except (RuntimeError, NotImplementedError):
        return False


def resolve_dtype(dtype: Any, device: str) -> Any:
    """The torch dtype for ``--dtype`` on ``device``, or an error saying which one to pass.

    ``auto``: bf16 on GPUs that have it natively, else fp16; fp32 on CPU (the reference).
    """
    import torch

    name = dtype_name(dtype) if dtype is not None else "auto"
    if name not in DTYPE_CHOICES:
        raise ModelError(f"unknown dtype {dtype!r}: pass --dtype auto, bf16, fp16 or fp32")
    cuda = device.startswith("cuda")
    if name == "auto":
        name = ("bf16" if _cuda_bf16_ok(device) else "fp16") if cuda else "fp32"
    if cuda and name == "bf16" and not _cuda_bf16_ok(device):
        raise ModelError(f"{_gpu_label(device)} has no native bf16: pass --dtype fp16 (or fp32)")
    if not cuda and name != "fp32" and not _cpu_runs(name):
        raise ModelError(f"this CPU build of torch cannot run {name}: pass --dtype fp32")
    return {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}[name]


def check_device(device: str) -> None:
    import torch

    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ModelError(f"device {device!r} asked for, but no CUDA device is visible here: use cpu")


def parameter_count(source: str, revision: str | None = None) -> int:
    """Parameters of a model, from its config alone (instantiated on the meta device: no memory)."""
    from accelerate import init_empty_weights
    from transformers import AutoConfig, AutoModelForCausalLM

    config = AutoConfig.from_pretrained(source, revision=revision)
    with init_empty_weights():
        model = AutoModelForCausalLM.from_config(config)
    model.tie_weights()  # from_config leaves tied embeddings as two tensors until weights load
    return sum(p.numel() for p in model.parameters())  # a tied weight is one Parameter: counted once


def free_bytes(device: str) -> int | None:
    """Memory free for weights on ``device`` (None: unknown, no check)."""
    import torch

    if device.startswith("cuda"):
        return int(torch.cuda.mem_get_info(torch.device(device))[0])
    if device == "cpu":
        try:
            import psutil
        except ImportError:
            return None
        return int(psutil.virtual_memory().available)
    return None


def check_fits(name: str, source: str, revision: str | None, dtype: Any, device: str) -> None:
    """Refuse, before reading any weights, a model whose weights alone exceed the device's free memory."""
    free = free_bytes(device)
    if free is None:
        return
    try:
        need = parameter_count(source, revision) * dtype.itemsize
    except Exception:  # an architecture transformers cannot build from its config alone: no estimate
        return
    if need <= free:
        return
    what = f"{name!r} needs {_size(need)} for its weights in {dtype_name(dtype)}"
    if device.startswith("cuda"):
        raise ModelError(
            f"{what} but {device} has {_size(free)} free: pass --device-map auto "
            "(spreads it over all GPUs, then CPU memory) or a smaller --dtype"
        )
    smaller = " or pass --dtype bf16" if dtype.itemsize > 2 else ""
    raise ModelError(f"{what} but this machine has {_size(free)} available: use a larger machine{smaller}")


def _size(n: int) -> str:
    return f"{n / 2**30:.1f} GiB" if n >= 2**30 else f"{n / 2**20:.1f} MiB"


