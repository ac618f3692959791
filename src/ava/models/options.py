"""The model-loading options every command shares: ``--dtype``, ``--device-map``, ``--revision``.

One definition, so ``ava score``, ``ava eval`` and ``ava train`` spell, explain and check them
alike. A command declares the options with the annotated types below and hands the values to
:class:`ModelOptions`, which validates them and loads::

    def score(model: str = typer.Option(...), adapter: str | None = ...,
              dtype: DTypeOption = "auto", device_map: DeviceMapOption = None,
              revision: RevisionOption = None, ...):
        opts = ModelOptions(model, adapter, dtype, device_map, revision)   # ModelError if bad
        scorer = opts.load_scorer(chat=chat, config=EngineConfig(...))
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Annotated, Any

import typer

from ava.models.devices import DEVICE_MAP_CHOICES, DTYPE_CHOICES, default_device, dtype_name, resolve_dtype
from ava.models.loading import ModelError, check_adapter_base, load_model, resolve_model

DTypeOption = Annotated[
    str,
    typer.Option(
        "--dtype",
        help="weights' dtype: auto (bf16 on GPUs that have it, else fp16; fp32 on CPU), bf16, fp16 or fp32",
    ),
]
DeviceMapOption = Annotated[
    str | None,
    typer.Option(
        "--device-map",
        help="auto: spread a model too large for one GPU over all GPUs, then CPU memory (accelerate)",
    ),
]
RevisionOption = Annotated[
    str | None,
    typer.Option("--revision", help="commit, branch or tag of a Hugging Face model id (default: main)"),
]


@dataclass(frozen=True)
class ModelOptions:
    """What to load and how; checked on creation so a bad flag fails before any work starts."""

    model: str
    adapter: str | None = None
    dtype: str = "auto"
    device_map: str | None = None
    revision: str | None = None

    def __post_init__(self) -> None:
        if dtype_name(self.dtype) not in DTYPE_CHOICES:
            raise ModelError(f"unknown --dtype {self.dtype!r}: pass {', '.join(DTYPE_CHOICES)}")
        if self.device_map is not None and self.device_map not in DEVICE_MAP_CHOICES:
            raise ModelError(f"unknown --device-map {self.device_map!r}: pass {', '.join(DEVICE_MAP_CHOICES)}")
        resolve_model(self.model, self.revision)  # names, folders and revision misuse: fail now
        if self.adapter:
            check_adapter_base(self.model, self.adapter, self.revision)  # trained on another base: fail now

    def load_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for :func:`~ava.models.loading.load_model` and ``load_scorer``."""
        kwargs = asdict(self)
        kwargs.pop("model")
        return kwargs

    def load_model(self, device: str | None = None) -> tuple[Any, Any]:
        """(model, tokenizer), as :func:`~ava.models.loading.load_model`."""
        return load_model(self.model, device=device, **self.load_kwargs())

    def load_scorer(self, chat: bool = False, config: Any = None, device: str | None = None) -> Any:
        """A :class:`~ava.models.scorer.Scorer`, as :func:`~ava.models.scorer.load_scorer`."""
        from ava.models.scorer import load_scorer

        return load_scorer(self.model, chat=chat, config=config, device=device, **self.load_kwargs())

    def identity(self, device: str | None = None, chat: bool = False) -> str:
        """The identity of the scorer :meth:`load_scorer` gives on ``device`` (its weights at the
        resolved revision, the dtype, the framing), without loading anything."""
        from ava.models.scorer import scorer_identity

        spec = resolve_model(self.model, self.revision)
        dtype = None if spec.kind == "uniform" else resolve_dtype(self.dtype, device or default_device())
        return scorer_identity(spec, self.adapter, dtype, chat)

    def to_config(self) -> dict[str, Any]:
        """What a run records of how it loads its model (``info`` of its run record)."""
        return asdict(self)
