# kv-envelope — the two commands a newcomer needs:
#   make demo   run the demo worker on real workerd (wrangler dev) with local KV
#   make test   run every test (what CI runs)
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
CARGO ?= cargo
WASM_TARGET := wasm32-unknown-unknown
NATIVE_FEATURES := testing,cli

.PHONY: demo test fmt-check clippy clippy-native clippy-wasm doc test-native build-wasm \
        fuzz-smoke fuzz e2e schemas interop-schemas bench setup

## The demo worker on 127.0.0.1:$${PORT:-8787} with local persisted KV.
demo:
	bash scripts/demo.sh

## Every test. Order: install what is missing, cheap static checks, native tests, the schemas in
## other languages' validators, wasm32, fuzz smoke, e2e.
test: setup
	$(MAKE) --no-print-directory fmt-check clippy doc test-native interop-schemas build-wasm fuzz-smoke e2e
	@echo "make test: all suites passed"

## What the tests need (rustup components and targets, nightly, cargo-fuzz, Chromium, the worker
## toolchain), each installed only when missing: scripts/setup-test.sh.
setup:
	bash scripts/setup-test.sh

fmt-check:
	$(CARGO) fmt --all -- --check

clippy: clippy-native clippy-wasm

# Both validators: the jsonschema crate (default feature) and the in-crate one
# (`--no-default-features`, what the demo worker ships).
clippy-native:
	$(CARGO) clippy --all-targets --features $(NATIVE_FEATURES) -- -D warnings
	$(CARGO) clippy --all-targets --no-default-features --features $(NATIVE_FEATURES) -- -D warnings

clippy-wasm:
	$(CARGO) clippy --target $(WASM_TARGET) --features worker -- -D warnings
	$(CARGO) clippy --target $(WASM_TARGET) --no-default-features --features worker -- -D warnings

## API docs build without a warning (broken or redundant intra-doc links), with either validator.
doc:
	RUSTDOCFLAGS="-D warnings" $(CARGO) doc --no-deps --features $(NATIVE_FEATURES)
	RUSTDOCFLAGS="-D warnings" $(CARGO) doc --no-deps --no-default-features --features $(NATIVE_FEATURES)

## Every native suite twice: with jsonschema validating, then with the in-crate validator.
test-native:
	$(CARGO) test --features $(NATIVE_FEATURES)
	$(CARGO) test --no-default-features --features $(NATIVE_FEATURES)

## The library (worker feature) builds for Workers.
build-wasm:
	$(CARGO) build --target $(WASM_TARGET) --features worker
	$(CARGO) build --target $(WASM_TARGET) --no-default-features --features worker

fuzz-smoke:
	bash scripts/fuzz.sh smoke

## Long fuzz run; records executions and crashes in RELIABILITY.md.
fuzz:
	bash scripts/fuzz.sh long

e2e:
	bash scripts/e2e.sh

## Regenerate the committed JSON Schemas in schemas/ (and interop/cases.json, the values the
## interop checks validate).
schemas:
	UPDATE_SCHEMAS=1 $(CARGO) test --test schemas

## Every file in schemas/ compiles in Ajv 2020 strict (+ ajv-formats) and Python's jsonschema, and
## the stored values of interop/cases.json get the Rust verdicts in both; runs docs/interop.md's
## Python example. Installs ajv (npm ci) and jsonschema (.venv-interop) when missing.
interop-schemas:
	bash scripts/interop-schemas.sh

## Benchmarks → BENCHMARKS.md (not part of `make test`).
bench:
	bash scripts/bench.sh
