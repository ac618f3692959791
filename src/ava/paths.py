"""Where ava keeps caches and finds its bundled data."""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path


def cache_dir() -> Path:
    """The user's ava cache (``$AVA_CACHE``, else ``$XDG_CACHE_HOME/ava``, else ``~/.cache/ava``)."""
    root = os.environ.get("AVA_CACHE")
    path = Path(root) if root else Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "ava"
    path.mkdir(parents=True, exist_ok=True)
    return path


def bundled(*parts: str) -> Path:
    """A file shipped inside the package under ``ava/data``."""
    return Path(str(resources.files("ava").joinpath("data", *parts)))
