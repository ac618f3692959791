"""What a recipe's types cannot say, checked before anything runs: ranges, dates, known names, files.

Why here and not in each step: a step checks its own values only when it starts, minutes (a build,
a base evaluation) into the experiment, and names the option by its CLI flag (``--limit``), which
the user of a recipe never gave. Every check here raises :class:`RecipeError` naming the dotted
key; :func:`ava.experiments.recipe.load_recipe` adds the recipe file. Paths are absolute already
(read relative to the recipe file).
"""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path
from typing import Any

from ava.experiments.errors import RecipeError


def check_recipe(raw: dict[str, Any], *, available: bool = True) -> None:
    """Refuse the first value no step could use (see the module docstring); ``available`` also
    checks this machine: every file the recipe names exists and the model resolves."""
    _check_seeds(raw)
    _check_options(raw["data"])
    if available:
        _check_files(raw)
        _check_model(raw["model"]["name"])
        for i, arm in enumerate(raw.get("arms") or []):
            if arm["model"] is not None:
                try:
                    _check_model(arm["model"])
                except RecipeError as exc:
                    raise RecipeError(str(exc).replace("model.name", f"arms[{i}].model")) from None
    if raw["train"]["limit"] is not None and raw["train"]["limit"] < 1:
        raise RecipeError(f"train.limit: {raw['train']['limit']} is not a number of samples (at least 1, or null "
                          "for all)")
    for name, spec in raw["eval"]["benchmarks"].items():
        for key in ("limit", "sample"):
            if spec[key] is not None and spec[key] < 1:
                raise RecipeError(f"eval.benchmarks.{name}.{key}: {spec[key]} is not a number of units (at least "
                                  "1, or null for all)")
        if spec["families"] is not None:
            _check_families(name, spec["families"])
    _check_compare(raw["compare"])


def _check_seeds(raw: dict[str, Any]) -> None:
    """Seeds feed numpy and torch generators, which take only non-negative integers."""
    for key, value in (("seed", raw["seed"]), ("data.options.seed", raw["data"]["options"]["seed"]),
                       ("eval.seed", raw["eval"]["seed"]), ("compare.seed", raw["compare"]["seed"])):
        if value < 0:
            raise RecipeError(f"{key}: {value} is negative; a seed is an integer of 0 or more")


def _check_options(data: dict[str, Any]) -> None:
    opts = data["options"]
    for key in ("heldout_fraction", "temporal_fraction"):
        # 1 (or more) sends every advertiser to the test split: the train split would be empty.
        if not 0 <= opts[key] < 1:
            raise RecipeError(f"data.options.{key}: {opts[key]} is not a share in [0, 1) (1 or more leaves the "
                              "train split empty)")
    for key in ("max_pairs_per_brand", "block_size", "workers", "shards", "max_body_chars"):
        if opts[key] is not None and opts[key] < 1:
            raise RecipeError(f"data.options.{key}: {opts[key]} must be at least 1")
    if opts["cutoff"] is not None:
        try:
            dt.date.fromisoformat(opts["cutoff"])
        except ValueError:
            raise RecipeError(f"data.options.cutoff: {opts['cutoff']!r} is not a date YYYY-MM-DD (or null: the "
                              "date above which temporal_fraction of the ads start)") from None
    if opts["keywords"] not in ("keybert", "frequency"):
        raise RecipeError(f"data.options.keywords: {opts['keywords']!r} is not keybert or frequency")
    if data["ads"] is not None:
        _no_duplicates("data.ads", [str(Path(p).resolve()) for p in data["ads"]])


def _check_files(raw: dict[str, Any]) -> None:
    """Every file the recipe names exists now, not when its step starts."""
    wanted: list[tuple[str, str | None, bool]] = [("train.config", raw["train"]["config"], False),
                                                  ("train.mix", raw["train"]["mix"], False)]
    wanted += [(f"data.ads[{i}]", p, True) for i, p in enumerate(raw["data"]["ads"] or [])]
    wanted += [(f"eval.benchmarks.{name}.data", spec["data"], True)
               for name, spec in raw["eval"]["benchmarks"].items()]
    for key, path, folder_ok in wanted:
        if path is None:
            continue
        if not Path(path).exists():
            raise RecipeError(f"{key}: {path} does not exist (relative paths are read from the recipe's folder)")
        if not folder_ok and not Path(path).is_file():
            raise RecipeError(f"{key}: {path} is not a file")


def _check_model(name: str) -> None:
    """The model resolves (built-in, local folder, adapter, or a hub id this machine can get) without
    loading any weights."""
    from ava.models.loading import ModelError, hub_commit, resolve_model

    try:
        spec = resolve_model(name)
        if spec.kind == "hf" and spec.path == name and not Path(name).exists():
            _check_hub_id(name, hub_commit)
    except ModelError as exc:
        raise RecipeError(f"model.name: {str(exc).replace('--model', 'model.name')}") from None


def _check_hub_id(repo_id: str, hub_commit: Any) -> None:
    import huggingface_hub
    from huggingface_hub import try_to_load_from_cache

    from ava.models.loading import ModelError

    if huggingface_hub.constants.HF_HUB_OFFLINE:
        if not isinstance(try_to_load_from_cache(repo_id, "config.json"), str):
            raise ModelError(f"{repo_id} is a Hugging Face id that is not in the local cache, and the hub is offline "
                             f"(HF_HUB_OFFLINE=1): download it once online (`hf download {repo_id}`), or name a "
                             "built-in model (smollm2, tiny) or a local model folder")
        return
    hub_commit(repo_id)  # online: the hub says whether the id (and its config) exists


def _check_families(name: str, families: list[str]) -> None:
    from ava.instructions.templates import ALL_TASKS

    known = sorted({task.split("-")[0] for task in ALL_TASKS})
    for family in families:
        if family not in known:
            raise RecipeError(f"eval.benchmarks.{name}.families: unknown task family {family!r} (known: "
                              f"{', '.join(known)})")
    _no_duplicates(f"eval.benchmarks.{name}.families", families)


def _check_compare(compare: dict[str, Any]) -> None:
    """The interval's tails must each hold at least one resample, or its bounds are not estimates."""
    tail = (1 - compare["confidence"]) / 2
    least = math.ceil(1 / tail - 1e-9)
    if compare["n_resamples"] < least:
        raise RecipeError(f"compare.n_resamples: {compare['n_resamples']} resamples cannot give a "
                          f"{compare['confidence']:.0%} interval (each tail needs a resample): use at least {least} "
                          "(2000 is the default)")
    from ava.metrics.multiple import METHODS

    if compare["correction"] not in METHODS:
        raise RecipeError(f"compare.correction: {compare['correction']!r} is not one of {', '.join(METHODS)} "
                          "(holm: family-wise error over the groups, the default; bh: false discovery rate)")


def _no_duplicates(key: str, values: list[str]) -> None:
    seen: set[str] = set()
    for value in values:
        if value in seen:
            raise RecipeError(f"{key}: {value} is listed twice")
        seen.add(value)
