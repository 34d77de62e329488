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

start_wrangler_dev worker "$WORKER_DIR" "$logfile" "${PORT:-}" --persist-to "$WRANGLER_PERSIST_DIR" \
    ${secrets[@]+"${secrets[@]}"} ${WORKER_VAR_ARGS[@]+"${WORKER_VAR_ARGS[@]}"}
export WORKER_URL="$dev_url"
# The worker's log, for tests that check what never reaches it (stored values, secrets).
export WORKER_LOG_FILE="$logfile"
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
