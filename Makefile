# The two commands: `make run` (the dashboard, with everything it needs) and `make test`.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
BIN := $(VENV)/bin
PORT ?= 8000
# A developer's machine: DEBUG on unless the caller says otherwise.
export DEBUG ?= 1

# The newest Python >= 3.12 on PATH or under pyenv (the system python3 may be older).
FIND_PYTHON := for p in python3.14 python3.13 python3.12 \
	$$(ls -d $${PYENV_ROOT:-$$HOME/.pyenv}/versions/3.*/bin/python3 2>/dev/null | sort -rV) python3; do \
	  if command -v $$p >/dev/null 2>&1 && $$p -c 'import sys; sys.exit(sys.version_info < (3, 12))' 2>/dev/null; then \
	    command -v $$p; exit 0; fi; done; \
	echo "No Python >= 3.12 found: install one (e.g. pyenv install 3.13) and retry." >&2; exit 1

.PHONY: run test lint typecheck pytest bench clean

$(VENV)/.installed: requirements.txt requirements-dev.txt
	@test -x $(PY) || { python=$$($(FIND_PYTHON)) && echo "Using $$python" && $$python -m venv $(VENV); }
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	@touch $@

# Embedded Redis, migrations, the demo team, worker + scheduler, web server: see runlocal.
run: $(VENV)/.installed
	$(PY) manage.py runlocal --port $(PORT)

test: lint typecheck pytest

lint: $(VENV)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports  # the layering contracts in pyproject.toml

typecheck: $(VENV)/.installed
	$(BIN)/mypy

# Test files shared out over the cores (at most 4: each worker takes a Redis database of its
# own), then the Schemathesis fuzzing, whose cases share one test id that pytest-xdist cannot share out.
FUZZ := tests/security/test_fuzz_api.py
pytest: $(VENV)/.installed
	$(BIN)/pytest -n auto --maxprocesses 4 --dist loadfile --ignore=$(FUZZ)
	$(BIN)/pytest $(FUZZ)

clean:
	rm -rf $(VENV) var/*.sqlite3 .mypy_cache .ruff_cache .pytest_cache

# TinyStacks side by side with ecs-deploy and the AWS CLI on the local sandbox: see bench/README.md.
bench: $(VENV)/.installed
	$(PY) -m pip install --quiet -r bench/requirements.txt
	$(PY) -m bench.run
