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
wrangler_pgid=""
cleanup() {
    local status=$?
    trap - EXIT INT TERM
    [[ -z "$wrangler_pgid" ]] || stop_group "$wrangler_pgid"
    rm -rf "$state" "$logfile"
    exit "$status"
}
trap cleanup EXIT INT TERM

start_wrangler_dev reference "$REPO_ROOT/bench/reference-worker" "$logfile" "${REFERENCE_PORT:-}" \
    --config "$REPO_ROOT/bench/reference-worker/wrangler.toml" --persist-to "$state"
export REFERENCE_URL="$dev_url"
log "reference worker up at $REFERENCE_URL"
"$@"
