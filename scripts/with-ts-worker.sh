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
#   TS_WORKER_VARS        non-secret vars of this worker only, space-separated NAME=VALUE (e.g.
#                         SEAL_REQUIRE_SEALED=off, the migration path that reads values in clear),
#                         handed to wrangler dev as --var; never a key (SEAL_KEY_*: use
#                         TS_WORKER_DEV_VARS); not passed on to COMMAND (a nested worker has none)
#   WORKER_START_TIMEOUT  seconds to wait for /healthz (default 60)
#   TS_WORKER_DEV_VARS    a dotenv file of the worker's local vars and secrets (its key ring:
#                         SEAL_KEYS, SEAL_KEY_<id>), handed to wrangler dev with --env-file and
#                         never copied; default: the Rust demo's examples/worker/.dev.vars when it
#                         exists (both workers then seal and open with one ring; SEAL_KEYS is also
#                         taken from the demo's wrangler.toml [vars] if the file lacks it);
#                         "none": no file (the worker has no key ring). Exported to COMMAND.
set -euo pipefail
persist_from_env="${WRANGLER_PERSIST_DIR:-}"
source "$(dirname "${BASH_SOURCE[0]}")/worker-env.sh"
TS_WORKER_DIR="$REPO_ROOT/examples/ts-worker"
url_var="${TS_WORKER_URL_VAR:-TS_WORKER_URL}"
unset TS_WORKER_URL_VAR
[[ "$url_var" =~ ^[A-Z_][A-Z0-9_]*$ ]] || die "TS_WORKER_URL_VAR must be a variable name"
read -r -a worker_vars <<<"${TS_WORKER_VARS:-}"
unset TS_WORKER_VARS
var_args=()
for nv in ${worker_vars[@]+"${worker_vars[@]}"}; do
    [[ "$nv" =~ ^([A-Za-z_][A-Za-z0-9_]*)=([A-Za-z0-9_.,-]*)$ ]] || die "TS_WORKER_VARS: $nv is not NAME=VALUE"
    [[ "${BASH_REMATCH[1]}" != *_KEY_* ]] || die "TS_WORKER_VARS: ${BASH_REMATCH[1]} looks like a key: put it in TS_WORKER_DEV_VARS"
    var_args+=(--var "${BASH_REMATCH[1]}:${BASH_REMATCH[2]}")
done

[[ "${1:-}" == -h || "${1:-}" == --help ]] && { sed -n '2,/^set -euo/{/^#/p}' "$0"; exit 0; }
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

# The key ring (and any other local secret): a file wrangler dev reads, never an argument (argv is
# visible to every process on the machine). Only key ids may go through --var.
dev_vars="${TS_WORKER_DEV_VARS:-}"
[[ -n "$dev_vars" || ! -f "$WORKER_DIR/.dev.vars" ]] || dev_vars="$WORKER_DIR/.dev.vars"
env_args=()
if [[ -n "$dev_vars" && "$dev_vars" != none ]]; then
    [[ -f "$dev_vars" ]] || die "TS_WORKER_DEV_VARS=$dev_vars: no such file"
    dev_vars=$(cd "$(dirname "$dev_vars")" && pwd)/$(basename "$dev_vars")
    env_args+=(--env-file "$dev_vars")
    if [[ "$dev_vars" == "$WORKER_DIR/.dev.vars" ]] && ! grep -q '^SEAL_KEYS *=' "$dev_vars"; then
        ids=$(sed -n 's/^SEAL_KEYS *= *"\([A-Za-z0-9_, ]*\)".*/\1/p' "$WORKER_DIR/wrangler.toml" | head -n 1)
        [[ -z "$ids" ]] || env_args+=(--var "SEAL_KEYS:$ids")
    fi
    export TS_WORKER_DEV_VARS="$dev_vars"
else
    export TS_WORKER_DEV_VARS=none
fi

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

start_wrangler_dev ts-worker "$TS_WORKER_DIR" "$logfile" "" --persist-to "$WRANGLER_PERSIST_DIR" \
    ${env_args[@]+"${env_args[@]}"} ${var_args[@]+"${var_args[@]}"}
export "$url_var=$dev_url"
log "ts-worker up at $dev_url as \$$url_var (pgid $wrangler_pgid, KV state $WRANGLER_PERSIST_DIR, dev vars: $TS_WORKER_DEV_VARS${worker_vars[*]+, vars: ${worker_vars[*]}})"

set +e
"$@"
status=$?
set -e
if [[ $status != 0 && "${WORKER_LOG_ON_FAILURE:-1}" == 1 ]]; then
    log "command failed ($status); ts-worker wrangler log:"
    cat "$logfile" >&2
fi
exit "$status"
