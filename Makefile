# Two commands (see README):
#   make serve   set up .venv and run `flightdeck serve` on the embedded defaults
#   make test    set up .venv (with dev extras) and run the whole test suite
# Each target installs what it needs, so both work on a fresh machine.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PG_BIN ?= /usr/lib/postgresql/15/bin

.PHONY: serve test lint setup setup-dev postgres chromium proto bench

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# -qq: errors still show; setuptools' notice that every editable install of a
# package-dir layout prints ("Editable installation… be careful with folders")
# does not, since it asks nothing of the reader.
PIP_QUIET := -qq

setup: $(BIN)/python
	$(BIN)/pip install $(PIP_QUIET) -e '.[server]'

setup-dev: $(BIN)/python postgres chromium
	$(BIN)/pip install $(PIP_QUIET) -e '.[server,dev]'

# Tests start a real PostgreSQL 15 themselves; make sure its binaries are here.
postgres:
	@if [ ! -x $(PG_BIN)/initdb ]; then \
	  echo "installing PostgreSQL 15 server binaries"; \
	  apt-get update -qq && apt-get install -y -qq postgresql-15 >/dev/null; \
	fi

# The dashboard test drives a real browser; Playwright cannot download its own here.
chromium:
	@if [ ! -x /usr/bin/chromium ]; then \
	  echo "installing Debian's Chromium for the dashboard test"; \
	  apt-get update -qq && apt-get install -y -qq chromium >/dev/null; \
	fi

serve: setup
	$(BIN)/flightdeck serve $(ARGS)

# Everything but the fault tests on three workers (most tests wait on servers, not
# the CPU); then the fault tests (process kills, restarts, clusters) alone in one
# process, so their timeouts never compete with other tests for the CPU. Both parts
# run whatever the first finds.
test: setup-dev
	$(BIN)/ruff check .
	status=0; \
	$(BIN)/python -m pytest -m "slow or not slow" -n 3 --ignore=tests/faults $(PYTEST_ARGS) || status=1; \
	$(BIN)/python -m pytest -m "slow or not slow" -n 0 tests/faults $(PYTEST_ARGS) || status=1; \
	exit $$status

lint: setup-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# Flight SQL messages: the compiled descriptor set is committed; rerun after editing the .proto.
proto: setup-dev
	cd flight_server/flight_sql && ../../$(BIN)/python -m grpc_tools.protoc -I. \
	  --descriptor_set_out=FlightSql.binpb FlightSql.proto
	cd flight_server/session && ../../$(BIN)/python -m grpc_tools.protoc -I. \
	  --descriptor_set_out=FlightSession.binpb FlightSession.proto

# Benchmarks, side by side in one run (see benchmarks/RESULTS.md); ARGS="--quick" for < 3 min.
bench: setup-dev
	$(BIN)/pip install $(PIP_QUIET) -e '.[server,dev,bench]'
	$(BIN)/python -m benchmarks $(ARGS)
