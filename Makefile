# The one entry point for people and CI: run, test, lint, bench, fuzz.
# Everything it needs is set up here from PyPI and crates.io, in .venv and target/.

SHELL := /bin/bash
PYTHON ?= python3
# The CPython versions invreq runs on (pyproject.toml's requires-python; hardware signing,
# the hwi extra, on 3.11 and 3.12 only: hwi 3.2.0 declares Requires-Python <3.13).
SUPPORTED_PYTHONS := 3.11 3.12 3.13
VENV := .venv
PY := $(VENV)/bin/python
# Which interpreter made .venv ("cpython 3.11 /usr"), written when .venv is made.
INTERPRETER := $(VENV)/.interpreter
# One stamp per group of requirements, installed when a target first needs it.
RUN_DEPS := $(VENV)/.deps-run
TEST_DEPS := $(VENV)/.deps-test
DEV_DEPS := $(VENV)/.deps-dev
BENCH_DEPS := $(VENV)/.deps-bench
BUILD_STAMP := $(VENV)/.build-stamp
RUST_SOURCES := $(shell find rust -name '*.rs' -o -name Cargo.toml 2>/dev/null) Cargo.toml Cargo.lock
# Running needs pyproject's dependencies and its optional runtime paths: hwi (--signer hwi,
# --approver hwi; installs on 3.11 and 3.12 only), postgres (--db postgresql://...) and lnurl
# (--lnurl; lnurl and bip32 themselves go in with --no-deps: see pyproject.toml).
RUN_EXTRAS := hwi,postgres,lnurl
PIP := $(PY) -m pip install -q --disable-pip-version-check -c constraints.txt

.PHONY: all run test test-rust test-python test-pythons test-fuzz lint fuzz bench bench-micro bench-profile clean FORCE

# cargo-fuzz, installed from crates.io into .tools/ (not the user's ~/.cargo).
CARGO_FUZZ_VERSION := 0.13.2
CARGO_FUZZ := .tools/bin/cargo-fuzz
FUZZ_TARGETS := decode_string invoice_request invoice tlv_stream blinded_path
FUZZ_SECONDS ?= 30
TEST_FUZZ_SECONDS ?= 30

# A developer's setup: the service built, with the test and lint tools.
all: $(BUILD_STAMP) $(TEST_DEPS) $(DEV_DEPS)

# Prints the interpreter's identity, or exits with one line naming the versions that work.
# Written for any Python, so an old one gets the message rather than a syntax error.
define CHECK_PYTHON
import sys
ok = "$(SUPPORTED_PYTHONS)".split()
v = "%d.%d" % sys.version_info[:2]
if sys.implementation.name != "cpython" or v not in ok:
    sys.exit("invreq needs CPython %s or %s (hardware signing: 3.11 or 3.12); $(PYTHON) is %s %s: "
             "run make with PYTHON=python3.X naming one of them"
             % (", ".join(ok[:-1]), ok[-1], sys.implementation.name, v))
print("%s %s %s" % (sys.implementation.name, v, sys.base_prefix))
endef
export CHECK_PYTHON

# .venv is made by $(PYTHON) and records which interpreter that was. A venv made by another
# one (PYTHON=python3.12 after python3.11, an interpreter since removed, a venv from before
# this check) is rebuilt, never reused. The record is rewritten only when it changes, so
# what depends on it is redone only then.
$(INTERPRETER): FORCE
	@command -v $(PYTHON) >/dev/null || { echo "invreq needs CPython $(SUPPORTED_PYTHONS): '$(PYTHON)' is not installed; run make with PYTHON=python3.X naming one of them" >&2; exit 1; }
	@want=$$($(PYTHON) -c "$$CHECK_PYTHON") || exit 1; \
	have=$$(cat $@ 2>/dev/null || $(PY) -c "$$CHECK_PYTHON" 2>/dev/null); \
	if [ "$$want" != "$$have" ] || ! $(PY) -c '' 2>/dev/null; then \
	  echo "==> .venv: creating it with $(PYTHON) ($$want)"; \
	  rm -rf $(VENV) && $(PYTHON) -m venv $(VENV) && echo "$$want" > $@; \
	elif [ ! -f $@ ]; then echo "$$want" > $@; fi

