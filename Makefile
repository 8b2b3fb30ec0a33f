# Vidare: `make run` starts the server on its embedded default; `make test` runs the whole suite.
# Both set up the virtual environment first (Python >= 3.11 as python3).

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
PACKAGES := sipcore policy media admin vidare

# The SIP core compiled with mypyc (tools/build_native.py); rebuilt when any of it changes.
NATIVE_STAMP := build/native.stamp
NATIVE_SRC := $(shell find sipcore -name '*.py') tools/build_native.py

.PHONY: setup native clean-native run test lint typecheck unit bench prompts clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[web,media,test]'
	touch $(STAMP)

setup: $(STAMP)

$(NATIVE_STAMP): $(STAMP) $(NATIVE_SRC)
	$(BIN)/python -m tools.build_native
	@mkdir -p build && touch $@

native: $(NATIVE_STAMP)

clean-native:
	$(BIN)/python -m tools.build_native --clean
	rm -f $(NATIVE_STAMP)

run: setup native
	$(BIN)/vidare serve --config config.toml

lint: setup
	$(BIN)/ruff check $(PACKAGES) tests bench tools

typecheck: setup
	$(BIN)/mypy --strict $(PACKAGES)

test: setup lint typecheck native
	$(BIN)/pytest -q -p no:cacheprovider

bench: setup native
	$(BIN)/python -m bench.callpath
	$(BIN)/python -m bench.parse
	$(BIN)/python -m bench.decide
	$(BIN)/python -m bench.calls

prompts: setup
	$(BIN)/python -m prompts.generate

clean:
	rm -rf sipcore/*.so sipcore/*/*.so build
	rm -rf $(VENV) var test-output .pytest_cache .mypy_cache .ruff_cache
