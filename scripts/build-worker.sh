#!/usr/bin/env bash
# Builds examples/worker in release mode with worker-build (cargo -> wasm-bindgen -> wasm-opt -Oz ->
# esbuild), using only local tools (see scripts/worker-env.sh), and prints the final .wasm size.
# Output: examples/worker/build/ (index.js, index_bg.wasm, worker/shim.mjs = wrangler's main).
# WORKER_EXAMPLE=axum-worker builds examples/axum-worker instead (scripts/worker-env.sh).
# Run scripts/setup-worker-toolchain.sh first (scripts/demo.sh and scripts/with-worker.sh do).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/worker-env.sh"

for tool in "$TOOLS_DIR/bin/worker-build" "$WASM_BINDGEN_BIN" "$ESBUILD_BIN" "$WASM_OPT_BIN"; do
    [[ -x "$tool" ]] || die "$tool missing: run scripts/setup-worker-toolchain.sh"
done

# The CLI is pinned to the demo's lock; any other example must lock the same wasm-bindgen.
if [[ "$WORKER_EXAMPLE" != worker ]]; then
    demo_wb=$(WORKER_DIR="$REPO_ROOT/examples/worker" locked_version wasm-bindgen)
    [[ "$(locked_version wasm-bindgen)" == "$demo_wb" ]] ||
        die "examples/$WORKER_EXAMPLE/Cargo.lock locks wasm-bindgen $(locked_version wasm-bindgen), the toolchain $demo_wb"
fi

cd "$WORKER_DIR"
log "worker-build --release in $WORKER_DIR"
start=$SECONDS
# --locked: never rewrite the committed Cargo.lock behind the CLI version check's back.
"$TOOLS_DIR/bin/worker-build" --release --locked
log "built in $((SECONDS - start)) s"

wasm=$(find "$WORKER_DIR/build" -maxdepth 1 -name '*.wasm' | head -n 1)
[[ -n "$wasm" ]] || die "no .wasm in $WORKER_DIR/build"

# worker-build always runs wasm-opt with --debuginfo, which keeps the name section (function
# names: ~18% of this worker, ~650 KB raw). Rewrite without it unless KEEP_WASM_NAMES=1 (readable
# panic traces while debugging). Same feature flags as worker-build, so no newer encodings appear.
if [[ "${KEEP_WASM_NAMES:-0}" != 1 ]]; then
    log "before stripping names: $(size_report "$wasm")"
    features=(mutable-globals sign-ext nontrapping-float-to-int bulk-memory multivalue reference-types exception-handling)
    "$WASM_OPT_BIN" "$wasm" -o "$wasm.stripped" --strip-debug --strip-producers "${features[@]/#/--enable-}"
    mv "$wasm.stripped" "$wasm"
fi
size_report "$wasm"
