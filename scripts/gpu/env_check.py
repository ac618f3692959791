"""GPU check, setup: library versions and the imports the other sections rely on (recorded in
the "setup" section of $OUT/gpu-check.json), so a missing or mismatched wheel shows up first."""

from __future__ import annotations

import importlib
import importlib.metadata as md

import gpu_common as g

LIBRARIES = ("torch", "transformers", "accelerate", "peft", "huggingface_hub", "tokenizers", "safetensors", "numpy",
             "pandas", "pyarrow", "fsspec", "trl", "datasets", "lm_eval", "rapidfuzz", "gguf")
MODULES = ("ava.cli", "ava.training.trainer", "trl", "datasets", "lm_eval.models.huggingface")


def main() -> None:
    versions = {}
    for name in LIBRARIES:
        try:
            versions[name] = md.version(name)
        except md.PackageNotFoundError:
            versions[name] = "missing"
    imports = {}
    for module in MODULES:
        try:
            importlib.import_module(module)
            imports[module] = "ok"
        except Exception as exc:  # any failure: report it, the sections that need it will say more
            imports[module] = f"FAILED {exc.__class__.__name__}: {exc}"
    for key, value in {**versions, **imports}.items():
        print(f"{key:28} {value}")
    g.update("setup", {"versions": versions, "imports": imports})


if __name__ == "__main__":
    main()
