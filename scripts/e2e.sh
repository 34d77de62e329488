#!/usr/bin/env bash
# End-to-end tests of the demo worker (`make e2e`, part of `make test`): builds the worker, the
# seed tool (e2e/seed, values built with kv-envelope itself) and the ops CLI (`kv-envelope`, driven
# by e2e/cli-roundtrip.test.mjs), serves the worker with `wrangler dev` on workerd via
# scripts/with-worker.sh (free port, fresh local KV, torn down on every exit path), and runs every
# e2e/*.test.mjs with Node's test runner (the TypeScript worker beside it, on the same local KV),
# one file at a time (they read the isolate's /_stats
# counters, so they must not interleave). Output ends with the runner's summary.
#
# Nothing is optional: a missing tool (node, cargo, the worker toolchain, Chromium) is an error,
# never a skip. Knobs: CHROMIUM_BIN (default /usr/bin/chromium), CARGO_TARGET_DIR for the seed
# tool and the CLI, E2E_FILES to run a subset (e.g. E2E_FILES=e2e/cache.test.mjs).
# Then the key rotation test (e2e/rotation.test.mjs, four worker restarts with other key rings on a
# KV of its own) through scripts/e2e-rotation.sh: part of the default run, or named in E2E_FILES.
# Then e2e/session-cap.test.mjs and e2e/magic-link.test.mjs on KV with CONFORMANCE=on (e2e-only
# knobs: a route that creates a user's sessions past the login limits; a link's `ttl_ms`).
# Then the session tests on Durable Objects: the demo again with SESSION_BACKEND=durable and
# CONFORMANCE=on (its own fresh local state) running e2e/durable/*.test.mjs and the files whose session tests need no KV
# planting (e2e/http.test.mjs, e2e/browser.test.mjs, e2e/devices.test.mjs, and the CONFORMANCE=on
# files above); alone: E2E_FILES=e2e/durable/sessions.test.mjs.
# e2e/durable/races.test.mjs and e2e/durable/expiry.test.mjs (the objects' alarm, about 70 s) get a
# demo of their own with a 10 s idle timeout (SESSION_IDLE_TIMEOUT_SECS) and session writes held
# back 200 ms (SESSION_WRITE_DELAY_MS), so a refresh straddles the logout it races.
# Last, the axum example worker's tests (e2e/axum*.test.mjs: examples/axum-worker, built and served
# on its own by WORKER_EXAMPLE=axum-worker scripts/with-worker.sh), e2e/axum-durable.test.mjs on a
# second run with SESSION_BACKEND=durable; alone: E2E_FILES=e2e/axum.test.mjs scripts/e2e.sh
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/worker-env.sh"
cd "$REPO_ROOT"

command -v node >/dev/null || die "node not found (Node >= 20 is needed)"
node_major=$(node -p 'process.versions.node.split(".")[0]')
((node_major >= 20)) || die "Node $(node --version) is too old: the tests need Node >= 20"
command -v cargo >/dev/null || die "cargo not found"
chromium_bin="${CHROMIUM_BIN:-/usr/bin/chromium}"
[[ -x "$chromium_bin" ]] || die "$chromium_bin not found: apt-get install -y chromium (or set CHROMIUM_BIN); the browser test never skips"
export CHROMIUM_BIN="$chromium_bin"

# Idempotent and quick when everything is there: wasm target, worker-build, wasm-bindgen-cli,
# npm packages (wrangler, esbuild, binaryen, playwright-core).
"$REPO_ROOT/scripts/setup-worker-toolchain.sh"
[[ -f "$REPO_ROOT/node_modules/playwright-core/package.json" ]] || die "playwright-core missing from node_modules"

log "building the seed tool (e2e/seed)"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$REPO_ROOT/target}"
cargo build --quiet --locked --manifest-path "$REPO_ROOT/e2e/seed/Cargo.toml" ||
    die "building e2e/seed failed (if its Cargo.lock is stale after a library dependency change:" \
        "cargo update --workspace --manifest-path e2e/seed/Cargo.toml, and commit the lock)"
export KV_SEED_BIN="$CARGO_TARGET_DIR/debug/kv-seed"
[[ -x "$KV_SEED_BIN" ]] || die "seed tool not built at $KV_SEED_BIN"

# The crate's own ops CLI (docs/cli.md), driven by e2e/cli-roundtrip.test.mjs against the local KV.
log "building the ops CLI (kv-envelope, crates/kv-envelope-cli)"
cargo build --quiet --locked -p kv-envelope-cli --bin kv-envelope || die "building the kv-envelope CLI failed"
export KV_ENVELOPE_BIN="$CARGO_TARGET_DIR/debug/kv-envelope"
[[ -x "$KV_ENVELOPE_BIN" ]] || die "kv-envelope CLI not built at $KV_ENVELOPE_BIN"

