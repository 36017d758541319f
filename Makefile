# Two commands on a fresh clone: `make demo` and `make test`. Everything installs into .venv.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

export DAGSTER_HOME ?= $(CURDIR)/.dagster_home
export HYBRID_DATA_DIR ?= $(CURDIR)/data

.PHONY: install services demo test ui bench home clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# The persistent local instance: sqlite under DAGSTER_HOME, configured by dagster.yaml.
home: install
	mkdir -p $(DAGSTER_HOME)
	cp dagster.yaml $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/dagster instance concurrency set quantum 1 >/dev/null

demo: home
	$(BIN)/hybrid-demo

# Real servers some tests start on loopback (Redis for the scoring stream), from Debian's packages.
services:
	@command -v redis-server >/dev/null || { apt-get install -y -q redis-server >/dev/null 2>&1 || \
	  { apt-get update -q >/dev/null && apt-get install -y -q redis-server >/dev/null; } || \
	  echo "could not install redis-server (Debian package redis-server); the stream tests will say so"; }

test: install services
	$(BIN)/python -m pytest -q

ui: home
	$(BIN)/dagster dev -w workspace.yaml

bench: install
	$(BIN)/python -m pip install --quiet -e '.[bench]'
	$(BIN)/python bench/kernel_bench.py

clean:
	rm -rf $(DAGSTER_HOME) data
