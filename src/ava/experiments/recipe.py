"""An experiment recipe: which ads (or build), which model, how to train, what to evaluate.

Recipes are versioned data (``recipes/*.yaml``). Validation is strict because a typo must not
silently fall back to a default and cost an hour of training: an unknown key or a value of the
wrong type is refused with the key's dotted path (``train.sft.learning_rat``). Relative paths
are read relative to the recipe file, so a recipe means the same thing from any directory.
``train.sft`` is handed to ``trl.SFTConfig`` and checked against its fields by
:func:`ava.training.config.check_sft_value`; ``eval.benchmarks.*.settings`` against what each
benchmark declares.
"""

from __future__ import annotations

import copy
import difflib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ava.experiments.errors import RecipeError
from ava.io import UnreadableYaml, read_yaml

RECIPE_VERSION = 1


class Open:
    """A mapping whose keys another library checks (``trl.SFTConfig`` fields, benchmark settings)."""


@dataclass(frozen=True)
class Each:
    """A mapping of any names to values of ``spec`` (one entry per benchmark)."""

    spec: Any


@dataclass(frozen=True)
class ListOf:
    types: tuple[type, ...]


NUM = (int, float)
OPT_INT = (int, type(None))
OPT_STR = (str, type(None))

BENCHMARK = {"limit": OPT_INT, "sample": OPT_INT, "steer": (bool,), "families": (ListOf((str,)), type(None)),
             "data": OPT_STR, "settings": Open}
SCHEMA: dict[str, Any] = {
    "version": (int,),
    "name": (str,),
    "seed": (int,),
    "data": {
        "ads": (ListOf((str,)), type(None)),
        "build": OPT_STR,
        "options": {"seed": (int,), "heldout_fraction": NUM, "temporal_fraction": NUM, "cutoff": OPT_STR,
                    "max_pairs_per_brand": (int,), "block_size": (int,), "keywords": (str,),
                    "max_body_chars": OPT_INT, "workers": (int,), "shards": OPT_INT, "embed_backend": (str,)},
    },
    "model": {"name": (str,), "framing": (str,)},
    "train": {"method": (str,), "limit": OPT_INT, "config": OPT_STR, "mix": OPT_STR,
              "mix_ratio": (int, float, type(None)), "sft": Open},
    "eval": {"seed": (int,), "benchmarks": Each(BENCHMARK)},
    "compare": {"n_resamples": (int,), "confidence": NUM, "seed": (int,), "correction": (str,)},
    "seeds": (ListOf((int,)), type(None)),
    "arms": (list, type(None)),
    "allow_unequal_budget": (bool,),
}
DEFAULTS: dict[str, Any] = {
    "version": RECIPE_VERSION, "name": "experiment", "seed": 0,
    "data": {"ads": None, "build": None,
             "options": {"seed": 0, "heldout_fraction": 0.1, "temporal_fraction": 0.1, "cutoff": None,
                         "max_pairs_per_brand": 1000, "block_size": 256, "keywords": "keybert",
                         "max_body_chars": None, "workers": 2, "shards": None, "embed_backend": "onnx"}},
    "model": {"name": "smollm2", "framing": "auto"},
    "train": {"method": "lora", "limit": None, "config": None, "mix": None, "mix_ratio": None, "sft": {}},
    "eval": {"seed": 0, "benchmarks": {}},
    "compare": {"n_resamples": 2000, "confidence": 0.95, "seed": 0, "correction": "holm"},
    "seeds": None, "arms": None, "allow_unequal_budget": False,
}
BENCHMARK_DEFAULTS = {"limit": None, "sample": None, "steer": False, "families": None, "data": None, "settings": {}}
# Build options that only change how fast a build runs, not what it writes: not part of any binding.
# (embed_backend is not one: onnx-int8 moves the mined pairs, docs/dataset.md; ava data build-ads binds it.)
SPEED_ONLY = ("workers",)