# Requirements come from pyproject.toml (contrib/requirements.py), pinned by constraints.txt
# so a fresh machine gets what the tests were run with.
$(RUN_DEPS): pyproject.toml constraints.txt contrib/requirements.py $(INTERPRETER)
	@echo "==> .venv: installing what running needs (dependencies, $(RUN_EXTRAS) extras) and maturin"
	@$(PY) -m pip install -q --disable-pip-version-check --upgrade pip
	@$(PY) contrib/requirements.py run $(RUN_EXTRAS) > $(VENV)/requirements-run.txt
	@$(PIP) maturin -r $(VENV)/requirements-run.txt
	@if $(PY) -c 'import sys; sys.exit(sys.version_info >= (3, 13))'; then $(PIP) --no-deps lnurl bip32; fi
	@touch $@

# pyln-client is installed with --no-deps: its pyln-proto wants coincurve-cp314-fix, a fork
# that ships the same `coincurve` package as the coincurve we depend on, and two
# distributions writing one package leave a mixed install. The test extra lists the rest of
# pyln-proto's dependencies.
$(TEST_DEPS): $(RUN_DEPS)
	@echo "==> .venv: installing the test tools (test extra: pytest, hypothesis, schemathesis, pyln-client)"
	@$(PY) contrib/requirements.py test > $(VENV)/requirements-test.txt
	@$(PIP) -r $(VENV)/requirements-test.txt
	@$(PIP) --no-deps pyln-client pyln-proto pyln-bolt7
	@touch $@

$(DEV_DEPS): $(RUN_DEPS)
	@echo "==> .venv: installing the lint tools (dev extra: mypy, ruff, import-linter)"
	@$(PY) contrib/requirements.py dev > $(VENV)/requirements-dev.txt
	@$(PIP) -r $(VENV)/requirements-dev.txt
	@touch $@

# The end-to-end benchmark drives the service with pyln-client: the test tools come too.
$(BENCH_DEPS): $(TEST_DEPS)
	@echo "==> .venv: installing the benchmark tools (bench extra: matplotlib, py-spy)"
	@$(PY) contrib/requirements.py bench > $(VENV)/requirements-bench.txt
	@$(PIP) -r $(VENV)/requirements-bench.txt
	@touch $@

# The extension, built in release mode and installed editable into the venv.
$(BUILD_STAMP): $(RUN_DEPS) $(RUST_SOURCES) pyproject.toml
	@echo "==> building the native core (Rust, release mode; a few minutes the first time)"
	@PIP_QUIET=1 VIRTUAL_ENV=$(CURDIR)/$(VENV) $(VENV)/bin/maturin develop --release --locked --quiet
	@$(PY) -c 'import invreq._core'
	@touch $@

# The service on its embedded defaults: SQLite and a software key in ~/.invreq/bitcoin/,
# unix socket ~/.invreq/bitcoin/lightning-rpc, HTTP on 127.0.0.1:3010. ARGS adds options,
# e.g. `make run ARGS="--network regtest"`.
run: $(BUILD_STAMP)
	@echo "==> starting: $(VENV)/bin/invreq serve $(ARGS)"
	@$(VENV)/bin/invreq serve $(ARGS)

test: test-rust test-python test-pythons test-fuzz

test-rust:
	cargo test --locked -p invreq-core

# The suite's servers run on the default loop (uvloop where installed, invreq.loops); the
# tests of the connection limits, the HTTP guard and the SQLite writer's links run once more
# on asyncio's own loop, so every limit is proven on both.
BOTH_LOOPS_TESTS := tests/test_limits.py tests/test_hostile.py tests/test_sqlite_writer.py

# TESTS: the test files to run (all when empty); PYTEST_ARGS: pytest's options.
test-python: $(BUILD_STAMP) $(TEST_DEPS)
	$(PY) -m pytest $(PYTEST_ARGS) $(TESTS)
	$(if $(BOTH_LOOPS_TESTS),INVREQ_EVENT_LOOP=asyncio $(PY) -m pytest $(PYTEST_ARGS) $(BOTH_LOOPS_TESTS))