read -r -a listed <<<"${E2E_FILES:-$(echo e2e/*.test.mjs e2e/durable/*.test.mjs)}"
files=()
axum_files=()
axum_durable=()
durable_files=()
durable_races=()
cap_files=()
rotation=0
for f in "${listed[@]}"; do
    case "$f" in
        *rotation.test.mjs) rotation=1 ;;
        *session-cap.test.mjs | *magic-link.test.mjs) cap_files+=("$f") ;;
        *axum-durable.test.mjs) axum_durable+=("$f") ;;
        *axum*.test.mjs) axum_files+=("$f") ;;
        */durable/races.test.mjs | */durable/expiry.test.mjs) durable_races+=("$f") ;;
        */durable/*.test.mjs) durable_files+=("$f") ;;
        *) files+=("$f") ;;
    esac
done
# The demo's KV-free session files run on the objects too, whenever a durable file runs; so
# does the session cap's file, which also gets a KV run of its own (both need CONFORMANCE=on).
((${#durable_files[@]} == 0)) || durable_files+=(e2e/http.test.mjs e2e/browser.test.mjs e2e/devices.test.mjs)
((${#cap_files[@]} == 0)) || durable_files+=("${cap_files[@]}")
((${#files[@]} + ${#axum_files[@]} + ${#axum_durable[@]} + ${#durable_files[@]} + ${#durable_races[@]} + rotation > 0)) ||
    die "no e2e/*.test.mjs files"
# TAP reporter: the output ends with node's summary (# tests, # pass, # fail, ...).
# The TypeScript worker (examples/ts-worker) runs beside the demo on the same local KV, for
# e2e/interop.test.mjs (scripts/with-ts-worker.sh inherits the state dir, exports TS_WORKER_URL).
[[ -f "$REPO_ROOT/ts/generated/index.js" ]] || die "ts/generated missing: npm run generate --workspace ts"
# The demo (for its files and the rotation test); the axum worker is built by its own run below.
((${#files[@]} + ${#durable_files[@]} + ${#durable_races[@]} + ${#cap_files[@]} + rotation == 0)) || "$REPO_ROOT/scripts/build-worker.sh"
status=0
if ((${#files[@]} > 0)); then
    "$REPO_ROOT/scripts/with-worker.sh" --no-build "$REPO_ROOT/scripts/with-ts-worker.sh" \
        node --test --test-reporter=tap --test-concurrency=1 --test-timeout=180000 "${files[@]}" || status=$?
fi
if ((rotation)); then
    "$REPO_ROOT/scripts/e2e-rotation.sh" || status=$?
fi
if ((${#cap_files[@]} > 0)); then
    log "the session cap on KV (CONFORMANCE=on: sessions created past the login limits)"
    WORKER_VARS="CONFORMANCE=on ${WORKER_VARS:-}" "$REPO_ROOT/scripts/with-worker.sh" --no-build \
        node --test --test-reporter=tap --test-concurrency=1 --test-timeout=180000 "${cap_files[@]}" || status=$?
fi
if ((${#durable_files[@]} > 0)); then
    log "session tests on Durable Objects (SESSION_BACKEND=durable)"
    WORKER_VARS="SESSION_BACKEND=durable CONFORMANCE=on ${WORKER_VARS:-}" "$REPO_ROOT/scripts/with-worker.sh" --no-build \
        node --test --test-reporter=tap --test-concurrency=1 --test-timeout=180000 "${durable_files[@]}" || status=$?
fi
if ((${#durable_races[@]} > 0)); then
    log "refresh races and the alarm on Durable Objects (SESSION_BACKEND=durable, SESSION_IDLE_TIMEOUT_SECS=10, SESSION_WRITE_DELAY_MS=200)"
    WORKER_VARS="SESSION_BACKEND=durable SESSION_IDLE_TIMEOUT_SECS=10 SESSION_WRITE_DELAY_MS=200 ${WORKER_VARS:-}" \
        "$REPO_ROOT/scripts/with-worker.sh" --no-build \
        node --test --test-reporter=tap --test-concurrency=1 --test-timeout=180000 "${durable_races[@]}" || status=$?
fi
# The axum example worker: its own build, wrangler dev and fresh local KV (sequential, never beside
# the demo: the files read /_stats counters).
if ((${#axum_files[@]} > 0)); then
    WORKER_EXAMPLE=axum-worker "$REPO_ROOT/scripts/with-worker.sh" \
        node --test --test-reporter=tap --test-concurrency=1 --test-timeout=180000 "${axum_files[@]}" || status=$?
fi
# Then the axum worker again with its sessions in Durable Objects (built above when the KV run ran).
if ((${#axum_durable[@]} > 0)); then
    log "the axum worker with sessions on Durable Objects (SESSION_BACKEND=durable)"
    build=()
    ((${#axum_files[@]} == 0)) || build=(--no-build)
    WORKER_EXAMPLE=axum-worker WORKER_VARS="SESSION_BACKEND=durable ${WORKER_VARS:-}" \
        "$REPO_ROOT/scripts/with-worker.sh" "${build[@]}" \
        node --test --test-reporter=tap --test-concurrency=1 --test-timeout=180000 "${axum_durable[@]}" || status=$?
fi
exit "$status"