@dataclass(frozen=True)
class Recipe:
    """A validated recipe: ``raw`` holds every key (defaults filled in), paths made absolute."""

    path: Path
    raw: Mapping[str, Any]

    def __getitem__(self, key: str) -> Any:
        return self.raw[key]

    @property
    def uses_arms(self) -> bool:
        """``arms:`` or ``seeds:`` given: the arms layout (docs/experiment.md, arms and seeds)."""
        return self.raw.get("arms") is not None

    @property
    def benchmarks(self) -> dict[str, dict[str, Any]]:
        return dict(self.raw["eval"]["benchmarks"])

    def bound(self) -> dict[str, Any]:
        """What the experiment folder is bound to: the sections whose change would mix two experiments
        (the data, the model, the training). Evaluation and comparison are not: every score is cached
        by its own item, so an added benchmark is only evaluated, never refused. Speed-only build options
        (``workers``) are left out: a rerun with more workers resumes. Arms and seeds are not bound
        either: each arm and seed is its own step, cached by its own inputs, so adding one trains only it."""
        bound = {k: copy.deepcopy(self.raw[k]) for k in ("version", "seed", "data", "model", "train")}
        for key in SPEED_ONLY:
            bound["data"]["options"].pop(key, None)
        return bound


def load_recipe(path: str | Path, *, available: bool = True) -> Recipe:
    """Read and validate a recipe file; :class:`RecipeError` names the file and the key.

    ``available`` also checks what the recipe needs from this machine (its files exist, its model
    resolves): what ``ava experiment run`` needs before anything runs. ``available=False`` reads a
    recipe as a document (a shipped recipe whose data or weights are not on this machine)."""
    path = Path(path)
    try:
        raw = read_yaml(path) or {}
    except FileNotFoundError:
        raise RecipeError(f"{path}: no such recipe file") from None
    except UnreadableYaml as exc:
        raise RecipeError(str(exc)) from None
    from ava.experiments.checks import check_recipe

    try:
        checked = _check(raw, SCHEMA, DEFAULTS, "")
        _check_meaning(checked, path)
        absolute = _absolute(checked, path.resolve().parent)
        check_recipe(absolute, available=available)
    except RecipeError as exc:
        raise RecipeError(f"{path}: {exc}") from None
    return Recipe(path, absolute)


def _check(value: Any, spec: Any, default: Any, where: str) -> Any:
    """``value`` checked against ``spec`` with ``default`` filled in for missing keys."""
    if isinstance(spec, dict):
        if not isinstance(value, dict):
            raise RecipeError(f"{where or 'the recipe'}: expected a mapping, got {_kind(value)}")
        for key in value:
            if key not in spec:
                close = difflib.get_close_matches(str(key), list(spec), n=3)
                hint = f" (did you mean {', '.join(close)}?)" if close else f" (known: {', '.join(spec)})"
                raise RecipeError(f"unknown key {_join(where, key)}{hint}")
        return {k: _check(value[k], s, (default or {}).get(k), _join(where, k)) if k in value
                else copy.deepcopy((default or {}).get(k)) for k, s in spec.items()}
    if isinstance(spec, Each):
        if not isinstance(value, dict):
            raise RecipeError(f"{where}: expected a mapping of names, got {_kind(value)}")
        return {str(k): _check(v or {}, spec.spec, BENCHMARK_DEFAULTS, _join(where, k)) for k, v in value.items()}
    if spec is Open:
        if not isinstance(value, dict):
            raise RecipeError(f"{where}: expected a mapping of settings, got {_kind(value)}")
        return copy.deepcopy(value)
    for option in spec:
        if isinstance(option, ListOf):
            if isinstance(value, list) and all(isinstance(v, option.types) for v in value):
                return list(value)
        elif _fits(value, option):
            return value
    raise RecipeError(f"{where}: expected {_names(spec)}, got {_kind(value)} {value!r}")


def _fits(value: Any, option: type) -> bool:
    """``value`` is of ``option``; an integer is a float too, a boolean is not an integer."""
    if isinstance(value, bool):
        return option is bool
    return isinstance(value, option) or (option is float and isinstance(value, int))


