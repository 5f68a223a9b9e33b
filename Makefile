# Two commands for a newcomer: `make run` starts hubbub, `make test` runs the whole test suite.
# Both install what they need first (a virtualenv in .venv, and the npm packages for interop tests).
VENV ?= .venv
PY := $(VENV)/bin/python
NODE_DEPS := tests/interop/node_modules/.installed

.PHONY: run test install lint

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check --upgrade pip
	$(PY) -m pip install -q --disable-pip-version-check -e '.[dev]'
	touch $@

$(NODE_DEPS): tests/interop/package-lock.json
	cd tests/interop && npm ci --no-audit --no-fund --loglevel=error
	touch $@

install: $(VENV)/.installed $(NODE_DEPS)

# `make run` installs hubbub and its dependencies only (no test or lint tools).
$(VENV)/.run-installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check --upgrade pip
	$(PY) -m pip install -q --disable-pip-version-check -e .
	touch $@

run: $(VENV)/.run-installed
	$(VENV)/bin/hubbub run

# The tests start hundreds of worker processes: compile hubbub's modules once, so that each
# imports them compiled even where PYTHONDONTWRITEBYTECODE is set (1.1 s -> 0.65 s per import here).
test: install
	$(PY) -m compileall -q core broker client cluster emitter testing
	$(PY) -m pytest

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy -p hubbub
