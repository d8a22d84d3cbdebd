# Two commands for a fresh machine (see README.md):
#   make demo   installs everything and runs the main job on the built-in synthetic fleet
#   make test   installs everything and runs the test suite (.ci/run calls this)
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml constraints.txt | cksum | cut -d' ' -f1)
export JAVA_HOME ?= $(shell dirname $$(dirname $$(readlink -f $$(which java))))
export PYSPARK_PYTHON := $(abspath $(BIN))/python
export PYSPARK_DRIVER_PYTHON := $(abspath $(BIN))/python

.PHONY: install demo test bench clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet -c constraints.txt -e ".[dev]" 2>&1 | grep -v '^WARNING: Location' ; test $${PIPESTATUS[0]} -eq 0
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

install: $(STAMP)
	command -v chromium >/dev/null || bash scripts/install-system-deps.sh

demo: install
	$(BIN)/railpm demo

test: install
	$(BIN)/pytest

clean:
	rm -rf data .pytest_cache
