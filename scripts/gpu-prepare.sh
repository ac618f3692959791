#!/usr/bin/env bash
# Prepare, here (network, the project's environment), what scripts/gpu-check.sh needs on the GPU
# machine, which has Python 3.12, torch with CUDA and most libraries but no network:
#
#   .whl/  Python 3.12 wheels of what the machine lacks (trl, datasets, lm-eval and every
#          dependency of theirs that is missing there; rapidfuzz and gguf so all of `ava` imports)
#   .gpu/  the `tiny` built-in model as a plain folder (real weights, 8 MB; its tokenizer encodes
#          like Llama-2's), SmolLM2's tokenizer files, and real instruction data (`ava build` on
#          real ads, ~0.5 MB) for the training checks
#
# Both folders ignore themselves (a .gitignore of "*" inside), so they travel only when named in
# the device call's `carry`. Usage, from the repository root:
#
#   bash scripts/gpu-prepare.sh            # PY=.venv/bin/python by default (make setup's)
#   then on the device: carry [".whl", ".gpu"], command `bash scripts/gpu-check.sh`
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
ADS=${ADS:-${AVA_SHARED_DATA:-../shared/data}/ads/us-political-2020-sample.jsonl}

# One version of each; every missing requirement of each (checked below by check_wheels.py).
WHEELS=(
    trl==1.16.0                 # TRL: SFT training (ava train)
    datasets==5.2.0             # trl, lm-eval
    dill==0.4.1                 # datasets (<0.4.2), evaluate, multiprocess, lm-eval
    multiprocess==0.70.19       # datasets (<0.70.20), evaluate
    lm_eval==0.4.13             # the comparison scorer (HFLM)
    evaluate==0.4.6             # lm-eval
    more-itertools==11.2.1      # lm-eval
    pytablewriter==1.2.1        # lm-eval
    DataProperty==1.1.1         # pytablewriter, tabledata
    mbstrdecoder==1.1.5         # pytablewriter, typepy, DataProperty
    pathvalidate==3.3.1         # pytablewriter
    tabledata==1.3.5            # pytablewriter
    tcolorpy==0.1.7             # pytablewriter
    typepy==1.3.5               # pytablewriter, tabledata, DataProperty
    chardet==6.0.0.post1        # mbstrdecoder (<7)
    pytz==2026.6                # typepy[datetime]
    nltk==3.10.4                # rouge-score
    defusedxml==0.7.1           # nltk
    rapidfuzz==3.14.6           # ava.instructions (imported by the `ava` command)
    gguf==0.19.0                # built-in models' GGUF weights (conversion)
)
SDIST_ONLY=(rouge-score==0.1.2 sqlitedict==2.1.0 word2number==1.1)  # lm-eval's; built here (pure Python)
PLATFORMS=(--platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64
           --platform manylinux2014_x86_64 --platform manylinux1_x86_64)

mkdir -p .whl .gpu
echo '*' > .whl/.gitignore
echo '*' > .gpu/.gitignore
"$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    "${PLATFORMS[@]}" -d .whl "${WHEELS[@]}"
"$PY" -m pip wheel -q --no-deps -w .whl "${SDIST_ONLY[@]}"
"$PY" scripts/gpu/check_wheels.py .whl

# Models and tokenizers, from the converted built-in cache (converting on first use).
tiny=$(PYTHONPATH=src "$PY" -c 'from ava.models.loading import resolve_model, weights_dir; print(weights_dir(resolve_model("tiny")))')
smol=$(PYTHONPATH=src "$PY" -c 'from ava.models.loading import resolve_model, weights_dir; print(weights_dir(resolve_model("smollm2")))')
rm -rf .gpu/tiny .gpu/smollm2-tokenizer
cp -r "$tiny" .gpu/tiny  # also the timed model's default tokenizer
mkdir -p .gpu/smollm2-tokenizer
for f in tokenizer.json tokenizer_config.json special_tokens_map.json chat_template.jinja; do
    if [[ -f "$smol/$f" ]]; then cp "$smol/$f" .gpu/smollm2-tokenizer/; fi
done

# Real instruction data: ava build on real ads (data/, manifest.json and the run record run.json,
# which says the build is complete, are what training reads).
if [[ ! -f .gpu/train-data/run.json ]]; then
    [[ -f "$ADS" ]] || { echo "error: $ADS not found: set ADS=<ad file> or AVA_SHARED_DATA" >&2; exit 2; }
    build=$(mktemp -d)
    PYTHONPATH=src "$PY" -m ava.cli build --ads "$ADS" --out "$build/out"
    rm -rf .gpu/train-data && mkdir -p .gpu/train-data
    cp -r "$build/out/data" "$build/out/manifest.json" "$build/out/run.json" .gpu/train-data/
    rm -rf "$build"
fi

tracked=$(git ls-files -z | du -cb --files0-from=- | tail -1 | cut -f1)
carried=$(du -sb .whl .gpu | awk '{s += $1} END {print s}')
total=$(( tracked + carried ))
printf 'travels: tracked files %.1f MiB + .whl and .gpu %.1f MiB = %.1f MiB (limit 64 MiB)\n' \
    "$(echo "$tracked / 1048576" | bc -l)" "$(echo "$carried / 1048576" | bc -l)" "$(echo "$total / 1048576" | bc -l)"
(( total < 60 * 1048576 )) || { echo "error: over 60 MiB: carry less" >&2; exit 1; }
