#!/usr/bin/env bash
# Runs a command against the TypeScript reference worker (bench/reference-worker) served by
# `wrangler dev` on workerd with its own fresh local KV:
#   bench/with-reference-worker.sh [--] COMMAND [ARGS...]
# Exports REFERENCE_URL; kills the whole wrangler process group on exit. Same approach as
# scripts/with-worker.sh (which runs the demo worker): the two nest.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/worker-env.sh"
[[ "${1:-}" == "--" ]] && shift
[[ $# -gt 0 ]] || die "usage: $0 [--] COMMAND [ARGS...]"
[[ -x "$NODE_BIN/wrangler" ]] || die "wrangler missing: run scripts/setup-worker-toolchain.sh"

mkdir -p "$REPO_ROOT/.wrangler/tmp"
state=$(mktemp -d "$REPO_ROOT/.wrangler/tmp/reference-state.XXXXXX")
logfile=$(mktemp "$REPO_ROOT/.wrangler/tmp/reference-dev.XXXXXX.log")
port="${REFERENCE_PORT:-$(node -e 'const s = require("net").createServer();
    s.listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close(); });')}"
export REFERENCE_URL="http://127.0.0.1:$port"

pgid=""
cleanup() {
    local status=$?
    trap - EXIT INT TERM
    if [[ -n "$pgid" ]]; then
        kill -TERM -- "-$pgid" 2>/dev/null || true
        for _ in 1 2 3 4 5 6 7 8 9 10; do kill -0 -- "-$pgid" 2>/dev/null || break; sleep 0.3; done
        kill -KILL -- "-$pgid" 2>/dev/null || true
    fi
    rm -rf "$state" "$logfile"
    exit "$status"
}
trap cleanup EXIT INT TERM

# Own process group (setsid), watched: if this script dies, the group goes too.
setsid bash -c '
    parent=$1; shift
    "$@" &
    child=$!
    while kill -0 "$parent" 2>/dev/null && kill -0 "$child" 2>/dev/null; do sleep 1; done
    kill -TERM -- "-$$" 2>/dev/null
' reference-watchdog "$$" \
    "$NODE_BIN/wrangler" dev --config "$REPO_ROOT/bench/reference-worker/wrangler.toml" --local \
    --ip 127.0.0.1 --port "$port" --persist-to "$state" --show-interactive-dev-session=false \
    </dev/null >"$logfile" 2>&1 &
pid=$!
pgid=$(ps -o pgid= -p "$pid" | tr -d ' ') || pgid=$pid

deadline=$((SECONDS + ${WORKER_START_TIMEOUT:-60}))
until [[ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$REFERENCE_URL/healthz" || true)" == 200 ]]; do
    if ! kill -0 "$pid" 2>/dev/null || ((SECONDS >= deadline)); then
        log "reference worker did not come up; wrangler log:"
        cat "$logfile" >&2
        exit 1
    fi
    sleep 0.5
done
log "reference worker up at $REFERENCE_URL"
"$@"
