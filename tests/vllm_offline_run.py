"""Run inside vLLM's venv by tests/test_backends_vllm_offline.py: ``--backend vllm`` (vLLM's
offline engine in process), with ava imported from ``src/`` (PYTHONPATH). ``argv[1]``: smollm2's
converted folder (this venv lacks the built-in's weights package). Reads a JSON list of requests
on stdin, writes the exact and top-k scores and greedy generations as JSON on stdout."""

from __future__ import annotations

import json
import sys

from ava.contracts.scoring import ScoreRequest
from ava.models.backends.factory import load_backend_scorer
from ava.models.backends.settings import BackendSettings
from ava.models.options import ModelOptions


def main() -> None:
    rows = json.load(sys.stdin)
    requests = [ScoreRequest(r["id"], tuple(r["segments"]), tuple(r["options"])) for r in rows]
    options = ModelOptions(sys.argv[1], dtype="fp32")
    exact = load_backend_scorer(options, BackendSettings("vllm"))
    out = {"identity": exact.identity, "exact": [list(s.logprobs) for s in exact.score(requests)]}
    exact.mode, exact.top_k, exact.min_coverage = "topk", 5, 0.0  # the same engine, read as top-5
    topk = exact.score(requests)
    out["topk"] = [[list(s.logprobs), s.covered_mass, s.letters_missing] for s in topk]
    out["generated"] = exact.generate([r.prompt for r in requests[:2]], max_new_tokens=8)
    print("AVA-RESULT " + json.dumps(out))


if __name__ == "__main__":
    main()
