#!/usr/bin/env bash
# Dry-run scripts/gpu-check.sh here in an environment shaped like the GPU machine's, so the one
# run there is right the first time: Python 3.12 with only the packages that machine has
# (scripts/gpu/device-packages.txt, taken from the 3.12 environment of scripts/check-py312.sh),
# its versions of transformers and huggingface_hub, no trl/datasets/lm-eval/gguf/rapidfuzz except
# the carried .whl/ wheels; a 2-layer model on CPU (GPU_CHECK_SHAPE=small).
#
#   bash scripts/check-py312.sh      # once: the 3.12 environment (VENV312, default /tmp/ava-py312)
#   bash scripts/gpu-prepare.sh      # .whl/ and .gpu/
#   bash scripts/gpu-simulate.sh     # results in $OUT (default /tmp/gpu-sim-out)
set -euo pipefail
cd "$(dirname "$0")/.."
VENV312=${VENV312:-/tmp/ava-py312}
SIM=${SIM:-/tmp/ava-devsim}
export OUT=${OUT:-/tmp/gpu-sim-out}
# The versions seen there (KINDS.md), and the HTTP client huggingface_hub 1.x imports (the 3.12
# environment here resolved huggingface_hub 2.x, which uses httpx2 instead).
DEVICE_VERSIONS=(transformers==5.17.0 huggingface_hub==1.33.0 tokenizers==0.23.2 accelerate==1.15.0 httpx==0.28.1 httpcore==1.0.9)
[[ -x "$VENV312/bin/python" ]] || { echo "error: no $VENV312: run scripts/check-py312.sh first" >&2; exit 2; }

if [[ ! -f "$SIM/.done" ]]; then
    rm -rf "$SIM"
    base=$("$VENV312/bin/python" -c 'import sys; print(sys.base_prefix)')
    "$base/bin/python3.12" -m venv --without-pip "$SIM/venv"
    # The device's packages: every file of each allowed distribution, linked from the 3.12 env.
    # (Folders named site-packages, as there: dill pickles classes from modules outside such
    # folders by value, which breaks datasets' fingerprints of Arrow tables.)
    "$VENV312/bin/python" - "$SIM/device/site-packages" <<'EOF'
import os, re, sys
from importlib import metadata
from pathlib import Path

target = Path(sys.argv[1]); target.mkdir(parents=True)
canon = lambda n: re.sub(r"[-_.]+", "-", n).lower()
allowed = {canon(l.strip()) for l in Path("scripts/gpu/device-packages.txt").read_text().splitlines()
           if l.strip() and not l.startswith("#")}
linked, left = 0, []
for dist in metadata.distributions():
    name = canon(dist.metadata["Name"])
    if name in allowed or name.startswith(("nvidia-", "cuda-")) or name in ("pip", "triton"):
        tops = {Path(str(f)).parts[0] for f in dist.files or [] if not str(f).startswith("..")}
        for top in tops:
            src = Path(dist.locate_file(top))
            if src.exists() and not (target / top).exists():
                os.symlink(src, target / top)
        linked += 1
    else:
        left.append(name)
print(f"device-like site: {linked} distributions linked; left out: {', '.join(sorted(left))}")
EOF
    "$VENV312/bin/python" -m pip install -q --no-deps --target "$SIM/overlay/site-packages" "${DEVICE_VERSIONS[@]}"
    site=$("$SIM/venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
    printf '%s\n%s\n' "$SIM/overlay/site-packages" "$SIM/device/site-packages" > "$site/device-sim.pth"
    touch "$SIM/.done"
fi
rm -rf "$OUT" /tmp/site-sim
PYTHON="$SIM/venv/bin/python" GPU_CHECK_SITE=/tmp/site-sim GPU_CHECK_SHAPE=small \
    GPU_CHECK_SLOWDOWN=${GPU_CHECK_SLOWDOWN:-5} GPU_CHECK_TOTAL_S=${GPU_CHECK_TOTAL_S:-3600} bash scripts/gpu-check.sh
