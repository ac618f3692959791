"""Training settings: the bundled YAML recipe, then ``--full``, then flags or ``--sft-arg``.

``sft`` and ``lora`` are handed to ``trl.SFTConfig`` and ``peft.LoraConfig`` unchanged, so any
field those libraries know can be set without this module re-declaring it; every key is checked
against their fields (an unknown key is refused with the close matches) and every value against
the field's type before a model is loaded. A flag and ``--sft-arg`` naming the same field is
refused: which one should win is a guess this module does not make.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import enum
import types
import typing
from dataclasses import asdict, dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from ava.paths import bundled

# SFTConfig field -> the ava flag that sets it (a flag and --sft-arg for one field are refused).
FLAGS = {
    "max_steps": "--max-steps",
    "num_train_epochs": "--epochs",
    "learning_rate": "--lr",
    "per_device_train_batch_size": "--batch-size",
    "max_length": "--max-length",
    "save_steps": "--save-steps",
    "report_to": "--report-to",
}
# Fields ava sets itself, and why.
MANAGED = {
    "output_dir": "pass --out",
    "seed": "pass --seed",
    "data_seed": "pass --seed",
    "logging_nan_inf_filter": "ava keeps it off so that a NaN or infinite loss stops the run",
}
TOP_KEYS = ("version", "seed", "mix_ratio", "limit", "lora", "sft", "full_sft")
# Settings that change what is logged, not the weights: a resumed run may change them.
NOT_BINDING = ("report_to", "logging_steps", "logging_first_step", "logging_strategy", "disable_tqdm",
               "run_name", "save_total_limit")
REPORTERS = ("none", "tensorboard", "wandb")


class ConfigError(ValueError):
    """A setting that cannot be used; the message names where it came from and what to pass."""


@dataclass
class TrainConfig:
    """Everything that changes the trained weights (and so goes into the training card)."""

    model: str
    data: str
    out: str
    method: str = "lora"  # "lora" or "full"
    seed: int = 0
    limit: int | None = None
    mix: str | None = None
    mix_ratio: float = 0.1
    lora: dict[str, Any] = field(default_factory=dict)
    sft: dict[str, Any] = field(default_factory=dict)
    # Where each sft value came from (recipe file, --full, a flag, --sft-arg): printed and carded.
    sources: dict[str, str] = field(default_factory=dict)
    # How the base model is loaded (ava.models.options): commit, branch or tag of a hub id; the
    # weights' dtype ("auto": bf16 on GPUs that have it, else fp32); accelerate's device map.
    revision: str | None = None
    dtype: str = "auto"
    device_map: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def binding(self) -> dict[str, Any]:
        """The settings a resumed run must share with the run it continues.

        Not here: the model, revision and dtype (bound as the model identity: the resolved commit
        and the loaded dtype), the data and mix file (bound by their hashes, wherever they lie), the
        output folder itself, where the weights are placed (``device_map``) and logging settings.
        """
        found = asdict(self)
        for key in ("sources", "model", "revision", "dtype", "device_map", "data", "mix", "out"):
            found.pop(key)
        found["sft"] = {k: v for k, v in self.sft.items() if k not in NOT_BINDING}
        return found


def default_config_path() -> Path:
    return bundled("training", "default.yaml")


def load_config(
    model: str,
    data: str | Path,
    out: str | Path,
    config_file: str | Path | None = None,
    method: str = "lora",
    overrides: dict[str, Any] | None = None,
    sft_overrides: dict[str, Any] | None = None,
    sft_args: list[str] | None = None,
) -> TrainConfig:
    """Build the config: YAML file, then ``--full``, then flags/``sft_overrides`` and ``--sft-arg``.

    ``None`` in ``overrides``/``sft_overrides`` means "not given". ``sft_args`` are raw
    ``key=value`` strings; one naming a field that a flag also set is refused.
    """
    if method not in ("lora", "full"):
        raise ConfigError(f"unknown training method {method!r}: use lora or full")
    path = Path(config_file) if config_file else default_config_path()
    raw = _read_recipe(path)
    sft, sources = {}, {}
    for section in ("sft", "full_sft") if method == "full" else ("sft",):
        for key, value in (raw.get(section) or {}).items():
            sft[key] = check_sft_value(key, value, f"{path}: {section}.{key}")
            sources[key] = f"{path.name}:{section}"
    given = {k: v for k, v in (sft_overrides or {}).items() if v is not None}
    for key, value in given.items():
        sft[key] = check_sft_value(key, value, FLAGS.get(key, f"setting {key}"))
        sources[key] = FLAGS.get(key, "code")
    for key, value in parse_assignments(sft_args or []).items():
        if key in given:
            raise ConfigError(
                f"--sft-arg {key}={value!r} and {FLAGS.get(key, key)} {given[key]!r} both set {key}; pass only one"
            )
        sft[key] = check_sft_value(key, value, f"--sft-arg {key}")
        sources[key] = "--sft-arg"
    cfg = TrainConfig(
        model=model, data=str(data), out=str(out), method=method,
        seed=_typed(raw.get("seed", 0), int, f"{path}: seed"),
        limit=raw.get("limit"),
        mix_ratio=float(_typed(raw.get("mix_ratio", 0.1), float, f"{path}: mix_ratio")),
        lora=_lora(raw.get("lora") or {}, path) if method == "lora" else {},
        sft=sft, sources=dict(sorted(sources.items())),
    )
    for key, value in (overrides or {}).items():
        if value is not None:
            setattr(cfg, key, value)
    if not 0.0 <= cfg.mix_ratio < 1.0:
        raise ConfigError(f"--mix-ratio must be in [0, 1), got {cfg.mix_ratio}")
    if cfg.limit is not None and (not isinstance(cfg.limit, int) or cfg.limit < 1):
        raise ConfigError(f"--limit must be a positive number of samples, got {cfg.limit!r}")
    return cfg


def _read_recipe(path: Path) -> dict[str, Any]:
    from ava.io import UnreadableYaml, read_yaml

    try:
        raw = read_yaml(path) or {}
    except UnreadableYaml as exc:
        raise ConfigError(str(exc)) from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping with keys {', '.join(TOP_KEYS)}")
    for key, value in raw.items():
        if key not in TOP_KEYS:
            raise ConfigError(f"{path}: unknown key {key!r}{_close(str(key), TOP_KEYS)}")
        if key in ("lora", "sft", "full_sft") and not isinstance(value, dict | None):
            raise ConfigError(f"{path}: {key} must be a mapping of settings, got {type(value).__name__}")
    return raw


def _lora(section: dict[str, Any], path: Path) -> dict[str, Any]:
    from peft import LoraConfig

    known = [f.name for f in dataclasses.fields(LoraConfig) if f.init]
    for key in section:
        if key not in known:
            raise ConfigError(f"{path}: lora.{key} is not a peft.LoraConfig field{_close(key, known)}")
    return copy.deepcopy(section)


@cache
def sft_fields() -> dict[str, Any]:
    """``trl.SFTConfig``'s settable fields and their types."""
    from trl import SFTConfig

    hints = typing.get_type_hints(SFTConfig)
    return {f.name: hints.get(f.name, Any) for f in dataclasses.fields(SFTConfig) if f.init}