def _check_meaning(raw: dict[str, Any], path: Path) -> None:
    """What types cannot say: one source of data, known methods, benchmarks and settings."""
    from ava.evals import registry
    from ava.training.config import ConfigError, check_sft_value

    if raw["version"] != RECIPE_VERSION:
        raise RecipeError(f"version: {raw['version']} is not a recipe version this ava reads ({RECIPE_VERSION})")
    data = raw["data"]
    if (data["ads"] is None) == (data["build"] is None):
        raise RecipeError("data: give exactly one of data.ads (ad files to build from) or data.build "
                          "(a finished build)")
    if raw["train"]["method"] not in ("lora", "full"):
        raise RecipeError(f"train.method: {raw['train']['method']!r} is not lora or full")
    if raw["model"]["framing"] not in ("auto", "chat", "plain"):
        raise RecipeError(f"model.framing: {raw['model']['framing']!r} is not auto, chat or plain")
    for key, value in raw["train"]["sft"].items():
        try:
            raw["train"]["sft"][key] = check_sft_value(str(key), value, f"train.sft.{key}")
        except ConfigError as exc:
            raise RecipeError(str(exc)) from None
    if not raw["eval"]["benchmarks"]:
        raise RecipeError("eval.benchmarks: name at least one benchmark to compare before and after")
    for name, spec in raw["eval"]["benchmarks"].items():
        try:
            bench = registry.get(name)
            registry.check_settings({str(k): str(v) for k, v in spec["settings"].items()}, [bench])
        except registry.UnknownName as exc:
            raise RecipeError(f"eval.benchmarks.{name}: {exc}") from None
        if "expression" in spec["settings"] or "samples" in spec["settings"]:
            from ava.evals.tasks.expression import expression_spec

            try:  # a method name is checked now, not after the training it would follow
                expression_spec({str(k): str(v) for k, v in spec["settings"].items()}, 0)
            except ValueError as exc:
                raise RecipeError(f"eval.benchmarks.{name}.settings: {exc}") from None
        if spec["families"] is not None and not bench.generates:
            raise RecipeError(f"eval.benchmarks.{name}.families: only ava-tasks has task families")
        if spec["sample"] is not None and bench.generates:
            raise RecipeError(f"eval.benchmarks.{name}.sample: use limit (a seeded sample per task) for {name}")
        if spec["steer"] and not bench.steer:
            raise RecipeError(f"eval.benchmarks.{name}.steer: {name} has no steering task")
    if not 0 < raw["compare"]["confidence"] < 1:
        raise RecipeError(f"compare.confidence: {raw['compare']['confidence']} is not between 0 and 1")
    from ava.experiments.arms import check_arms, check_budgets

    check_arms(raw)
    check_budgets(raw)


def _absolute(raw: dict[str, Any], base: Path) -> dict[str, Any]:
    def resolve(p: str | None) -> str | None:
        return None if p is None else str((base / Path(p).expanduser()).resolve())

    raw = copy.deepcopy(raw)
    if raw["data"]["ads"] is not None:
        raw["data"]["ads"] = [resolve(p) for p in raw["data"]["ads"]]
    raw["data"]["build"] = resolve(raw["data"]["build"])
    for key in ("config", "mix"):
        raw["train"][key] = resolve(raw["train"][key])
    for spec in raw["eval"]["benchmarks"].values():
        spec["data"] = resolve(spec["data"])
        spec["settings"] = {str(k): str(v) for k, v in spec["settings"].items()}
    return raw


def _join(where: str, key: Any) -> str:
    return f"{where}.{key}" if where else str(key)


def _kind(value: Any) -> str:
    return "null" if value is None else {"dict": "a mapping", "list": "a list", "str": "text"}.get(
        type(value).__name__, type(value).__name__)


def _names(spec: tuple[Any, ...]) -> str:
    names = []
    for option in spec:
        if isinstance(option, ListOf):
            names.append(f"a list of {' or '.join(t.__name__ for t in option.types)}")
        else:
            names.append("null" if option is type(None) else option.__name__)
    return " or ".join(names)
