# Everything runs inside .venv, created on first use.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

# The engine compiled with mypyc beside its source (tactful/_native.py): rebuilt when the
# source changes; where it cannot be built, tactful runs the source.
COMPILED := tactful/engine.compiled-from
# The replay kernel compiled by numba into its cache (tactful/replay/__pycache__), once per
# change of its source, so no test or replay waits a minute for it. numba checks only a
# function's own file: texts.py's functions inline kernel.py's helpers (`civil`,
# `borrowed`), so their cache is cleared whenever the kernel is compiled again.
KERNEL := tactful/replay/kernel.compiled
# Every module's bytecode written beside its source, again where a source changed: where
# the environment sets PYTHONDONTWRITEBYTECODE (as this project's machines do), Python
# would otherwise compile each module from its source whenever a process imports it
# (`tactful replay` ~0.1 s of its time, the CLI's start ~0.04 s).
BYTECODE := $(VENV)/.bytecode

.PHONY: serve test lint bench demo clean compiled

$(STAMP): pyproject.toml
	test -d $(VENV) || $(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

$(COMPILED): tactful/engine.py $(STAMP)
	-$(BIN)/python tools/compile.py

$(KERNEL): tactful/replay/kernel.py tactful/replay/order.py tactful/replay/texts.py $(STAMP)
	rm -f tactful/replay/__pycache__/texts.*.nb*
	-$(BIN)/python -m tactful.replay.native && touch $(KERNEL)

$(BYTECODE): $(shell find tactful -name '*.py') $(STAMP)
	$(BIN)/python -m compileall -q tactful
	touch $(BYTECODE)

compiled: $(COMPILED) $(KERNEL) $(BYTECODE)

serve: $(STAMP) $(COMPILED) $(KERNEL) $(BYTECODE)
	$(BIN)/tactful serve --demo

demo: $(STAMP) $(COMPILED) $(KERNEL) $(BYTECODE)
	$(BIN)/tactful demo

test: $(STAMP) $(COMPILED) $(KERNEL) $(BYTECODE)
	$(BIN)/pytest -n 2 $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff format --check tactful tests bench tools
	$(BIN)/ruff check tactful tests bench tools
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff format tactful tests bench tools
	$(BIN)/ruff check --fix tactful tests bench tools

bench: $(STAMP) $(COMPILED) $(KERNEL) $(BYTECODE)
	$(BIN)/python bench/run.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
	rm -f tactful/*.so tactful/*.compiled-from $(KERNEL) tactful/replay/__pycache__/kernel.*.nb* tactful/replay/__pycache__/order.*.nb* tactful/replay/__pycache__/texts.*.nb*
