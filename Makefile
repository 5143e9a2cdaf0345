# Two commands: `make run` (the platform in the Dagster UI) and `make test` (the whole suite).
# Both set up a virtual environment on first use.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 3000

export PATH := $(CURDIR)/$(BIN):$(PATH)
export MLPLATFORM_HOME ?= $(CURDIR)/.mlplatform
export DAGSTER_HOME ?= $(MLPLATFORM_HOME)/dagster

# Re-install whenever the dependencies change.
STAMP := $(VENV)/.installed

.PHONY: install run run-production test test-fast docs docs-serve bench lock clean-state help

help:
	@echo "make run    set up if needed, then dagster dev on http://$(HOST):$(PORT)"
	@echo "make run-production  the same on PostgreSQL and Redis (MLPLATFORM_POSTGRES_URL, MLPLATFORM_REDIS_URL) with two Celery workers"
	@echo "make test   set up if needed, then the whole test suite"
	@echo "make test-fast  the fast lane: every stage once on a week of data, and the quick unit tests"
	@echo "make docs   the documentation site into site/ (strict: a broken link fails); make docs-serve serves it"
	@echo "make bench  the benchmarks (tens of minutes), refreshing docs/benchmarks.md"

$(STAMP): pyproject.toml requirements.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=24"
	$(BIN)/python -m pip install --quiet -c requirements.lock -e '.[dev]'
	touch $@

install: $(STAMP)

# `mlplatform dev`: prepare, the departure stream's consumer beside dagster dev (a process, not a run
# per micro-batch: docs/stream.md), once per state directory.
run: install
	$(BIN)/mlplatform dev --host $(HOST) --port $(PORT)

# The production profile on this machine (docs/production.md): MLPLATFORM_POSTGRES_URL and
# MLPLATFORM_REDIS_URL name the servers; two Celery workers and the stream's consumer run beside
# dagster dev, and stop with it (by PID: make's /bin/sh, dash, has no job control for `kill %1`).
run-production: install
	@test -n "$$MLPLATFORM_POSTGRES_URL" -a -n "$$MLPLATFORM_REDIS_URL" || \
		{ echo "make run-production: set MLPLATFORM_POSTGRES_URL and MLPLATFORM_REDIS_URL (docs/production.md)"; exit 2; }
	MLPLATFORM_PROFILE=production $(BIN)/mlplatform prepare
	MLPLATFORM_PROFILE=production $(BIN)/mlplatform worker --name worker1 & workers=$$!; \
	MLPLATFORM_PROFILE=production $(BIN)/mlplatform worker --name worker2 & workers="$$workers $$!"; \
	trap 'kill $$workers 2>/dev/null' EXIT INT TERM; \
	MLPLATFORM_PROFILE=production $(BIN)/mlplatform dev --host $(HOST) --port $(PORT)

# Three workers on two cores: the slowest modules (the end-to-end test, the sensors' waits, the
# benchmarks' smoke run) spend much of their time waiting; a fourth gained nothing, the suite's CPU
# bounds it (MLPLATFORM_TEST_CPU_LOG=FILE writes each module's CPU and wall seconds: docs/tests.md).
# PYTEST_ARGS="-n 0" runs in one process.
PYTEST_WORKERS ?= 3

test: install docs
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

# The fast lane: every stage once on a week of data, and the unit tests that need no pipeline
# (tests marked `fast`): a minute or two, for the edit-test loop. `make test` is the whole suite.
test-fast: install
	$(BIN)/python -m pytest -m fast -n 2 --dist loadfile $(PYTEST_ARGS)

# The documentation site (mkdocs.yml), strict: a broken link, a missing page or a reference the code
# cannot write fails the build, and with it `make test`.
export NO_MKDOCS_2_WARNING := 1
docs: install
	$(BIN)/mkdocs build --strict --quiet

docs-serve: install
	$(BIN)/mkdocs serve --dev-addr 127.0.0.1:8001

# BENCH_ARGS: names to run some, `--repeats N`, `--smoke` (see benchmarks/run.py).
bench: install
	$(BIN)/python benchmarks/run.py $(BENCH_ARGS)

# Refresh the pinned set after editing pyproject.toml's ranges.
lock: install
	$(BIN)/python -m pip freeze --exclude-editable | sed -e 's/^torch==\(.*\)+cpu/torch==\1/' > requirements.lock.new
	{ sed -n '1,2p' requirements.lock; cat requirements.lock.new; } > requirements.lock.tmp && rm requirements.lock.new
	mv requirements.lock.tmp requirements.lock

clean-state:
	rm -rf $(MLPLATFORM_HOME)
