# The README's two commands are `make run` and `make test`; everything else is a helper.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PGHOST ?= 127.0.0.1
PGUSER ?= postgres
export HUB_TEST_POSTGRES_URL ?= postgresql://$(PGUSER)@$(PGHOST):5432/hub_test

.PHONY: install run test lint services bench docs clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

## Start the hub on its embedded defaults (SQLite in ./hub-data) with the demo dataset.
run: install
	HUB_ADMIN_TOKEN=$${HUB_ADMIN_TOKEN:-demo-admin-token} $(BIN)/hub serve --demo

## Make sure the services the tests talk to are running, then run every test, in
## TEST_WORKERS pytest-xdist worker processes (the suite mostly waits on servers and child
## processes; each worker has its own ports, broker and databases). TEST_WORKERS=0: one process.
## (PostgreSQL here; each worker's test Kafka broker is started by a fixture, tests/conftest.py.)
TEST_WORKERS ?= 3
TEST_DIST ?= worksteal
PYTEST_ARGS ?=
test: install services
	$(BIN)/python -m pytest -q --durations=25 -n $(TEST_WORKERS) --dist $(TEST_DIST) $(PYTEST_ARGS)

services:
	@scripts/ensure-postgres.sh
	@scripts/ensure-dovecot.sh
	@scripts/ensure-chromium.sh

lint: install
	$(BIN)/ruff check hub tests bench
	$(BIN)/ruff format --check hub tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache

## `make bench SCALE=quick` checks that every benchmark runs; the default scale measures.
SCALE ?= default
bench: install
	$(BIN)/python -m bench --scale $(SCALE)

docs: install
	$(BIN)/hub schema catalogue > docs/events.md
	$(BIN)/hub customers export-schema > docs/export.schema.json

clean:
	rm -rf $(VENV) hub-data .pytest_cache .mypy_cache .ruff_cache
