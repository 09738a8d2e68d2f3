# Lore's set-up and checks. `make demo` and `make test` are the README's two commands.
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
# llama.cpp built for portable x86-64: a native (-march=native) build crashed at the first
# generated token on our build machines.
LLAMA_CMAKE_ARGS := -DGGML_NATIVE=OFF -DGGML_AVX2=ON -DGGML_AVX512=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_TILE=OFF
export DO_NOT_TRACK := 1
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

.PHONY: install demo test test-fast lint check clean web web-check

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# torch first, pinned: that CPU build lies on the build machines' disk, a looser pin pulls CUDA.
.install-stamp: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet torch==2.13.0
	CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" $(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

install: .install-stamp

demo: install
	$(BIN)/lore db upgrade
	$(BIN)/lore ingest data/
	$(BIN)/lore serve

test: install
	$(BIN)/python -m pytest -q --durations=15

# The fast lane: no real models, PostgreSQL, Redis, fuzzing or slow server restarts.
test-fast: install
	$(BIN)/python -m pytest -q -m "not models and not postgres and not redis and not fuzz and not slow and not browser"

# The web app's bundle is committed (docs/architecture.md, "The web app"): `make web` rebuilds it
# after a change under web/, and CI's `make web-check` fails when the committed output differs.
web:
	cd web && npm ci --no-audit --no-fund && npm run build

web-check: web
	@if [ -n "$$(git status --porcelain -- api/static/app)" ]; then \
		echo "api/static/app differs from a fresh build of web/: run make web and commit the result"; \
		git status --short -- api/static/app; exit 1; \
	fi; echo "the committed web bundle matches web/"

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

check: lint test

clean:
	rm -rf $(VENV) .install-stamp .lore .pytest_cache .mypy_cache .ruff_cache
