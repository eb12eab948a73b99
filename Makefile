# The two Quickstart commands (`make demo`, `make test`) create .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test lint bench clean

$(BIN)/python:
	$(PYTHON) -c 'import sys; sys.exit("onionskin needs Python >= 3.11") if sys.version_info < (3, 11) else None'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.base: $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e .
	touch $@

# The plugin tests load a really installed package's entry points (tests/plugins).
$(VENV)/.dev: $(BIN)/python pyproject.toml tests/fixtures/onionskin_test_plugin/pyproject.toml
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	$(BIN)/python -m pip install --quiet -e tests/fixtures/onionskin_test_plugin
	touch $@ $(VENV)/.base

demo: $(VENV)/.base
	$(BIN)/onionskin demo

test: $(VENV)/.dev
	$(BIN)/python -m pytest --cov --cov-report=term

lint: $(VENV)/.dev
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/mypy

bench: $(VENV)/.base
	$(BIN)/python benchmarks/overhead.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
