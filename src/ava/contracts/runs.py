"""The run record: one notion of "finished" for every output a command writes.

An evaluation run, an ``ava score`` file, an instruction build and a survey build each keep
one :class:`RunRecord` beside what they write (``run.json`` inside an output folder,
``<file>.run.json`` beside an output file). It is written first as ``running`` and last as
``complete``; an interruption leaves ``interrupted``, an error ``failed`` with its reason.
Whether an output is finished is read from it and from nothing else
(:func:`ava.runs.is_complete`).

The :class:`Binding` says what produced the output; a rerun whose binding differs is refused
with one line naming what differs (``ava.runs.start_run``). What is recorded but not bound
(the model's name, the command line, per-task details) goes in ``info``.

``RUN_SCHEMA_VERSION`` changes whenever a field changes meaning or disappears.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

RUN_SCHEMA_VERSION = "1"


class RunStatus(StrEnum):
    RUNNING = "running"
    INTERRUPTED = "interrupted"
    FAILED = "failed"
    COMPLETE = "complete"


class RecordError(ValueError):
    """A run record that cannot be read (not JSON, not an object, a field of the wrong type)."""


@dataclass(frozen=True, slots=True)
class Binding:
    """What an output is bound to: a rerun must match it or start over (``--restart``).

    ``model``: the model identity ("" when no model is involved, e.g. a data build);
    ``inputs``: a hash of the inputs ("" when every result is keyed by its own input, as in an
    evaluation's score cache); ``options``: the options that change results, name -> value.
    """

    model: str = ""
    inputs: str = ""
    options: Mapping[str, Any] = field(default_factory=dict)

    def differences(self, new: Binding) -> list[str]:
        """What differs from ``new``, as short phrases ("model: a -> b"); empty when it matches."""
        out = []
        if self.model != new.model:
            out.append(f"model: {self.model or '-'} -> {new.model or '-'}")
        if self.inputs != new.inputs:
            out.append(f"inputs: hash {self.inputs or '-'} -> {new.inputs or '-'}")
        out += [f"option {key}: {old!r} -> {now!r}" for key, old, now in _changed(self.options, new.options)]
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "inputs": self.inputs, "options": dict(self.options)}


def _changed(old: Mapping[str, Any], new: Mapping[str, Any], prefix: str = "") -> list[tuple[str, Any, Any]]:
    """(key, old, new) for every differing option; nested mappings name the inner key ("pair.seed")."""
    out = []
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key), new.get(key)
        if isinstance(a, Mapping) and isinstance(b, Mapping):
            out += _changed(a, b, f"{prefix}{key}.")
        elif a != b:
            out.append((f"{prefix}{key}", a, b))
    return out


@dataclass(frozen=True, slots=True)
class RunRecord:
    """``run.json``: what kind of output this is, how far it got, and what produced it."""

    kind: str
    status: RunStatus
    binding: Binding
    started_at: str
    updated_at: str
    reason: str | None = None
    info: Mapping[str, Any] = field(default_factory=dict)
    schema_version: str = RUN_SCHEMA_VERSION

    @property
    def complete(self) -> bool:
        return self.status is RunStatus.COMPLETE

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": self.schema_version,
            "kind": self.kind,
            "status": str(self.status),
            "binding": self.binding.to_dict(),
            "started_at": self.started_at,
            "updated_at": self.updated_at,
            "reason": self.reason,
            "info": dict(self.info),
        }

    @classmethod
    def from_dict(cls, obj: Any) -> RunRecord:
        """Validate a parsed ``run.json``; :class:`RecordError` names the first bad field."""
        if not isinstance(obj, dict):
            raise RecordError(f"a run record is a JSON object, not {type(obj).__name__}")
        if _is_eval_manifest_1_0(obj):
            return cls._from_eval_manifest_1_0(obj)
        version = obj.get("schema_version")
        if version != RUN_SCHEMA_VERSION or "binding" not in obj:
            raise RecordError(f"run record schema {version!r} (written by another ava version), "
                              f"this ava reads {RUN_SCHEMA_VERSION!r}")
        try:
            status = RunStatus(obj.get("status"))
        except ValueError:
            raise RecordError(f"status {obj.get('status')!r} is not one of {', '.join(RunStatus)}") from None
        binding = obj["binding"]
        if not isinstance(binding, dict) or not isinstance(binding.get("options", {}), dict):
            raise RecordError("binding must be an object with model, inputs and options")
        for name in ("kind", "started_at", "updated_at"):
            if not isinstance(obj.get(name), str):
                raise RecordError(f"{name} must be a string")
        info = obj.get("info") or {}
        if not isinstance(info, dict):
            raise RecordError("info must be an object")
        return cls(
            kind=obj["kind"],
            status=status,
            binding=Binding(str(binding.get("model", "")), str(binding.get("inputs", "")),
                            dict(binding.get("options", {}))),
            started_at=obj["started_at"],
            updated_at=obj["updated_at"],
            reason=obj.get("reason"),
            info=info,
            schema_version=version,
        )

    @classmethod
    def _from_eval_manifest_1_0(cls, obj: dict[str, Any]) -> RunRecord:
        """An ``ava eval`` run directory written before run records (``RunManifest``, results schema
        1.0): its score cache is keyed exactly as now, so it resumes; read for one release."""
        status = obj["status"] if obj["status"] in ("running", "interrupted", "complete") else "interrupted"
        return cls(
            kind="eval",
            status=RunStatus(status),
            binding=Binding(model=obj["identity"]),
            started_at=str(obj.get("updated_at", "")),
            updated_at=str(obj.get("updated_at", "")),
            reason="written by an older ava (run.json schema 1.0)",
            info={k: obj.get(k) for k in ("model", "adapter", "backend", "tasks")},
            schema_version="1.0",
        )


def _is_eval_manifest_1_0(obj: dict[str, Any]) -> bool:
    return (obj.get("schema_version") == "1.0" and "binding" not in obj and isinstance(obj.get("identity"), str)
            and isinstance(obj.get("status"), str))
