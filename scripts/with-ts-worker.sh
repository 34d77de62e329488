#!/usr/bin/env bash
# Runs a command against the TypeScript example worker (examples/ts-worker) served by its own
# `wrangler dev` process on workerd, on the SAME local KV as the Rust demo when nested in
# scripts/with-worker.sh:
#   scripts/with-worker.sh scripts/with-ts-worker.sh COMMAND [ARGS...]   # both workers, one KV
#   scripts/with-ts-worker.sh COMMAND [ARGS...]                          # TS worker alone
# Two `wrangler dev` processes share local KV when they are given the same --persist-to (and the
# namespaces the same preview_id, which local dev binds): this script reuses the inherited
# WRANGLER_PERSIST_DIR (with-worker.sh exports its state dir) and needs its own HTTP port and its
# own inspector port (wrangler's default, 9229, is taken by the first process). Waits for
# GET /healthz, runs COMMAND with these variables exported, and on every exit path kills the whole
# process group (wrangler, esbuild, workerd). Exits with COMMAND's status.
#   TS_WORKER_URL         e.g. http://127.0.0.1:38124 (the name can be changed, see below)
#   WRANGLER_PERSIST_DIR  the shared local KV state (seed it with scripts/worker-kv.sh)
#   REPO_ROOT
# Environment knobs:
#   WRANGLER_PERSIST_DIR  reuse this state dir (kept); default: a fresh one under .wrangler/tmp/,
#                         removed on exit unless KEEP_WORKER_STATE=1
#   TS_WORKER_URL_VAR     export the URL under this name instead (e.g. to nest this script in
#                         itself for a second TS worker process); not passed on to COMMAND
#   WORKER_START_TIMEOUT  seconds to wait for /healthz (default 60)
set -euo pipefail
persist_from_env="${WRANGLER_PERSIST_DIR:-}"
source "$(dirname "${BASH_SOURCE[0]}")/worker-env.sh"
TS_WORKER_DIR="$REPO_ROOT/examples/ts-worker"
url_var="${TS_WORKER_URL_VAR:-TS_WORKER_URL}"
unset TS_WORKER_URL_VAR
[[ "$url_var" =~ ^[A-Z_][A-Z0-9_]*$ ]] || die "TS_WORKER_URL_VAR must be a variable name"

[[ "${1:-}" == -h || "${1:-}" == --help ]] && { sed -n '2,25p' "$0"; exit 0; }
[[ $# -gt 0 ]] || die "usage: $0 COMMAND [ARGS...]"
[[ -x "$NODE_BIN/wrangler" ]] || die "wrangler missing: run npm ci at the repository root"
[[ -f "$REPO_ROOT/ts/generated/index.js" ]] || die "ts/generated missing: npm run generate --workspace ts"

mkdir -p "$REPO_ROOT/.wrangler/tmp"
remove_state=""
if [[ -z "$persist_from_env" ]]; then
    WRANGLER_PERSIST_DIR=$(mktemp -d "$REPO_ROOT/.wrangler/tmp/state.XXXXXX")
    [[ "${KEEP_WORKER_STATE:-0}" == 1 ]] || remove_state=$WRANGLER_PERSIST_DIR
fi
export WRANGLER_PERSIST_DIR

port=$(free_port)
inspector_port=$(free_port)
while [[ "$inspector_port" == "$port" ]]; do inspector_port=$(free_port); done
url="http://127.0.0.1:$port"
export REPO_ROOT
logfile=$(mktemp "$REPO_ROOT/.wrangler/tmp/wrangler-dev-ts.XXXXXX.log")

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

cd "$TS_WORKER_DIR"
# setsid + watchdog as in scripts/with-worker.sh: the group is killed as one, and dies with us.
setsid bash -c '
    parent=$1; shift
    "$@" &
    child=$!
    while kill -0 "$parent" 2>/dev/null && kill -0 "$child" 2>/dev/null; do sleep 1; done
    kill -TERM -- "-$$" 2>/dev/null
' with-ts-worker-watchdog "$$" \
    "$NODE_BIN/wrangler" dev --local --ip 127.0.0.1 --port "$port" --inspector-port "$inspector_port" \
    --persist-to "$WRANGLER_PERSIST_DIR" --show-interactive-dev-session=false \
    </dev/null >"$logfile" 2>&1 &
wrangler_pid=$!
wrangler_pgid=$(ps -o pgid= -p "$wrangler_pid" | tr -d ' ') || wrangler_pgid=$wrangler_pid
cd "$REPO_ROOT"

timeout="${WORKER_START_TIMEOUT:-60}"
deadline=$((SECONDS + timeout))
until [[ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$url/healthz" || true)" == 200 ]]; do
    if ! kill -0 "$wrangler_pid" 2>/dev/null; then
        log "wrangler dev (ts-worker) exited before /healthz answered; its log:"
        cat "$logfile" >&2
        exit 1
    fi
    if ((SECONDS >= deadline)); then
        log "no 200 from $url/healthz after $timeout s; wrangler log:"
        cat "$logfile" >&2
        exit 1
    fi
    sleep 0.5
done
export "$url_var=$url"
log "ts-worker up at $url as \$$url_var (pgid $wrangler_pgid, KV state $WRANGLER_PERSIST_DIR)"

set +e
"$@"
status=$?
set -e
if [[ $status != 0 && "${WORKER_LOG_ON_FAILURE:-1}" == 1 ]]; then
    log "command failed ($status); ts-worker wrangler log:"
    cat "$logfile" >&2
fi
exit "$status"