def check_sft_value(key: str, value: Any, where: str) -> Any:
    """The value for an ``SFTConfig`` field, coerced to its type, or a ConfigError naming ``where``."""
    if key in MANAGED:
        raise ConfigError(f"{where}: {key} is set by ava ({MANAGED[key]})")
    fields = sft_fields()
    if key not in fields:
        raise ConfigError(f"{where}: {key!r} is not a trl.SFTConfig field{_close(key, list(fields))}")
    if key == "report_to" and value not in REPORTERS:
        raise ConfigError(f"{where}: report_to={value!r}: use one of {', '.join(REPORTERS)}")
    return _typed(value, fields[key], f"{where}={value!r}")


def _typed(value: Any, hint: Any, where: str) -> Any:
    """``value`` checked against a type hint; numbers given as text ("1e-3") are converted."""
    options = typing.get_args(hint) if typing.get_origin(hint) in (typing.Union, types.UnionType) else (hint,)
    for option in options:
        ok, converted = _fits(value, option)
        if ok:
            return converted
    names = " or ".join(getattr(o, "__name__", str(o)).replace("NoneType", "null") for o in options)
    raise ConfigError(f"{where}: expected {names}")


def _fits(value: Any, option: Any) -> tuple[bool, Any]:
    if option is Any or isinstance(option, typing.TypeVar):
        return True, value
    if option is type(None):
        return value is None, value
    if option is bool:
        return isinstance(value, bool), value
    if option in (int, float):
        if isinstance(value, bool):
            return False, value
        if isinstance(value, int | float) and (option is float or float(value).is_integer()):
            return True, option(value)
        if isinstance(value, str):
            try:
                number = float(value.strip())
            except ValueError:
                return False, value
            return (option is float or number.is_integer()), option(number)
        return False, value
    if option is str:
        return isinstance(value, str), value
    if isinstance(option, type) and issubclass(option, enum.Enum):
        return value in {m.value for m in option}, value
    origin = typing.get_origin(option)
    if origin in (list, dict, tuple):
        return isinstance(value, origin), value
    return True, value  # a type this check does not model: SFTConfig validates it


def _close(key: str, candidates: Any) -> str:
    matches = difflib.get_close_matches(key, list(candidates), n=3, cutoff=0.6)
    return f" (did you mean {', '.join(matches)}?)" if matches else ""


def parse_assignments(items: list[str]) -> dict[str, Any]:
    """``key=value`` strings (values read as YAML scalars) for ``--sft-arg``."""
    result: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--sft-arg {item!r}: expected key=value, e.g. --sft-arg lr_scheduler_type=linear")
        try:
            parsed = yaml.safe_load(value)
        except yaml.YAMLError:
            parsed = value.strip()  # not a YAML scalar: take the text as it is
        if isinstance(parsed, bool) and value.strip().lower() not in ("true", "false"):
            parsed = value.strip()  # YAML 1.1 reads "no"/"on" as booleans; save_strategy=no means "no"
        if key.strip() in result:
            raise ConfigError(f"--sft-arg {key.strip()} given twice; pass it once")
        result[key.strip()] = parsed
    return result
