#!/usr/bin/env bash
# Runs a command against the example worker served by `wrangler dev` on workerd:
#   scripts/with-worker.sh [--no-build] [--] COMMAND [ARGS...]
# Builds the worker (unless --no-build), starts wrangler dev on a free loopback port in its own
# process group, waits for GET /healthz to answer 200, runs COMMAND with these variables exported,
# and on exit (normal, error, INT or TERM) kills the whole group: wrangler, its esbuild service
# and the workerd children. Exits with COMMAND's status.
#   WORKER_URL            e.g. http://127.0.0.1:38123
#   WRANGLER_PERSIST_DIR  the worker's local KV state; seed it while the worker runs with
#                         scripts/worker-kv.sh put KEY --path FILE   (binary safe)
#   WORKER_DIR, REPO_ROOT
#   WORKER_SECRETS_FILE   the file the worker's secrets (sealing keys) came from: .dev.vars or
#                         WORKER_ENV_FILE (tests open sealed values with it: kv-seed open)
#   TS_WORKER_DEV_VARS    the same file unless already set: a nested scripts/with-ts-worker.sh
#                         gives the TypeScript worker the same key ring
# Environment knobs:
#   WORKER_EXAMPLE        which Rust worker under examples/: worker (default, the demo) or
#                         axum-worker (scripts/worker-env.sh); its .dev.vars, wrangler.toml, build/
#   WRANGLER_PERSIST_DIR  reuse this state dir (kept afterwards); default: a fresh one under
#                         .wrangler/tmp/, removed on exit unless KEEP_WORKER_STATE=1
#   WORKER_START_TIMEOUT  seconds to wait for /healthz (default 60)
#   PORT                  port to use instead of a free one
#   WORKER_ENV_FILE       read the worker's secrets from this file (wrangler --env-file) instead of
#                         examples/worker/.dev.vars; otherwise .dev.vars is created if absent, with
#                         a fresh random sealing key (SEAL_KEYS=k1, SEAL_KEY_k1)
#   WORKER_VARS           "NAME=VALUE ..." plain vars over the secrets (wrangler --var), e.g.
#                         WORKER_VARS=SEAL=off for sessions in clear; never put a key here (argv)
set -euo pipefail
persist_from_env="${WRANGLER_PERSIST_DIR:-}"
source "$(dirname "${BASH_SOURCE[0]}")/worker-env.sh"

build=1
while [[ $# -gt 0 ]]; do
    case "$1" in
        --no-build) build=0; shift ;;
        --) shift; break ;;
        -h|--help) sed -n '2,27p' "$0"; exit 0 ;;
        *) break ;;
    esac
done
[[ $# -gt 0 ]] || die "usage: $0 [--no-build] [--] COMMAND [ARGS...]"

if [[ $build == 1 ]]; then
    "$REPO_ROOT/scripts/build-worker.sh"
fi
[[ -f "$WORKER_DIR/build/worker/shim.mjs" ]] || die "worker not built: run scripts/build-worker.sh"
[[ -x "$NODE_BIN/wrangler" ]] || die "wrangler missing: run scripts/setup-worker-toolchain.sh"

secrets=()
if [[ -n "${WORKER_ENV_FILE:-}" ]]; then
    [[ -f "$WORKER_ENV_FILE" ]] || die "WORKER_ENV_FILE $WORKER_ENV_FILE does not exist"
    WORKER_SECRETS_FILE=$(realpath "$WORKER_ENV_FILE")
    secrets=(--env-file "$WORKER_SECRETS_FILE")
else
    ensure_dev_vars
    WORKER_SECRETS_FILE=$DEV_VARS
fi
export WORKER_SECRETS_FILE
# A TypeScript worker nested in COMMAND (scripts/with-ts-worker.sh) gets the same key ring.
export TS_WORKER_DEV_VARS="${TS_WORKER_DEV_VARS:-$WORKER_SECRETS_FILE}"
worker_var_args

mkdir -p "$REPO_ROOT/.wrangler/tmp"
remove_state=""
if [[ -z "$persist_from_env" ]]; then
    WRANGLER_PERSIST_DIR=$(mktemp -d "$REPO_ROOT/.wrangler/tmp/state.XXXXXX")
    [[ "${KEEP_WORKER_STATE:-0}" == 1 ]] || remove_state=$WRANGLER_PERSIST_DIR
fi
export WRANGLER_PERSIST_DIR

port="${PORT:-$(free_port)}"
# Its own inspector port too: wrangler's default (9229) would collide with a second wrangler dev
# (scripts/with-ts-worker.sh, or another run on the machine).
inspector_port=$(free_port)
while [[ "$inspector_port" == "$port" ]]; do inspector_port=$(free_port); done
export WORKER_URL="http://127.0.0.1:$port"
export WORKER_DIR REPO_ROOT
logfile=$(mktemp "$REPO_ROOT/.wrangler/tmp/wrangler-dev.XXXXXX.log")

wrangler_pgid=""
cleanup() {
    local status=$?
    trap - EXIT INT TERM
    if [[ -n "$wrangler_pgid" ]]; then
        stop_group "$wrangler_pgid"
    fi
    [[ -z "$remove_state" ]] || rm -rf "$remove_state"
    rm -f "$logfile"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

cd "$WORKER_DIR"
# setsid: wrangler and everything it spawns (a second node process, esbuild, two workerd) get their
# own process group, killed as one by cleanup(); killing only wrangler's pid would orphan workerd.
# No fork happens (a background job of a non-interactive shell is not a group leader), so $! is the
# group id. The small bash wrapper is a watchdog: if this script dies without running its trap
# (SIGKILL), or wrangler exits by itself, it takes the whole group down.
setsid bash -c '
    parent=$1; shift
    "$@" &
    child=$!
    while kill -0 "$parent" 2>/dev/null && kill -0 "$child" 2>/dev/null; do sleep 1; done
    kill -TERM -- "-$$" 2>/dev/null
' with-worker-watchdog "$$" \
    "$NODE_BIN/wrangler" dev --local --ip 127.0.0.1 --port "$port" --inspector-port "$inspector_port" \
    --persist-to "$WRANGLER_PERSIST_DIR" --show-interactive-dev-session=false \
    ${secrets[@]+"${secrets[@]}"} ${WORKER_VAR_ARGS[@]+"${WORKER_VAR_ARGS[@]}"} \
    </dev/null >"$logfile" 2>&1 &
wrangler_pid=$!
wrangler_pgid=$(ps -o pgid= -p "$wrangler_pid" | tr -d ' ') || wrangler_pgid=$wrangler_pid
cd "$REPO_ROOT"

timeout="${WORKER_START_TIMEOUT:-60}"
deadline=$((SECONDS + timeout))
until [[ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$WORKER_URL/healthz" || true)" == 200 ]]; do
    if ! kill -0 "$wrangler_pid" 2>/dev/null; then
        log "wrangler dev exited before /healthz answered; its log:"
        cat "$logfile" >&2
        exit 1
    fi
    if ((SECONDS >= deadline)); then
        log "no 200 from $WORKER_URL/healthz after $timeout s; wrangler log:"
        cat "$logfile" >&2
        exit 1
    fi
    sleep 0.5
done
log "worker up at $WORKER_URL (pgid $wrangler_pgid, KV state $WRANGLER_PERSIST_DIR)"

set +e
"$@"
status=$?
set -e
if [[ $status != 0 && "${WORKER_LOG_ON_FAILURE:-1}" == 1 ]]; then
    log "command failed ($status); wrangler log:"
    cat "$logfile" >&2
fi
exit "$status"
