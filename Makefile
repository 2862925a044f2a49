# Beacon: `make run` runs everything on the embedded broker; `make test` runs the suite.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
TOOLS := tests/tools
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
export PYTHONPATH := $(CURDIR)/services

.PHONY: run test test-fast lint system-deps tools kafka bench schemas lock clean

$(STAMP): pyproject.toml requirements.lock
	[ -x $(PY) ] || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -c requirements.lock -e '.[test]'
	touch $@

## run: set up and run the whole service on the embedded broker, with demo events
run: $(STAMP)
	$(PY) -m beacon dev

## system-deps: Debian packages the tests talk to (Prometheus + promtool, Chromium)
system-deps:
	@command -v promtool >/dev/null && command -v chromium >/dev/null || { \
	  $(SUDO) apt-get update -qq && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus chromium >/dev/null; }

## tools: npm packages the tests use (Prism serving Twilio's OpenAPI spec; axe-core for the console's accessibility check)
tools: $(TOOLS)/node_modules/.installed
$(TOOLS)/node_modules/.installed: $(TOOLS)/package.json $(TOOLS)/package-lock.json
	cd $(TOOLS) && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
	touch $@

## kafka: Apache Kafka's jars for the suite's KRaft clusters (version pinned in tests/tools/kafka/pom.xml)
KAFKA_LIB := $(TOOLS)/kafka/lib
kafka: $(KAFKA_LIB)/.installed
$(KAFKA_LIB)/.installed: $(TOOLS)/kafka/pom.xml
	rm -rf $(KAFKA_LIB)
	cd $(TOOLS)/kafka && mvn -q -B dependency:copy-dependencies -DoutputDirectory=lib -DincludeScope=runtime
	touch $@

## test: set up and run the whole suite (slow tests included; both brokers)
test: $(STAMP) system-deps tools kafka
	$(PY) -m pytest

## lint: ruff (lint and format) over the code, mypy over services/, the import layers (lint-imports)
LINTED := services tests bench deploy examples
lint: $(STAMP)
	$(VENV)/bin/ruff check $(LINTED)
	$(VENV)/bin/ruff format --check $(LINTED)
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

## test-fast: unit tests only (no broker, no servers)
test-fast: $(STAMP)
	$(PY) -m pytest -m "not slow"

## bench: run every benchmark under bench/ and print the numbers
bench: $(STAMP) tools
	@for b in bench/bench_*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

## schemas: regenerate every generated file: schemas/ (events, records, OpenAPI) and README's settings table
schemas: $(STAMP)
	$(PY) -m beacon schemas export
	$(PY) -m beacon schemas openapi
	$(PY) -m beacon settings doc --write
	$(PY) -m beacon topics doc --write

## lock: re-pin every transitive dependency after changing pyproject.toml
lock:
	rm -rf /tmp/beacon-lock && $(PYTHON) -m venv /tmp/beacon-lock
	/tmp/beacon-lock/bin/pip install -q '.[test]'
	/tmp/beacon-lock/bin/pip freeze --exclude beacon > requirements.lock

clean:
	rm -rf $(VENV) var $(TOOLS)/node_modules $(KAFKA_LIB)
