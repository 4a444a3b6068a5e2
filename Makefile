# The one entry point for people and CI: run, test, lint, bench, fuzz.
# Everything it needs is set up here from PyPI and crates.io, in .venv and target/.

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
DEPS_STAMP := $(VENV)/.deps-stamp
BUILD_STAMP := $(VENV)/.build-stamp
RUST_SOURCES := $(shell find rust -name '*.rs' -o -name Cargo.toml 2>/dev/null) Cargo.toml Cargo.lock
EXTRAS := test,dev,hwi,postgres,bench

.PHONY: all run test test-rust test-python test-fuzz lint fuzz bench bench-micro clean

# cargo-fuzz, installed from crates.io into .tools/ (not the user's ~/.cargo).
CARGO_FUZZ_VERSION := 0.13.2
CARGO_FUZZ := .tools/bin/cargo-fuzz
FUZZ_TARGETS := decode_string invoice_request invoice tlv_stream blinded_path
FUZZ_SECONDS ?= 30
TEST_FUZZ_SECONDS ?= 30

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
	VIRTUAL_ENV=$(CURDIR)/$(VENV) $(VENV)/bin/maturin develop --release --locked --quiet
	$(PY) -c 'import invreq._core'
	touch $@

# The service on its embedded defaults: SQLite and a software key in ~/.invreq/bitcoin/,
# unix socket ~/.invreq/bitcoin/invreq-rpc, HTTP on 127.0.0.1:3010. ARGS adds options,
# e.g. `make run ARGS="--network regtest"`.
run: $(BUILD_STAMP)
	$(VENV)/bin/invreq serve $(ARGS)

test: test-rust test-python test-fuzz

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

# Benchmarks: figures go to benches/results/ (see the README for the latest).
LOADGEN := target/release/invreq-loadgen
.PHONY: bench-e2e bench-soak $(LOADGEN)

bench: bench-micro bench-e2e

bench-micro: $(BUILD_STAMP)
	$(PY) benches/micro.py --out benches/results/micro.md

$(LOADGEN):
	cargo build --release --locked -p invreq-loadgen

bench-e2e: $(BUILD_STAMP) $(LOADGEN)
	$(PY) benches/e2e.py --out-dir benches/results

# Longer: RSS over 1,000,000 creations, lookups with 10 thousand and 10 million records.
bench-soak: $(BUILD_STAMP) $(LOADGEN)
	$(PY) benches/soak.py --out benches/results/soak.md

$(CARGO_FUZZ):
	cargo install --locked --quiet cargo-fuzz@$(CARGO_FUZZ_VERSION) --root .tools

# Each target runs FUZZ_SECONDS from the committed seed corpus (read-only: new inputs go to
# fuzz/target/corpus). The stable toolchain accepts libFuzzer's -Z flags via RUSTC_BOOTSTRAP.
# A crash leaves its input in fuzz/artifacts/<target>/: copy it to fuzz/regressions/<target>/
# and cargo test replays it from then on. `make test` runs each target for 30 s.
test-fuzz:
	$(MAKE) fuzz FUZZ_SECONDS=$(TEST_FUZZ_SECONDS)

fuzz: $(CARGO_FUZZ)
	@set -e; for t in $(FUZZ_TARGETS); do \
	  mkdir -p fuzz/target/corpus/$$t; \
	  echo "fuzz $$t for $(FUZZ_SECONDS)s"; \
	  RUSTC_BOOTSTRAP=1 PATH=$(CURDIR)/.tools/bin:$$PATH cargo fuzz run --fuzz-dir fuzz $$t \
	    fuzz/target/corpus/$$t fuzz/corpus/$$t -- -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 2>&1 \
	    | grep -E '^(stat::number_of_executed_units|Done|==[0-9]+==|SUMMARY)' ; \
	  test $${PIPESTATUS[0]} -eq 0; \
	done

clean:
	rm -rf $(VENV) target fuzz/target .tools
