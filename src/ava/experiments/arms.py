"""The arms of an experiment (``arms:`` in a recipe): what each one trains on, checked before anything runs.

An arm is ``name`` and ``kind``:

* ``reference``: a model evaluated with no training (the base, or ``model:`` another model);
* ``behaviour``: the build's AVA instruction pairs (what ``ava experiment run`` trains on without arms);
* ``shuffled-audience``: the same pairs with the audiences permuted within each subtask
  (:mod:`ava.experiments.shuffle`): same text, no behaviour signal;
* ``survey``, ``mixed``: survey supervision (SubPOP-style, :mod:`ava.experiments.survey_arm`), and
  behaviour + survey with ``ratio`` of the optimiser steps on survey data.

Every trained arm starts from the recipe's ``model.name`` with the same budget: the same optimiser
steps (or epochs), batch size, gradient accumulation, ``max_length`` and ``train.limit``. An arm may
override ``train.limit`` or ``train.sft`` (``arms[i].train``), but budgets that then differ are
refused unless ``allow_unequal_budget: true``: a control trained for fewer steps would make any
difference the budget's. A recipe without ``arms:`` (and without ``seeds:``) is today's experiment
(base + behaviour, one seed, the folder layout of docs/experiment.md).
"""

from __future__ import annotations

import copy
import difflib
from dataclasses import dataclass
from typing import Any

from ava.experiments.errors import RecipeError

KINDS = ("behaviour", "shuffled-audience", "survey", "mixed", "reference")
TRAINED = ("behaviour", "shuffled-audience", "survey", "mixed")
UNAVAILABLE: dict[str, str] = {}  # kinds a version ships without (refused in one line); none now
"""Kinds whose training this version does not have yet: refused with one line before anything runs."""
ARM_KEYS = ("name", "kind", "model", "ratio", "train")
BUDGET = ("max_steps", "num_train_epochs", "per_device_train_batch_size", "gradient_accumulation_steps",
          "max_length")
"""The ``SFTConfig`` fields that set how much an arm trains (with ``train.limit``)."""
DEFAULT_ARMS = [{"name": "base", "kind": "reference"}, {"name": "behaviour", "kind": "behaviour"}]


@dataclass(frozen=True)
class Arm:
    name: str
    kind: str
    model: str | None = None  # reference arms: another model than model.name
    ratio: float | None = None  # mixed: the share of survey examples
    limit: int | None = None  # train.limit (the recipe's, or the arm's own)
    sft: dict[str, Any] | None = None  # train.sft: the recipe's, with the arm's own on top

    @property
    def trained(self) -> bool:
        return self.kind in TRAINED

    def folder(self, seed: int | None) -> str:
        """The arm's folder name under ``arms/`` (one per seed for a trained arm)."""
        return self.name if seed is None else f"{self.name}-s{seed}"


def uses_arms(raw: dict[str, Any]) -> bool:
    """Arms mode: the recipe names arms or seeds (otherwise today's base vs tuned experiment)."""
    return raw.get("arms") is not None or raw.get("seeds") is not None


def check_arms(raw: dict[str, Any]) -> None:
    """Normalise ``raw["arms"]`` (each arm a mapping with every key) and ``raw["seeds"]``, refusing what
    no run could use: unknown keys or kinds (with close matches), a name twice, a seed twice, a ratio
    outside (0, 1), keys that do not fit the kind, unequal budgets."""
    seeds = raw.get("seeds")
    if seeds is not None:
        if not seeds:
            raise RecipeError("seeds: an empty list trains nothing; give at least one seed (e.g. [0, 1, 2])")
        seen: set[int] = set()
        for s in seeds:
            if s < 0:
                raise RecipeError(f"seeds: {s} is negative; a seed is an integer of 0 or more")
            if s in seen:
                raise RecipeError(f"seeds: {s} is listed twice ({seeds}); each seed trains each arm once")
            seen.add(s)
    if not uses_arms(raw):
        return
    arms = copy.deepcopy(raw["arms"]) if raw.get("arms") is not None else copy.deepcopy(DEFAULT_ARMS)
    names: set[str] = set()
    out = []
    for i, arm in enumerate(arms):
        where = f"arms[{i}]"
        if not isinstance(arm, dict):
            raise RecipeError(f"{where}: expected a mapping with name and kind, got {type(arm).__name__}")
        out.append(_check_arm(arm, where, raw))
        if out[-1]["name"] in names:
            raise RecipeError(f"{where}.name: {out[-1]['name']!r} is the name of another arm; give each arm its own")
        names.add(out[-1]["name"])
    if not any(a["kind"] == "reference" and a["model"] is None for a in out):
        # appended, so arms[i] in messages is the recipe's own i; tables and the figure put it first
        out.append({"name": "base" if "base" not in names else "base-reference", "kind": "reference",
                    "model": None, "ratio": None, "train": {"limit": None, "sft": {}}})
    if not any(a["kind"] in TRAINED for a in out):
        raise RecipeError("arms: no trained arm (behaviour, shuffled-audience, survey or mixed); an experiment "
                          "compares what training changed")
    raw["arms"] = out
    raw["seeds"] = list(seeds) if seeds is not None else [raw["seed"]]