# The suite on every other supported Python, each in a venv of its own (.venv-3.X, made by
# the rules above with PYTHON and VENV set): whole on FULL_SUITE_PYTHONS, the oldest and the
# newest, where behaviour differs if it differs anywhere; on the others (3.12) the files
# below, which keeps `make test` within CI's time (docs/testing.md): the hardware path (hwi
# installs on 3.11 and 3.12 only), request parsing and its limits, the SQLite store, the
# walkthrough and the packaging checks. Each interpreter is python3.X on PATH, else pyenv's
# newest 3.X; one missing is a warning, or an error with INVREQ_REQUIRE_PYTHONS=1 (.ci/run).
FULL_SUITE_PYTHONS ?= 3.11 3.13
SUBSET_TESTS := tests/test_hwi.py tests/test_hwi_hostile.py tests/test_refdevice.py \
  tests/test_approval.py tests/test_params.py tests/test_hostile.py tests/test_jsonfilter.py \
  tests/test_store_sqlite.py tests/test_sqlite_writer.py tests/test_cli.py \
  tests/test_payout_authority.py tests/test_readme.py tests/test_packaging.py
PYTHON_VERSION = $(shell $(PYTHON) -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)

test-pythons:
	@set -e; for v in $(filter-out $(PYTHON_VERSION),$(SUPPORTED_PYTHONS)); do \
	  py=$$(python$$v -c 'import sys; print(sys.executable)' 2>/dev/null) || \
	  py=$$(ls -d "$${PYENV_ROOT:-$$(pyenv root 2>/dev/null || echo ~/.pyenv)}"/versions/$$v.*/bin/python$$v 2>/dev/null | sort -V | tail -n 1); \
	  if [ -z "$$py" ]; then \
	    msg="the Python suite was not run on $$v: no python$$v on PATH nor in pyenv's versions/$$v.*"; \
	    if [ "$${INVREQ_REQUIRE_PYTHONS:-}" = 1 ]; then echo "error: $$msg (INVREQ_REQUIRE_PYTHONS=1)" >&2; exit 1; fi; \
	    echo "WARNING: $$msg" >&2; continue; \
	  fi; \
	  case " $(FULL_SUITE_PYTHONS) " in \
	    *" $$v "*) echo "==> the Python suite on $$v ($$py, .venv-$$v)"; \
	      $(MAKE) --no-print-directory test-python PYTHON="$$py" VENV=.venv-$$v TESTS= ;; \
	    *) echo "==> part of the Python suite on $$v ($$py, .venv-$$v): $(SUBSET_TESTS)"; \
	      $(MAKE) --no-print-directory test-python PYTHON="$$py" VENV=.venv-$$v TESTS="$(SUBSET_TESTS)" BOTH_LOOPS_TESTS= ;; \
	  esac; \
	done

lint: $(BUILD_STAMP) $(DEV_DEPS)
	cargo fmt --all --check
	cargo clippy --locked --all-targets -- -D warnings
	$(VENV)/bin/ruff check python tests benches
	$(VENV)/bin/lint-imports --no-cache --no-logo
	$(VENV)/bin/mypy
	$(PY) -m mypy.stubtest invreq._core

# Benchmarks: figures go to benches/results/ (benches/README.md has the latest).
LOADGEN := target/release/invreq-loadgen
.PHONY: bench-e2e bench-quick bench-soak $(LOADGEN)

bench: bench-micro bench-e2e

bench-micro: $(BUILD_STAMP) $(BENCH_DEPS)
	$(PY) benches/micro.py --out benches/results/micro.md

$(LOADGEN):
	cargo build --release --locked -p invreq-loadgen

bench-e2e: $(BUILD_STAMP) $(BENCH_DEPS) $(LOADGEN)
	$(PY) benches/e2e.py --out-dir benches/results

# A reduced end-to-end set (1 and 64 connections, invoicerequest, 2 s rows; about 2 minutes),
# for checking a change; its figures go to benches/results/quick/, not benches/README.md's.
bench-quick: $(BUILD_STAMP) $(BENCH_DEPS) $(LOADGEN)
	$(PY) benches/e2e.py --quick --out-dir benches/results/quick

# py-spy on a loaded server: the shares of the request path (benches/results/profile.md).
bench-profile: $(BUILD_STAMP) $(BENCH_DEPS) $(LOADGEN)
	$(PY) benches/profile.py --out benches/results/profile.md

# Longer: RSS over 1,000,000 creations, lookups with 10 thousand and 10 million records.
bench-soak: $(BUILD_STAMP) $(BENCH_DEPS) $(LOADGEN)
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
	rm -rf $(VENV) .venv-3.* target fuzz/target .tools
