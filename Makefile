# Two commands do all set-up: `make demo` and `make test` (both create .venv when missing).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint typecheck unit bench clean

BASE_STAMP := $(VENV)/.installed-base

# the package and what it needs to run: all the demo installs
$(BASE_STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e .
	touch $(BASE_STAMP)

# and the tools of the test suite (linters, notebooks, a browser driver)
$(STAMP): $(BASE_STAMP)
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

demo: $(BASE_STAMP)
	$(BIN)/croct-pandas demo

lint: $(STAMP)
	$(BIN)/ruff check croct_pandas tests benchmarks
	$(BIN)/ruff format --check croct_pandas tests benchmarks

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/python -m pytest -n 2 --dist loadgroup --doctest-modules croct_pandas tests

test: lint typecheck unit

bench: $(STAMP)
	for b in benchmarks/*.py; do $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
