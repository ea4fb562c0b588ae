# Two commands do all the set-up on a fresh machine: `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 8000
# Tests on PostgreSQL make their own databases on this server (trust auth, see README).
export FIELDSYNC_TEST_POSTGRES_URL ?= postgresql+psycopg://postgres@127.0.0.1:5432/test

.PHONY: install run test lint types pytest migrate bench demo clean messages

install: $(STAMP)

# The wheel holds the product only; bench/ and demo/ are found from this checkout,
# which a .pth file puts on the venv's path.
$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	$(BIN)/python -c 'import pathlib, site; pathlib.Path(site.getsitepackages()[0], "fieldsync-checkout.pth").write_text("$(CURDIR)\n")'
	touch $(STAMP)

# Serve on the embedded SQLite default, for development, on http://$(HOST):$(PORT)/docs,
# logging text for a person at the terminal (a deployment logs JSON lines).
run: install
	FIELDSYNC_ENV=$${FIELDSYNC_ENV:-development} $(BIN)/fieldsync db upgrade
	FIELDSYNC_ENV=$${FIELDSYNC_ENV:-development} FIELDSYNC_LOG_FORMAT=$${FIELDSYNC_LOG_FORMAT:-text} \
		$(BIN)/fieldsync serve --host $(HOST) --port $(PORT)

migrate: install
	FIELDSYNC_ENV=$${FIELDSYNC_ENV:-development} $(BIN)/fieldsync db upgrade

# Everything CI checks: lint, format, types, and the tests on SQLite and PostgreSQL.
test: lint types pytest

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

types: install
	$(BIN)/mypy

pytest: install
	$(BIN)/pytest -n 2 -q

# The sync benchmark on SQLite and PostgreSQL (docs/performance.md). It takes a while;
# BENCH_ARGS="--scales 10000,100000 --batches 5" for a shorter run, "--quick" for a smoke run,
# "--only review" for the ranger leads' queue and patrol detail alone.
bench: install
	$(BIN)/fieldsync bench --postgres-url $(FIELDSYNC_TEST_POSTGRES_URL) $(BENCH_ARGS)

# The Alto Mayo programme as demo data, built through the API on the database `make run`
# serves (SQLite by default) in a minute or two; DEMO_ARGS="--scale 0.1" for a smaller one
# (`fieldsync demo --help`). It refuses a database that holds field records already.
# HOST and PORT are where `make run` will serve it: the demo prints that address (or,
# with DEMO_ARGS="--url URL --admin NAME", the running server's it built on).
demo: install
	FIELDSYNC_ENV=$${FIELDSYNC_ENV:-development} $(BIN)/fieldsync demo --host $(HOST) --port $(PORT) $(DEMO_ARGS)

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis

# The console's words: list the messages no catalogue holds, or holds without its
# Spanish; NEW=file adds the missing ones to api/console/locale/<lang>/file.po.
messages: install
	$(BIN)/python -m api.console.catalogues $(if $(NEW),--add $(NEW))
