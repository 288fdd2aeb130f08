# Everything runs inside .venv, created on first use.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: serve test lint bench demo clean

$(STAMP): pyproject.toml
	test -d $(VENV) || $(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

serve: $(STAMP)
	$(BIN)/tactful serve --demo

demo: $(STAMP)
	$(BIN)/tactful demo

test: $(STAMP)
	$(BIN)/pytest -n 2 $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff format --check tactful tests bench
	$(BIN)/ruff check tactful tests bench
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff format tactful tests bench
	$(BIN)/ruff check --fix tactful tests bench

bench: $(STAMP)
	$(BIN)/python bench/run.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
