# shellcheck shell=bash
# Sourced by the scripts/*worker* scripts: paths and environment for building and running the
# example worker (examples/worker) without any download outside the package registries.
# WORKER_EXAMPLE=axum-worker: the same for examples/axum-worker (any Rust worker under examples/
# with its own Cargo.lock and wrangler.toml); the default is the demo, examples/worker.

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
WORKER_EXAMPLE="${WORKER_EXAMPLE:-worker}"
[[ "$WORKER_EXAMPLE" =~ ^[a-z0-9-]+$ && -f "$REPO_ROOT/examples/$WORKER_EXAMPLE/wrangler.toml" ]] || {
    printf '[%s] error: WORKER_EXAMPLE=%s is no examples/<name> with a wrangler.toml\n' "$(basename "$0")" "$WORKER_EXAMPLE" >&2
    exit 1
}
WORKER_DIR="$REPO_ROOT/examples/$WORKER_EXAMPLE"
# Project-local installs (cargo install --root), gitignored.
TOOLS_DIR="${KV_TOOLS_DIR:-$REPO_ROOT/.tools}"
NODE_BIN="$REPO_ROOT/node_modules/.bin"

# worker-build's minor version must equal the `worker` crate's minor version (it refuses others).
WORKER_BUILD_VERSION="${WORKER_BUILD_VERSION:-0.8.7}"

# worker-build looks up each external tool in <NAME>_BIN first, then in its cache, then downloads
# it from GitHub (unreachable here). Point all three at local installs.
export WASM_BINDGEN_BIN="$TOOLS_DIR/bin/wasm-bindgen"
export ESBUILD_BIN="$NODE_BIN/esbuild"
export WASM_OPT_BIN="$NODE_BIN/wasm-opt"

# The worker is its own workspace: worker-build and the size reports read examples/worker/target,
# so a CARGO_TARGET_DIR meant for the main crate must not redirect it.
unset CARGO_TARGET_DIR

export WRANGLER_SEND_METRICS=false
# Keep wrangler's own logs and config under the repo instead of ~/.wrangler or ~/.config.
export WRANGLER_LOG_PATH="${WRANGLER_LOG_PATH:-$REPO_ROOT/.wrangler/logs}"
# Default local persistence dir shared by `wrangler dev` and `wrangler kv ... --local`.
WRANGLER_PERSIST_DIR="${WRANGLER_PERSIST_DIR:-$REPO_ROOT/.wrangler/state}"

export PATH="$TOOLS_DIR/bin:$HOME/.cargo/bin:$PATH"

# The demo's local secrets (gitignored): its sealing key ring, SEAL_KEYS (ids, primary first) and
# SEAL_KEY_<id> (base64 of 32 bytes). `wrangler dev` reads it at start (unless given --env-file).
DEV_VARS="$WORKER_DIR/.dev.vars"

# Base64 of 32 random bytes: a fresh sealing key.
random_key() {
    openssl rand -base64 32 2>/dev/null ||
        node -e 'console.log(require("crypto").randomBytes(32).toString("base64"))'
}

