# Two commands on a fresh clone: `make demo` and `make test`. Everything installs into .venv.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

# `make demo EXAMPLE=wine` (wine, digits, diabetes, customers; docs/tasks.md) runs the demo on that
# example in its own data folder and instance, beside the default one.
EXAMPLE ?=
ifneq ($(EXAMPLE),)
DAGSTER_HOME := $(CURDIR)/.dagster_home_$(EXAMPLE)
HYBRID_DATA_DIR := $(CURDIR)/data_$(EXAMPLE)
endif
export DAGSTER_HOME ?= $(CURDIR)/.dagster_home
export HYBRID_DATA_DIR ?= $(CURDIR)/data

.PHONY: install bytecode lock services demo test ui bench home clean

install: $(STAMP)

# Exact versions from requirements.lock (the stack of the last green run), then this project
# without resolving anything again. CI and the Dockerfile install the same lock. uv (pinned) does it
# with parallel downloads and byte-compiles on every core: `make install` took 46 s here from an
# empty uv cache, where pip took 57 s with every wheel already in its cache. uv reads neither
# pip's configuration nor its cache, so where it cannot reach the packages (a machine whose index
# or certificates only pip is configured for), pip installs the same lock instead. The project
# itself goes in editable, without resolving anything again (uv: 1 s; pip: 5 s).
UV_VERSION := 0.13.9
$(STAMP): pyproject.toml requirements.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	{ $(BIN)/python -m pip install --quiet uv==$(UV_VERSION) && \
	  $(BIN)/uv pip install --quiet --python $(BIN)/python --compile-bytecode -r requirements.lock && \
	  $(BIN)/uv pip install --quiet --python $(BIN)/python --no-deps -e .; } || \
	{ echo "uv could not install requirements.lock; installing it with pip"; \
	  $(BIN)/python -m pip install --quiet --upgrade pip && \
	  $(BIN)/python -m pip install --quiet -r requirements.lock && \
	  $(BIN)/python -m pip install --quiet --no-deps -e .; }
	touch $(STAMP)

# This project's code byte-compiled, as pip compiles what it installs: an editable install leaves
# that to the first import, which writes nothing where PYTHONDONTWRITEBYTECODE is set, and then
# every process (each demo, code server, run worker, CLI) compiles it again, about 0.3 s of CPU
# each. Only files changed since the last time are compiled.
bytecode: install
	@$(BIN)/python -m compileall -q hybrid_assets hybrid_resources tests

# Upgrading is this one command: re-resolve pyproject.toml's ranges to the newest releases and
# rewrite the lock; `make test` then installs and tests exactly that. Reverting the lock (git)
# rolls the stack back.
lock:
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet pip-tools
	$(BIN)/pip-compile --quiet --upgrade --extra dev --strip-extras --no-emit-index-url --no-emit-find-links \
	  -o requirements.lock pyproject.toml

# The persistent local instance under DAGSTER_HOME: this folder's dagster.yaml (sqlite) is copied
# there only when DAGSTER_HOME has none, so an instance you configured (PostgreSQL, say) is kept.
home: install
	@mkdir -p "$(DAGSTER_HOME)"
	@if [ ! -f "$(DAGSTER_HOME)/dagster.yaml" ]; then \
	  cp dagster.yaml "$(DAGSTER_HOME)/dagster.yaml"; echo "Created $(DAGSTER_HOME)/dagster.yaml (the local default)."; \
	elif ! cmp -s dagster.yaml "$(DAGSTER_HOME)/dagster.yaml"; then \
	  echo "Keeping $(DAGSTER_HOME)/dagster.yaml, which differs from the local default ./dagster.yaml (diff them to compare)."; \
	fi
	@for pool in quantum warehouse scoring_stream; do $(BIN)/dagster instance concurrency set $$pool 1 >/dev/null; done

demo: home bytecode
	$(BIN)/hybrid-demo $(if $(EXAMPLE),--example $(EXAMPLE))

# Real servers and a browser that tests start on loopback, from Debian's packages: Redis (scoring
# stream), PostgreSQL (the production instance storage) and headless Chromium (the UI test).
# A test whose server is missing fails and says how to install it.
APT_INSTALL = apt-get install -y -q $(1) >/dev/null 2>&1 || { apt-get update -q >/dev/null && \
	  apt-get install -y -q $(1) >/dev/null; } || echo "could not install $(1); the tests that need it will say so"
services:
	@command -v redis-server >/dev/null || { $(call APT_INSTALL,redis-server); }
	@command -v initdb >/dev/null || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || { $(call APT_INSTALL,postgresql); }
	@command -v chromedriver >/dev/null || { $(call APT_INSTALL,chromium chromium-driver); }

# Three workers on two cores: the longest tests mostly wait on a daemon's ticks or a subprocess, and
# worksteal keeps them spread. TEST_WORKERS=0 runs everything in one process.
TEST_WORKERS ?= 3
test: install services bytecode
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist worksteal --durations=25

ui: home bytecode
	$(BIN)/dagster dev -w workspace.yaml

bench: install
	$(BIN)/python -m pip install --quiet -c requirements.lock -e '.[bench]'  # locked versions kept
	$(BIN)/python bench/kernel_bench.py

clean:
	rm -rf $(DAGSTER_HOME) $(if $(EXAMPLE),$(HYBRID_DATA_DIR),data)
