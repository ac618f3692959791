"""Shared test fixtures: offline mode, the real data directory, small models."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("AVA_SHARED_DATA", ROOT.parent / "shared" / "data"))


def shared_path(*parts: str) -> Path:
    """A path under ../shared/data, or skip the test saying what is missing."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"real data not available: {path} (set AVA_SHARED_DATA to the shared/data folder)")
    return path


@pytest.fixture(scope="session")
def shared_data() -> Path:
    return shared_path()


@pytest.fixture(scope="session")
def tiny_scorer():
    from ava.models import load_scorer

    return load_scorer("tiny")


@pytest.fixture(scope="session")
def smollm2_scorer():
    from ava.models import load_scorer

    return load_scorer("smollm2")


# -- a real vLLM server (tests/servers.py) ---------------------------------------------------
_SERVER: dict[str, object] = {}


def _vllm_missing() -> str | None:
    from servers import VLLM_PYTHON

    if VLLM_PYTHON.exists():
        return None
    why = f"vLLM's venv is not built ({VLLM_PYTHON}): run make vllm-server"
    if os.environ.get("AVA_REQUIRE_VLLM") == "1":  # make test builds it: a missing one is a failure there
        raise RuntimeError(why)
    return why


def _needs_server(item) -> bool:
    return "vllm_server" in getattr(item, "fixturenames", ())


def pytest_collection_modifyitems(session, config, items) -> None:
    """Tests that need the server run last (in their own order), so it boots while the rest run."""
    items[:] = [i for i in items if not _needs_server(i)] + [i for i in items if _needs_server(i)]


def pytest_collection_finish(session) -> None:
    """Launch the server as soon as a collected test needs it, so it boots while others run."""
    if not any(_needs_server(item) for item in session.items):
        return
    if _vllm_missing() is None:
        from ava.models.loading import resolve_model, weights_dir
        from servers import launch

        log = ROOT / ".pytest_cache" / "vllm-server.log"
        log.parent.mkdir(exist_ok=True)
        _SERVER["server"] = launch(weights_dir(resolve_model("smollm2")), log)


def pytest_sessionfinish(session, exitstatus) -> None:
    server = _SERVER.pop("server", None)
    if server is not None:
        ready = server.ready_after_s
        if ready is not None:
            print(f"\nvLLM server: ready {ready:.0f} s after launch")
        server.stop()


@pytest.fixture(scope="session")
def vllm_server():
    """The running server (``.base_url``), launched at collection; skipped without vLLM's venv."""
    missing = _vllm_missing()
    if missing:
        pytest.skip(missing)
    return _SERVER["server"].ready()


@pytest.fixture(scope="session")
def fault_proxy(vllm_server):
    """A :class:`servers.FaultProxy` in front of the server; each test resets its faults."""
    from servers import FaultProxy

    proxy = FaultProxy(vllm_server.base_url.removesuffix("/v1"))
    yield proxy
    proxy.close()
