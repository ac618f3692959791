"""``--backend vllm``: vLLM's offline engine in process, run in vLLM's own venv (its pins clash
with ours) on real OpinionQA prompts, against the in-process transformers engine."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from servers import ROOT, VLLM_PYTHON
from steering_prompts import max_prob_diff, steering_requests

pytestmark = pytest.mark.slow


def test_offline_vllm_engine_equals_the_engine(smollm2_scorer):
    if not VLLM_PYTHON.exists():
        if os.environ.get("AVA_REQUIRE_VLLM") == "1":
            raise RuntimeError(f"{VLLM_PYTHON} missing: make vllm-server")
        pytest.skip(f"vLLM's venv is not built ({VLLM_PYTHON}): run make vllm-server")
    from ava.contracts.scoring import ScoredItem
    from ava.models.loading import resolve_model, weights_dir

    requests = steering_requests(1, every=6)
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "VLLM_CPU_KVCACHE_SPACE": "1", "HF_HUB_OFFLINE": "1",
           "VLLM_NO_USAGE_STATS": "1"}
    rows = [{"id": r.id, "segments": list(r.segments), "options": list(r.options)} for r in requests]
    folder = weights_dir(resolve_model("smollm2"))
    script = str(ROOT / "tests" / "vllm_offline_run.py")
    done = subprocess.run([str(VLLM_PYTHON), script, folder], input=json.dumps(rows), capture_output=True, text=True,
                          env=env, timeout=900)
    line = next((x for x in done.stdout.splitlines() if x.startswith("AVA-RESULT ")), None)
    assert done.returncode == 0 and line, done.stderr[-3000:]
    out = json.loads(line.removeprefix("AVA-RESULT "))
    assert out["identity"].startswith(f"vllm:exact|hf:{folder}:")
    reference = smollm2_scorer.score(requests)
    exact = [ScoredItem(r.id, tuple(v)) for r, v in zip(requests, out["exact"], strict=True)]
    assert max_prob_diff(exact, reference) <= 1e-4
    for (_, covered, missing), r in zip(out["topk"], requests, strict=True):
        assert 0 < covered <= 1 and 0 <= missing <= len(r.options)
    texts = [r.prompt for r in requests[:2]]
    assert out["generated"] == smollm2_scorer.generate(texts, max_new_tokens=8)