# Creates examples/worker/.dev.vars with a fresh random key (SEAL_KEYS=k1) when it is absent, or
# adds one when the file exists without any SEAL_KEYS or SEAL line. Never prints a key.
ensure_dev_vars() {
    if [[ -f "$DEV_VARS" ]] && grep -Eq '^[[:space:]]*SEAL(_KEYS)?[[:space:]]*=' "$DEV_VARS"; then
        return 0
    fi
    local key
    key=$(random_key) || die "cannot draw a random key (neither openssl nor node works)"
    [[ ${#key} == 44 ]] || die "random key of unexpected length"
    (
        umask 077
        {
            echo "# Local secrets of the demo worker (gitignored; created by scripts/worker-env.sh)."
            echo "# Sealing key ring: ids, primary first; each key base64 of 32 bytes. SEAL=off: no sealing."
            echo "SEAL_KEYS=k1"
            echo "SEAL_KEY_k1=$key"
        } >>"$DEV_VARS"
    )
    log "wrote a fresh random sealing key to ${DEV_VARS#"$REPO_ROOT"/} (SEAL_KEYS=k1)"
}

# `--var NAME:VALUE` arguments for wrangler dev from WORKER_VARS="NAME=VALUE ..." (plain vars that
# override .dev.vars, e.g. WORKER_VARS=SEAL=off; argv is visible to `ps`: never a key here).
# The demo also gets DEV_MAGIC_LINKS=on, here only: local development is the one place its
# magic-link login shows the link on the page instead of mailing it (WORKER_VARS may turn it off).
worker_var_args() {
    local pair
    WORKER_VAR_ARGS=()
    [[ "$WORKER_EXAMPLE" != worker ]] || WORKER_VAR_ARGS+=(--var DEV_MAGIC_LINKS:on)
    for pair in ${WORKER_VARS:-}; do
        [[ "$pair" =~ ^[A-Z_][A-Z0-9_]*=.*$ ]] || die "WORKER_VARS: $pair is not NAME=VALUE"
        WORKER_VAR_ARGS+=(--var "${pair%%=*}:${pair#*=}")
    done
}

log() { printf '[%s] %s\n' "$(basename "$0")" "$*" >&2; }

# A free TCP port on the loopback interface (for wrangler dev and its inspector).
free_port() {
    node -e 'const s = require("net").createServer();
             s.listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close(); });'
}

# Stop a `wrangler dev` process group: SIGTERM first (wrangler shuts workerd down cleanly), then
# SIGKILL whatever is still alive after 5 s.
stop_group() {
    local pgid=$1
    kill -TERM -- "-$pgid" 2>/dev/null || true
    for _ in $(seq 50); do
        pgrep -g "$pgid" >/dev/null || break
        sleep 0.1
    done
    if pgrep -g "$pgid" >/dev/null; then
        log "wrangler group $pgid still alive after 5 s: SIGKILL"
        kill -KILL -- "-$pgid" 2>/dev/null || true
    fi
}
die() { log "error: $*"; exit 1; }

# Start `wrangler dev` in DIR (LABEL names it in messages) on loopback, with ARGS, its output to
# LOGFILE, and wait for GET /healthz to answer 200 (WORKER_START_TIMEOUT seconds, default 60); on
# failure print the log and exit 1. Sets dev_url, wrangler_pid and wrangler_pgid (for stop_group).
# Its port is PORT, or a free one when PORT is empty; the inspector gets a free port of its own
# (wrangler's default, 9229, would collide with a second wrangler dev nested in the first, or
# another run on the machine).
# setsid: wrangler and everything it spawns (a second node process, esbuild, two workerd) get their
# own process group, killed as one by stop_group; killing only wrangler's pid would orphan workerd.
# No fork happens (a background job of a non-interactive shell is not a group leader), so $! is the
# group id. The small bash wrapper is a watchdog: if the calling script dies without running its
# trap (SIGKILL), or wrangler exits by itself, it takes the whole group down.
# A port free_port found free is released again, and can be taken before workerd binds it
# (wrangler and workerd bind ephemeral ports of their own meanwhile; seen in a fresh-clone
# make test on 2026-12-03): when wrangler dies with "Address already in use", it is started again
# on fresh ports, up to 3 attempts in all (not with a PORT given, which nothing else chose).
# usage: start_wrangler_dev LABEL DIR LOGFILE PORT [ARGS...]
start_wrangler_dev() {
    local label=$1 dir=$2 logfile=$3 pinned=$4
    shift 4
    local attempt port inspector_port deadline timeout="${WORKER_START_TIMEOUT:-60}"
    for attempt in 1 2 3; do
        port="${pinned:-$(free_port)}"
        inspector_port=$(free_port)
        while [[ "$inspector_port" == "$port" ]]; do inspector_port=$(free_port); done
        dev_url="http://127.0.0.1:$port"
        cd "$dir"
        setsid bash -c '
            parent=$1; shift
            "$@" &
            child=$!
            while kill -0 "$parent" 2>/dev/null && kill -0 "$child" 2>/dev/null; do sleep 1; done
            kill -TERM -- "-$$" 2>/dev/null
        ' "$label-watchdog" "$$" \
            "$NODE_BIN/wrangler" dev --local --ip 127.0.0.1 --port "$port" --inspector-port "$inspector_port" \
            --show-interactive-dev-session=false "$@" \
            </dev/null >"$logfile" 2>&1 &
        wrangler_pid=$!
        wrangler_pgid=$(ps -o pgid= -p "$wrangler_pid" | tr -d ' ') || wrangler_pgid=$wrangler_pid
        cd "$REPO_ROOT"
        deadline=$((SECONDS + timeout))
        until [[ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$dev_url/healthz" || true)" == 200 ]]; do
            if ! kill -0 "$wrangler_pid" 2>/dev/null; then
                if [[ -z "$pinned" && $attempt -lt 3 ]] && grep -q 'Address already in use' "$logfile"; then
                    log "wrangler dev ($label): a port was taken before it bound it; again on fresh ports"
                    stop_group "$wrangler_pgid"
                    continue 2
                fi
                log "wrangler dev ($label) exited before /healthz answered; its log:"
                cat "$logfile" >&2
                exit 1
            fi
            if ((SECONDS >= deadline)); then
                log "no 200 from $dev_url/healthz ($label) after $timeout s; wrangler log:"
                cat "$logfile" >&2
                exit 1
            fi
            sleep 0.5
        done
        return 0
    done
}

# The wasm-bindgen version locked in examples/worker/Cargo.lock; the CLI must match it exactly.
locked_version() {
    awk -v name="$1" '
        $0 == "name = \"" name "\"" { found = 1; next }
        found && /^version = / { gsub(/^version = "|"$/, ""); print; exit }
    ' "$WORKER_DIR/Cargo.lock"
}

# Prints "<raw bytes> raw, <gzip bytes> gzip" for a file.
size_report() {
    local raw gz
    raw=$(wc -c <"$1")
    gz=$(gzip -9 -c "$1" | wc -c)
    printf '%s: %d bytes raw, %d bytes gzip -9 (%d KiB / %d KiB)\n' \
        "${1#"$REPO_ROOT"/}" "$raw" "$gz" $((raw / 1024)) $((gz / 1024))
}
