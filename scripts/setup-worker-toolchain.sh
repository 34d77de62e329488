#!/usr/bin/env bash
# Usage: scripts/setup-worker-toolchain.sh [CRATE_DIR]
# Installs what building and running a worker needs, skipping what is already there:
#   - the wasm32-unknown-unknown rustup target
#   - worker-build (cargo install) into .tools/
#   - wasm-bindgen-cli (cargo install) into .tools/, at exactly the wasm-bindgen version locked in
#     the worker's Cargo.lock: CRATE_DIR's (your own worker crate; `cargo fetch` there first writes
#     the lock), else the example's (examples/worker, or WORKER_EXAMPLE's)
#   - the npm devDependencies (wrangler + workerd, esbuild, binaryen's wasm-opt, playwright-core)
# Only package registries are used (cargo and npm). Idempotent and quick when all is present.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/worker-env.sh"

command -v cargo >/dev/null || die "cargo not found (install Rust via rustup)"
if (($# > 0)); then
    [[ -d "$1" ]] || die "$1 is no directory (give your worker crate's directory)"
    WORKER_DIR=$(cd "$1" && pwd)
    [[ -f "$WORKER_DIR/Cargo.lock" ]] ||
        die "$WORKER_DIR has no Cargo.lock: run cargo fetch there first (the lock pins wasm-bindgen)"
    log "reading the versions from $WORKER_DIR/Cargo.lock"
fi
command -v node >/dev/null || die "node not found (Node >= 20.3 is needed for wrangler 4)"
command -v npm >/dev/null || die "npm not found"

# 1. wasm target
if rustup target list --installed | grep -qx wasm32-unknown-unknown; then
    log "ok: rustup target wasm32-unknown-unknown"
else
    log "installing rustup target wasm32-unknown-unknown"
    rustup target add wasm32-unknown-unknown
fi

# cargo install into .tools/, unless `<bin> --version` already reports the wanted version.
install_crate() {
    local crate=$1 version=$2 bin=$3 have=""
    if [[ -x "$TOOLS_DIR/bin/$bin" ]]; then
        have=$("$TOOLS_DIR/bin/$bin" --version 2>/dev/null | awk '{print $NF}') || have=""
    fi
    if [[ "$have" == "$version" ]]; then
        log "ok: $crate $version ($TOOLS_DIR/bin/$bin)"
        return
    fi
    log "installing $crate $version into $TOOLS_DIR (had: ${have:-none}); this compiles for a few minutes"
    local start=$SECONDS
    cargo install --locked --force --root "$TOOLS_DIR" "$crate" --version "=$version"
    log "installed $crate $version in $((SECONDS - start)) s"
}

# 2. worker-build; its minor version must match the locked `worker` crate's.
worker_version=$(locked_version worker)
[[ -n "$worker_version" ]] || die "no worker crate in $WORKER_DIR/Cargo.lock"
if [[ "${worker_version%.*}" != "${WORKER_BUILD_VERSION%.*}" ]]; then
    die "worker $worker_version is locked, but worker-build $WORKER_BUILD_VERSION is pinned: set WORKER_BUILD_VERSION to a ${worker_version%.*}.x release (and update scripts/worker-env.sh)"
fi
install_crate worker-build "$WORKER_BUILD_VERSION" worker-build

# 3. wasm-bindgen-cli at exactly the locked wasm-bindgen version (the CLI and the library must agree).
bindgen_version=$(locked_version wasm-bindgen)
[[ -n "$bindgen_version" ]] || die "no wasm-bindgen in $WORKER_DIR/Cargo.lock"
install_crate wasm-bindgen-cli "$bindgen_version" wasm-bindgen

# 4. npm devDependencies from the committed lock file. npm ci wipes node_modules, so only run it
#    when the lock is newer than the last install (npm writes node_modules/.package-lock.json).
hidden_lock="$REPO_ROOT/node_modules/.package-lock.json"
have_tools() { [[ -x "$NODE_BIN/wrangler" && -x "$NODE_BIN/wasm-opt" && -x "$NODE_BIN/esbuild" ]]; }
if [[ -f "$hidden_lock" && "$hidden_lock" -nt "$REPO_ROOT/package-lock.json" ]] && have_tools; then
    log "ok: node_modules up to date with package-lock.json"
elif [[ -L "$REPO_ROOT/node_modules" ]]; then
    # A git worktree sharing another checkout's install (ln -s): its package-lock.json is as new
    # as the checkout, so the mtime test above fails, and npm ci would empty the OTHER checkout's
    # node_modules through the link (then replace the link with a directory). Never reinstall it.
    have_tools || die "node_modules is a link to an install without wrangler/wasm-opt/esbuild: run npm ci where it points"
    log "ok: node_modules is a link to a shared install ($(readlink "$REPO_ROOT/node_modules")); not reinstalling"
else
    log "running npm ci in $REPO_ROOT"
    (cd "$REPO_ROOT" && npm ci --no-audit --no-fund)
fi

log "toolchain ready: worker-build $WORKER_BUILD_VERSION, wasm-bindgen $bindgen_version," \
    "wrangler $(node -p 'require(process.argv[1]).version' "$REPO_ROOT/node_modules/wrangler/package.json")," \
    "workerd $(node -p 'require(process.argv[1]).version' "$REPO_ROOT/node_modules/workerd/package.json")"
