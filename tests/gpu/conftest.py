"""GPU tests: marked ``gpu``; skipped without CUDA unless ``AVA_GPU_DRY_RUN=1`` (then on CPU, so
every code path runs before the one GPU run). ``scripts/gpu-check.sh`` runs them on the device.

Values the tests measure (max |dp|, halvings, ...) go to ``$AVA_GPU_MEASURED`` (a JSON file)
when set, for the check's report, and are printed.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CARRIED = REPO / ".gpu"  # scripts/gpu-prepare.sh puts the tiny model and real training data here


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def pytest_collection_modifyitems(config, items):
    here = Path(__file__).parent
    dry = os.environ.get("AVA_GPU_DRY_RUN") == "1"
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.gpu)
            if not dry and not _cuda():
                item.add_marker(pytest.mark.skip(reason="needs a CUDA device (AVA_GPU_DRY_RUN=1 runs it on CPU)"))


@pytest.fixture(scope="session")
def device() -> str:
    return "cuda" if _cuda() else "cpu"


@pytest.fixture(scope="session")
def tiny_dir() -> str:
    """The ``tiny`` built-in (real, trained weights) as a plain folder: carried, or the local cache."""
    if (CARRIED / "tiny" / "config.json").exists():
        return str(CARRIED / "tiny")
    from ava.models.loading import resolve_model, weights_dir

    return weights_dir(resolve_model("tiny"))


@pytest.fixture(scope="session")
def train_data() -> Path:
    """Real instruction data (``ava build`` on real ads) carried by scripts/gpu-prepare.sh."""
    folder = Path(os.environ.get("GPU_CHECK_DATA", CARRIED / "train-data"))
    if not (folder / "manifest.json").exists():
        pytest.skip(f"{folder}: no training data; run scripts/gpu-prepare.sh")
    return folder


@pytest.fixture(scope="session")
def steering_requests():
    """The first two questions of OpinionQA's steering set under every persona (134 real prompts)."""
    import sys

    sys.path.insert(0, str(REPO / "perf"))
    from scoring import opinionqa_requests

    return opinionqa_requests(2)


@pytest.fixture(scope="session")
def record():
    """``record(key, value)``: keep a measured value for the GPU check's report."""
    path = os.environ.get("AVA_GPU_MEASURED")

    def _record(key: str, value) -> None:
        print(f"measured {key} = {value}")
        if path:
            data = json.loads(Path(path).read_text()) if Path(path).exists() else {}
            data[key] = value
            Path(path).write_text(json.dumps(data, indent=1, sort_keys=True))

    return _record
