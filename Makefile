# Petitions: `make up` runs everything on this machine, `make test` checks everything.
# GNU make; needs only Python >= 3.11 (everything else is installed into .venv).

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: up test lint pytest bench faults openapi clean

up: $(STAMP)
	$(BIN)/petitions up

test: lint pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy services shared faults bench
	$(BIN)/lint-imports

# pytest exits 5 when it collected nothing: a suite that silently runs no test is a failure.
pytest: $(STAMP)
	$(BIN)/pytest

# wrk against the real stack on PostgreSQL and SQLite: saturation and 25/50/80 % of it, 60 s each
# on a fresh stack, with the reference endpoint and raw JetStream (about an hour; bench/README.md).
# BENCH_ARGS="--duration 20 --settle 180" for a shorter run; the escalation sweep is bench/escalation.py.
bench: $(STAMP)
	$(BIN)/python bench/run.py $(BENCH_ARGS)

# The fault suite (docs/reliability.md): every scenario on SQLite and PostgreSQL, full outages
# (10 s, 60 s, 10 min: about an hour). FAULTS_QUICK=1 shortens them for CI (see the doc).
faults: $(STAMP)
	$(BIN)/python -m faults $(FAULTS_ARGS)

# Rewrite docs/openapi/*.json from the code (a test fails while they are stale).
openapi: $(STAMP)
	$(BIN)/python -m services.openapi

clean:
	rm -rf var .bench .faults

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' 2>/dev/null || { \
	  echo "Cần Python 3.11 trở lên / Python 3.11 or newer is required (found: $$($(PYTHON) --version 2>&1 || echo none))."; \
	  echo "Cài Python 3.11+ rồi chạy lại, hoặc / install Python 3.11+ and retry, or: make PYTHON=python3.12 up"; \
	  exit 1; }
	$(PYTHON) -m venv $(VENV)

# Reinstall only when the dependencies may have changed.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)
