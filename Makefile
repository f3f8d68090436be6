# The two commands of the README: `make run` and `make test`. Both set up .venv on first use.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
ARGS ?=

.PHONY: run test lint setup browser

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

# The browser test (tests/report/test_browser.py) opens the HTML report in headless Chromium.
# Debian's `chromium` is installed when missing and we are root; otherwise that test is skipped.
CHROMIUM ?= /usr/bin/chromium
browser:
	@if [ -x $(CHROMIUM) ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		(apt-get update -q && DEBIAN_FRONTEND=noninteractive \
			apt-get install -y -q --no-install-recommends chromium) \
		|| echo "note: could not install chromium; the browser test will be skipped"; \
	else \
		echo "note: $(CHROMIUM) is missing (apt-get install chromium as root);" \
			"the browser test will be skipped"; \
	fi

test: lint browser
	$(BIN)/python -m pytest -q --durations=20 $(ARGS)
