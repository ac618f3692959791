"""Training settings: a typed config read from YAML, with CLI overrides on top.

``sft`` and ``lora`` are handed to ``trl.SFTConfig`` and ``peft.LoraConfig`` unchanged, so any
field those libraries know can be set without this module re-declaring it.
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ava.paths import bundled


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

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


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
) -> TrainConfig:
    """Build the config: YAML file, then ``--full`` adjustments, then flags (None = not given)."""
    if method not in ("lora", "full"):
        raise ValueError(f"unknown training method {method!r}: use lora or full")
    path = Path(config_file) if config_file else default_config_path()
    with open(path, encoding="utf-8") as fh:
        raw = yaml.safe_load(fh) or {}
    sft = copy.deepcopy(raw.get("sft") or {})
    if method == "full":
        sft.update(raw.get("full_sft") or {})
    sft.update({k: v for k, v in (sft_overrides or {}).items() if v is not None})
    cfg = TrainConfig(
        model=model,
        data=str(data),
        out=str(out),
        method=method,
        seed=int(raw.get("seed", 0)),
        limit=raw.get("limit"),
        mix_ratio=float(raw.get("mix_ratio", 0.1)),
        lora=copy.deepcopy(raw.get("lora") or {}) if method == "lora" else {},
        sft=sft,
    )
    for key, value in (overrides or {}).items():
        if value is not None:
            setattr(cfg, key, value)
    if not 0.0 <= cfg.mix_ratio < 1.0:
        raise ValueError(f"--mix-ratio must be in [0, 1), got {cfg.mix_ratio}")
    return cfg


def parse_assignments(items: list[str]) -> dict[str, Any]:
    """``key=value`` strings (values read as YAML scalars) for ``--sft-arg``."""
    result: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"--sft-arg {item!r}: expected key=value, e.g. --sft-arg lr_scheduler_type=linear")
        parsed = yaml.safe_load(value)
        if isinstance(parsed, bool) and value.strip().lower() not in ("true", "false"):
            parsed = value.strip()  # YAML 1.1 reads "no"/"on" as booleans; save_strategy=no means "no"
        result[key.strip()] = parsed
    return result
