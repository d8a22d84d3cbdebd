# Commands for a fresh machine (see README.md):
#   make demo   installs everything and runs the main job on the built-in synthetic fleet
#   make check  the fast lane (no Airflow, no DAG run, one shared SparkSession): 4 min 47 s on 2 cores (291 tests)
#   make test   installs everything and runs the test suite, then the production topology's integration
#               test as a step of its own (.ci/run calls this)
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml constraints.txt | cksum | cut -d' ' -f1)
export JAVA_HOME ?= $(shell dirname $$(dirname $$(readlink -f $$(which java))))
export PYSPARK_PYTHON := $(abspath $(BIN))/python
export PYSPARK_DRIVER_PYTHON := $(abspath $(BIN))/python

.PHONY: install demo check test unit integration replay bench clean


# uv installs the lock in well under a minute (pip takes about five); it comes from PyPI through the machine's
# own pip when missing, and pip stays the fallback where uv cannot be had.
# Bytecode is compiled at install (pip does so by default, uv on --compile-bytecode): where the environment sets
# PYTHONDONTWRITEBYTECODE, as this machine's does, no .pyc is ever written and every process compiled every
# module it imported from source (import railpm.ingest: 14.2 s without, 6.0 s with; 28 s to compile on 2 cores).
UV := $(PYTHON) -m uv

$(STAMP): pyproject.toml constraints.txt
	$(UV) --version >/dev/null 2>&1 || $(PYTHON) -m pip install --quiet uv || echo "uv unavailable: installing with pip"
	if $(UV) --version >/dev/null 2>&1; then \
	  test -x $(BIN)/python || $(UV) venv --python $(PYTHON) $(VENV); \
	  $(UV) pip install --quiet --compile-bytecode --python $(BIN)/python -c constraints.txt -e ".[dev]"; \
	else \
	  test -x $(BIN)/python || $(PYTHON) -m venv $(VENV); \
	  $(BIN)/pip install --quiet -c constraints.txt -e ".[dev]" 2>&1 | grep -v '^WARNING: Location' ; test $${PIPESTATUS[0]} -eq 0; \
	fi
	$(BIN)/python -m compileall -q -j 0 railpm jobs models expectations dags >/dev/null
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

install: $(STAMP)
	bash scripts/install-system-deps.sh

demo: install
	$(BIN)/railpm demo

# The unit lane, then the integration step. Side by side they took longer than one after the other (47.9 min
# against 40.1): both are CPU-bound on 2 cores much of the time (the main job's and the topology's Spark and
# training), and the contention cost more than the overlap saved.
test: unit integration

# The fast lane while changing code: no Airflow, no DAG run, at most the one shared SparkSession (markers in
# pyproject.toml; tests/conftest.py refuses a test that uses a dear fixture without its marker).
check: install
	$(BIN)/pytest -m "not slow and not airflow and not integration and not replay"

# Every test but the topology's, slow and airflow ones selected on purpose; the main job runs once, in a session
# fixture (tests/conftest.py) that the end-to-end checks share.
unit: install
	$(BIN)/pytest -m "not integration and not replay"

# railpm up, the pipeline through Airflow's REST API on the real scheduler, the failure drills, railpm down.
integration: install
	$(BIN)/pytest -m integration -s tests/integration

# railpm replay of a small fleet's go-live and the three days of its drills through every DAG (tests/test_replay.py):
# about 35 min on 2 idle cores, a day costing minutes, so it runs on purpose, not in CI.
replay: install
	$(BIN)/pytest -m replay tests/test_replay.py

clean:
	rm -rf data .pytest_cache
