# Every target does its own set-up: a fresh clone needs nothing but python3 and make.
# AIRFLOW_VERSION picks the Airflow the virtualenv is built with (default: the latest we test).
PYTHON ?= python3
AIRFLOW_VERSION ?= 3.3.2
VENV ?= $(if $(filter 3.3.2,$(AIRFLOW_VERSION)),.venv,.venv-$(AIRFLOW_VERSION))
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(AIRFLOW_VERSION)
# Pins some Airflow releases need against dependencies published after them.
CONSTRAINTS := $(if $(wildcard .ci/constraints-$(AIRFLOW_VERSION).txt),-c .ci/constraints-$(AIRFLOW_VERSION).txt)
PYTEST_ARGS ?=
# The tests mostly wait on the emulator's jobs, so 4 processes share 2 cores well
# (the suite: 4.5 min alone, 1.3 min in 4); each has its own emulator and Airflow home.
TEST_WORKERS ?= 4

.PHONY: help venv test lint demo bench docs e2e reliability cluster cluster-deps wheel clean

help:
	@echo "make demo   - run the model lifecycle DAGs against the local emulator"
	@echo "make test   - the whole test suite (AIRFLOW_VERSION=3.0.6 make test: oldest supported Airflow)"
	@echo "make lint   - ruff and mypy"
	@echo "make bench  - benchmarks (ratios against baselines measured in the same run)"
	@echo "make docs   - the Sphinx site, warnings as errors"
	@echo "make wheel  - build the wheel and sdist, install the wheel with Airflow 3.0.6 in a new venv, run a DAG there"
	@echo "make e2e    - the connection form, a model switch approved and rejected, the Models page, in headless Chromium"
	@echo "make reliability - faults over 20 seeds, task kills and triggerer restarts on a real Airflow, secret leaks (minutes)"
	@echo "make cluster - Airflow on PostgreSQL, Celery workers over Redis, two triggerers: load, failover, secrets (minutes)"

$(STAMP): pyproject.toml $(wildcard .ci/constraints-$(AIRFLOW_VERSION).txt)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test,docs]' 'apache-airflow==$(AIRFLOW_VERSION)' $(CONSTRAINTS)
	touch $@

venv: $(STAMP)

# A test still running after 4 minutes prints every thread's stack; pytest-timeout fails it at 5.
test: $(STAMP)
	$(BIN)/python -m pytest -n $(TEST_WORKERS) -o faulthandler_timeout=240 $(PYTEST_ARGS)

# The slow part of the reliability suite (marker `slow`, skipped by `make test`); latest Airflow.
# -rP prints what the passing tests measured (the fault summary). One process: run beside the
# CPU-bound fault runs, a real-cluster task once needed a second try and its test failed.
reliability: $(STAMP)
	$(BIN)/python -m pytest -m slow -rP tests/reliability $(PYTEST_ARGS)

# Airflow as users deploy it (tests/cluster, marker `cluster`): PostgreSQL, Celery workers over
# Redis, two triggerers. Installs the `cluster` extra and Debian's postgresql and redis-server
# when missing; apt's output is shown only when it fails.
# `cluster-deps` is that set-up alone (.ci/run installs it beside a suite that does not use it).
APT := $(if $(filter 0,$(shell id -u)),,sudo) env DEBIAN_FRONTEND=noninteractive apt-get
cluster-deps: $(STAMP)
	$(BIN)/python -c 'import airflow.providers.celery, psycopg2, asyncpg' 2>/dev/null || \
		$(BIN)/python -m pip install -q -e '.[cluster]' 'apache-airflow==$(AIRFLOW_VERSION)' $(CONSTRAINTS)
	@if ! command -v redis-server >/dev/null || ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then \
		log=$$(mktemp) && { $(APT) update -q && $(APT) install -y -q postgresql redis-server; } >$$log 2>&1 \
		|| { cat $$log; rm -f $$log; exit 1; }; rm -f $$log; fi

cluster: cluster-deps
	$(BIN)/python -m pytest -m cluster -rP tests/cluster $(PYTEST_ARGS)

# The release as users get it: `python -m build` (the sdist, then the wheel from it), the wheel
# installed into a new virtualenv with the oldest supported Airflow by the recipe of
# docs/installation.md (the pins of .ci/constraints-3.0.6.txt; Airflow's own constraint files
# are on GitHub, out of CI's reach), then scripts/wheel_check.py there: `airflow providers
# list`, `predone-emulator`, `airflow dags test predone_train`. Kept in .venv-wheel (ignored).
WHEEL_AIRFLOW := 3.0.6
WHEEL_DIR := .venv-wheel
wheel: $(STAMP)
	rm -rf $(WHEEL_DIR)
	$(BIN)/python -m build -q --outdir $(WHEEL_DIR)/dist . >/dev/null
	$(PYTHON) -m venv $(WHEEL_DIR)/venv
	$(WHEEL_DIR)/venv/bin/python -m pip install -q $(WHEEL_DIR)/dist/*.whl 'apache-airflow==$(WHEEL_AIRFLOW)' \
		$(shell grep -v '^#' .ci/constraints-$(WHEEL_AIRFLOW).txt)
	$(WHEEL_DIR)/venv/bin/python scripts/wheel_check.py

# The last ruff line: Airflow's own rules (AIR) over the package and the DAGs users copy
# (AIR2xx, e.g. AIR202, are preview rules).
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/ruff check --preview --select AIR airflow_provider_predone example_dags
	$(BIN)/mypy

demo: $(STAMP)
	$(BIN)/python scripts/demo.py

bench: $(STAMP)
	$(BIN)/python -m benchmarks

docs: $(STAMP)
	$(BIN)/sphinx-build -W --keep-going -q -b html docs docs/_build/html

e2e: $(STAMP)
	$(BIN)/python -c 'import selenium' 2>/dev/null || $(BIN)/python -m pip install -q -e '.[e2e]'
	$(BIN)/python scripts/e2e_connection_form.py
	$(BIN)/python scripts/e2e_approval.py
	$(BIN)/python scripts/e2e_models_page.py

clean:
	rm -rf .venv .venv-* .demo docs/_build .mypy_cache .ruff_cache .pytest_cache