def _check_arm(arm: dict[str, Any], where: str, raw: dict[str, Any]) -> dict[str, Any]:
    from ava.training.config import ConfigError, check_sft_value

    for key in arm:
        if key not in ARM_KEYS:
            close = difflib.get_close_matches(str(key), ARM_KEYS, n=3)
            hint = f" (did you mean {', '.join(close)}?)" if close else f" (known: {', '.join(ARM_KEYS)})"
            raise RecipeError(f"unknown key {where}.{key}{hint}")
    for key in ("name", "kind"):
        if not isinstance(arm.get(key), str) or not arm[key]:
            raise RecipeError(f"{where}.{key}: every arm needs a {key} (text), got {arm.get(key)!r}")
    name, kind = arm["name"], arm["kind"]
    if kind not in KINDS:
        close = difflib.get_close_matches(kind, KINDS, n=2)
        hint = f"did you mean {', '.join(close)}? " if close else ""
        raise RecipeError(f"{where}.kind: unknown arm kind {kind!r} ({hint}known: {', '.join(KINDS)})")
    if kind in UNAVAILABLE:
        raise RecipeError(f"{where}.kind: {kind} ({UNAVAILABLE[kind]}) is not available in this version of ava; "
                          "remove the arm")
    if not name.replace("-", "").replace("_", "").replace(".", "").isalnum():
        raise RecipeError(f"{where}.name: {name!r} names a folder: use letters, digits, '-', '_' or '.'")
    model, ratio = arm.get("model"), arm.get("ratio")
    if model is not None and (kind != "reference" or not isinstance(model, str)):
        raise RecipeError(f"{where}.model: only a reference arm names its own model (text); trained arms start "
                          "from model.name")
    if ratio is not None and kind != "mixed":
        raise RecipeError(f"{where}.ratio: only a mixed arm has a ratio")
    if kind == "mixed" and (isinstance(ratio, bool) or not isinstance(ratio, int | float) or not 0 < ratio < 1):
        raise RecipeError(f"{where}.ratio: a mixed arm needs the share of its optimiser steps on survey data, a "
                          f"number between 0 and 1 (e.g. 0.5), got {ratio!r}")
    train = arm.get("train") or {}
    if not isinstance(train, dict) or set(train) - {"limit", "sft"}:
        raise RecipeError(f"{where}.train: expected a mapping of limit and sft, got {train!r}")
    if kind == "reference" and train:
        raise RecipeError(f"{where}.train: a reference arm is not trained")
    limit = train.get("limit", raw["train"]["limit"])
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise RecipeError(f"{where}.train.limit: {limit!r} is not a number of samples (at least 1, or null)")
    sft = dict(raw["train"]["sft"])
    for key, value in (train.get("sft") or {}).items():
        try:
            sft[str(key)] = check_sft_value(str(key), value, f"{where}.train.sft.{key}")
        except ConfigError as exc:
            raise RecipeError(str(exc)) from None
    return {"name": name, "kind": kind, "model": model, "ratio": ratio, "train": {"limit": limit, "sft": sft}}


def arms_of(raw: dict[str, Any]) -> list[Arm]:
    return [Arm(a["name"], a["kind"], a["model"], a["ratio"], a["train"]["limit"], a["train"]["sft"])
            for a in raw["arms"]]


def budget(raw: dict[str, Any], arm: Arm) -> dict[str, Any]:
    """How much ``arm`` trains: its ``train.limit`` and the budget fields of its training config (the
    default training recipe or ``train.config``, then the recipe's and the arm's ``train.sft``)."""
    from ava.training.config import load_config

    cfg = load_config("model", "data", "out", config_file=raw["train"]["config"], method=raw["train"]["method"],
                      sft_overrides=dict(arm.sft or {}))
    return {"limit": arm.limit, **{k: cfg.sft.get(k) for k in BUDGET}}


def check_budgets(raw: dict[str, Any]) -> None:
    """Every trained arm trains as much as the others, unless the recipe allows otherwise."""
    if not uses_arms(raw) or raw.get("allow_unequal_budget"):
        return
    trained = [a for a in arms_of(raw) if a.trained]
    first = trained[0]
    want = budget(raw, first)
    for arm in trained[1:]:
        got = budget(raw, arm)
        diff = [f"{k} {want[k]} vs {got[k]}" for k in want if want[k] != got[k]]
        if diff:
            raise RecipeError(f"arms: {arm.name} trains on another budget than {first.name} ({'; '.join(diff)}); "
                              "give every trained arm the same budget, or set allow_unequal_budget: true (and say "
                              "so where the result is reported)")
