#!/usr/bin/env bash
# The GPU path, proven, in one command (at most ~8 minutes on one H100/H200). On the GPU machine,
# from the repository root, with .whl and .gpu carried (made here by scripts/gpu-prepare.sh):
#
#   bash scripts/gpu-check.sh
#
# Sections, each under its own time limit, each writing what it has as it goes, so one that
# fails or runs out of time still leaves the others':
#   setup     carried wheels into /tmp/site (pip --no-index --no-deps --target), versions, imports
#   tests     tests/gpu (pytest -m gpu): CUDA vs the fp32 CPU reference (fp32 exact, bf16 bound),
#             out-of-memory halving under a capped allocator, a model spread over GPU and CPU,
#             LoRA and full training steps through ava's trainer
#   scoring   OpinionQA steering workload on a random Llama-2-7B-shaped model (bf16):
#             naive vs lm-eval HFLM (strings) vs ava; prompts/s, tokens/s, fraction of bf16 peak
#   training  LoRA tokens/s, ava's trainer vs plain TRL SFT, same shape, data and steps
# Results: $OUT/gpu-check.md (tables) and $OUT/gpu-check.json (numbers), plus one log per section.
#
# CPU dry run here (every code path, a 2-layer model, a handful of prompts):
#   GPU_CHECK_SHAPE=small GPU_CHECK_SLOWDOWN=4 GPU_CHECK_TOTAL_S=3600 OUT=/tmp/gpu-out bash scripts/gpu-check.sh
# (PYTHON=... picks the interpreter; GPU_CHECK_NO_WHEELS=1 uses its own trl/datasets/lm-eval;
# scripts/gpu-simulate.sh does this in an environment shaped like the GPU machine's.)
set -u
cd "$(dirname "$0")/.."
export OUT=${OUT:-/tmp/gpu-out}
mkdir -p "$OUT"
PY=${PYTHON:-python3}
TOTAL_S=${GPU_CHECK_TOTAL_S:-470}
SLOW=${GPU_CHECK_SLOWDOWN:-1}  # >1 stretches every limit (CPU dry runs)
SITE=${GPU_CHECK_SITE:-/tmp/site}
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
export HF_HUB_DISABLE_PROGRESS_BARS=1 AVA_CACHE=${AVA_CACHE:-/tmp/ava-cache}
if [[ "${GPU_CHECK_SHAPE:-7b}" == small ]]; then export AVA_GPU_DRY_RUN=1; fi

# section NAME LIMIT_S COMMAND...: run under a limit (shortened to what is left of TOTAL_S), log to $OUT.
section() {
    local name=$1 limit=$2 left start rc
    shift 2
    limit=$(( limit * SLOW ))
    left=$(( TOTAL_S - SECONDS ))
    (( limit > left )) && limit=$left
    if (( limit < 20 )); then echo "== $name: skipped, ${left}s left of ${TOTAL_S}s" | tee -a "$OUT/setup.log"; return; fi
    start=$SECONDS
    export "GPU_CHECK_${name^^}_S=$(( limit - 20 ))"  # the section's own budget: stop starting new work
    echo "== $name (limit ${limit}s)"
    timeout --kill-after=10 "$limit" "$@" > "$OUT/$name.log" 2>&1
    rc=$?
    echo "== $name: exit $rc after $(( SECONDS - start ))s$( (( rc == 124 || rc == 137 )) && echo ' (time limit)')"
    tail -n 5 "$OUT/$name.log" | sed 's/^/   /'
}

echo "== setup"
{
    nvidia-smi --query-gpu=name,memory.total,memory.used,driver_version --format=csv || echo "no nvidia-smi"
    "$PY" -V
    if [[ "${GPU_CHECK_NO_WHEELS:-0}" != 1 ]] && compgen -G ".whl/*.whl" > /dev/null; then
        timeout 120 "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
            --target "$SITE" .whl/*.whl || echo "wheel install FAILED"
    else
        echo "no .whl/ carried: trl, datasets and lm-eval must already be installed"
    fi
} > "$OUT/setup.log" 2>&1
export PYTHONPATH="$SITE:$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
timeout 60 "$PY" scripts/gpu/env_check.py >> "$OUT/setup.log" 2>&1
sed 's/^/   /' "$OUT/setup.log"

export AVA_GPU_MEASURED=/tmp/ava-gpu-measured.json
junit=/tmp/ava-gpu-junit.xml
rm -f "$AVA_GPU_MEASURED" "$junit"
section tests 140 "$PY" -m pytest -v -m gpu tests/gpu -p no:cacheprovider -o addopts="" -rfEs --durations=0 \
    --junitxml="$junit"
"$PY" scripts/gpu/gpu_report.py --tests "$junit" "$AVA_GPU_MEASURED" "$OUT/tests.log" || true
section scoring 170 "$PY" scripts/gpu/bench_scoring.py
section training 150 "$PY" scripts/gpu/bench_training.py
"$PY" scripts/gpu/gpu_report.py || true
echo "== total ${SECONDS}s; $OUT:"
ls -l "$OUT"
cat "$OUT/gpu-check.md" 2>/dev/null
