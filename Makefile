# The two commands of the README: `make run` and `make test`. Both set up .venv on first use.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
ARGS ?=

.PHONY: run test lint setup

setup: $(STAMP)

# torch is pinned and installed first: a bare `torch` requirement in a fresh environment
# resolves to a multi-GB CUDA build, and 2.13.0 is the release this project is tested on.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check torch==2.13.0
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/harness run $(ARGS)

lint: $(STAMP)
	$(BIN)/ruff check harness suites tests benchmarks
	$(BIN)/mypy

test: lint
	$(BIN)/python -m pytest -q $(ARGS)
