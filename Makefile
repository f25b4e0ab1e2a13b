# The exchange's two commands on a fresh machine: `make run` and `make test`.
# Needs Python 3.11+, make, node and npm; everything else is installed here.

SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
UV_VERSION := 0.13.8
TOOLS_DIR := .tools
UV := $(TOOLS_DIR)/bin/uv
VENV_STAMP := .venv/.synced
NODE_STAMP := node_modules/.installed

.PHONY: help install run test lint typecheck architecture contracts contracts-check compose-check ci bench clean

help: ## List the targets
	@grep -hE '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "} {printf "  \033[36m%-16s\033[0m %s\n", $$1, $$2}'

$(UV):
	$(PYTHON) -m venv $(TOOLS_DIR)
	$(TOOLS_DIR)/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

$(VENV_STAMP): $(UV) pyproject.toml uv.lock
	$(UV) sync --frozen
	@touch $@

$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

install: $(VENV_STAMP) $(NODE_STAMP) ## Install Python and node dependencies (uv.lock, package-lock.json)

run: install ## Start the exchange on its embedded defaults (Ctrl-C stops everything)
	$(UV) run --frozen market run

test: install ## Run the whole test suite against real PostgreSQL, Redis and anvil
	$(UV) run --frozen pytest -p no:cacheprovider

lint: install ## ruff
	$(UV) run --frozen ruff check .

typecheck: install ## mypy, strict on the packages
	$(UV) run --frozen mypy

architecture: install ## import-linter: the package dependency rules of ARCHITECTURE.md
	$(UV) run --frozen lint-imports

contracts: install ## Rebuild the contract artifacts with the pinned solc
	node contracts/build.mjs

contracts-check: install ## Fail if the committed contract artifacts differ from the sources
	node contracts/build.mjs --check

compose-check: ## Validate docker-compose.yml (installs Debian's docker-compose if missing)
	@command -v docker-compose >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker-compose >/dev/null; }
	docker-compose config -q

ci: lint typecheck architecture contracts-check compose-check test ## Everything CI runs

bench: install ## Run the benchmarks (figures printed, nothing asserted)
	@for script in bench/*.py; do echo "== $$script"; $(UV) run --frozen python $$script || exit 1; done

clean: ## Remove installed tools and environments (keeps the data directory)
	rm -rf $(TOOLS_DIR) .venv node_modules .mypy_cache .ruff_cache
