# The one entry point for people and CI: run, test, lint, bench, fuzz.
# Everything it needs is set up here from PyPI and crates.io, in .venv and target/.

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
DEPS_STAMP := $(VENV)/.deps-stamp
BUILD_STAMP := $(VENV)/.build-stamp
RUST_SOURCES := $(shell find rust -name '*.rs' -o -name Cargo.toml 2>/dev/null) Cargo.toml Cargo.lock
EXTRAS := test,dev,hwi,postgres

.PHONY: all run test test-rust test-python lint bench bench-soak fuzz clean

all: $(BUILD_STAMP)

$(PY):
	$(PYTHON) -m venv $(VENV)

# Dependencies, pinned by constraints.txt so a fresh machine gets what the tests were run with.
$(DEPS_STAMP): pyproject.toml constraints.txt | $(PY)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c constraints.txt maturin
	$(PY) -m pip install -q -c constraints.txt $$($(PY) -c 'import tomllib; d=tomllib.load(open("pyproject.toml","rb"))["project"]; print(" ".join(repr(x) for x in d["dependencies"] + [r for e in "$(EXTRAS)".split(",") for r in d["optional-dependencies"][e]]))' | tr -d "'")
	$(PY) -m pip install -q -c constraints.txt --no-deps pyln-client pyln-proto pyln-bolt7
	touch $@

# The extension, built in release mode and installed editable into the venv.
$(BUILD_STAMP): $(DEPS_STAMP) $(RUST_SOURCES) pyproject.toml
	VIRTUAL_ENV=$(CURDIR)/$(VENV) $(VENV)/bin/maturin develop --release --locked --skip-install --quiet
	$(PY) -c 'import invreq._core'
	touch $@

run: $(BUILD_STAMP)
	$(VENV)/bin/invreq serve $(ARGS)

test: test-rust test-python

test-rust:
	cargo test --locked -p invreq-core

test-python: $(BUILD_STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

lint: $(BUILD_STAMP)
	cargo fmt --all --check
	cargo clippy --locked --all-targets -- -D warnings
	$(VENV)/bin/ruff check python tests benches
	$(VENV)/bin/mypy
	$(PY) -m mypy.stubtest invreq._core

bench: $(BUILD_STAMP)
	$(PY) benches/micro.py

clean:
	rm -rf $(VENV) target
