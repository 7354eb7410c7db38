# The targets are what the README tells people to type.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml requirements/dev.lock package-lock.json 2>/dev/null | sha256sum | cut -c1-12)
export JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION := 1
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20

.PHONY: install lock demo serve test test-fast lint synth deploy bench clean

install: $(STAMP)  ## Python virtualenv with every dependency, transitive ones included, from requirements/dev.lock (hash-checked); the CDK CLI

$(STAMP): pyproject.toml requirements/dev.lock package.json package-lock.json
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --require-hashes -r requirements/dev.lock
	$(BIN)/python -m pip install --quiet --no-deps -e .
	npm ci --silent --no-audit --no-fund
	rm -f $(VENV)/.installed-* && touch $@

lock: install  ## Resolve requirements/dev.lock (this machine's tools) and requirements/lambda.lock (the Lambda bundle) again from pyproject.toml
	$(BIN)/uv pip compile pyproject.toml --extra dev --universal --python-version 3.11 --generate-hashes --quiet -o requirements/dev.lock
	$(BIN)/uv pip compile pyproject.toml --python-platform x86_64-manylinux_2_17 --python-version 3.14 --no-annotate --quiet -o requirements/lambda.lock

demo: install  ## Run the document-analysis workflow on the local cloud, with a crash after an LLM call
	$(BIN)/python -m localcloud demo

serve: install  ## Start the local cloud and serve the API on 127.0.0.1:8765
	$(BIN)/python -m localcloud serve

test: install  ## The whole suite: unit, integration, infra, end-to-end (slow tests included)
	$(BIN)/python -m pytest

test-fast: install  ## Everything but the slow tests
	$(BIN)/python -m pytest -m "not slow"

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy functions/sutram infra localcloud cli benchmarks
	PYTHONPATH=functions:. $(BIN)/lint-imports --no-cache

synth: install  ## CloudFormation template with bundled Lambda code, checked by cdk-nag (acknowledgments listed) and cfn-lint (ignores in .cfnlintrc)
	npx cdk synth --quiet
	$(BIN)/cfn-lint --config-file .cfnlintrc -- cdk.out/*.template.json
	$(BIN)/python -m infra.assembly cdk.out
	$(BIN)/python -m infra.nag cdk.out

deploy: install
	npx cdk deploy

bench: install  ## Per-step, per-agent-turn and per-approval AWS calls, bytes, transitions and time; local concurrency and start time
	$(BIN)/python -m benchmarks.steps
	$(BIN)/python -m benchmarks.agent
	$(BIN)/python -m benchmarks.approvals
	$(BIN)/python -m benchmarks.concurrency
	$(BIN)/python -m benchmarks.large
	$(BIN)/python -m benchmarks.recovery

clean:
	rm -rf cdk.out .build .pytest_cache
