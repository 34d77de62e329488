#!/usr/bin/env bash
# `wrangler kv key ...` against the example worker's LOCAL KV, i.e. the namespace `wrangler dev`
# serves (the binding's preview_id) in $WRANGLER_PERSIST_DIR (default .wrangler/state; inside
# scripts/with-worker.sh it is the running worker's state dir). Works while the worker is running:
# the worker sees a write on its next read. Binding defaults to KV (pass --binding CACHE for the other).
#   scripts/worker-kv.sh put KEY --path FILE [--metadata JSON] [--ttl SECONDS]   # binary safe
#   scripts/worker-kv.sh put KEY 'text value'
#   scripts/worker-kv.sh get KEY > FILE                                          # binary safe
#   scripts/worker-kv.sh list [--prefix P]
#   scripts/worker-kv.sh delete KEY
#   scripts/worker-kv.sh bulk-put FILE       # [{"key","value","metadata"?}], UTF-8 text values only
# Do not seed binary values with `bulk-put`: wrangler 4.86 decodes "base64": true entries into a
# UTF-8 string locally, corrupting non-UTF-8 bytes. JSON envelopes are text and bulk-put fine,
# many keys in one wrangler start.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/worker-env.sh"

[[ $# -ge 1 ]] || die "usage: $0 put|get|list|delete [ARGS...]"
sub=$1; shift
binding=(--binding KV)
for arg in "$@"; do
    [[ "$arg" == --binding || "$arg" == --binding=* || "$arg" == --namespace-id* ]] && binding=()
done
# Relative --path values are relative to the caller's directory, not the worker's.
args=()
while [[ $# -gt 0 ]]; do
    if [[ "$1" == --path && $# -ge 2 ]]; then
        args+=(--path "$(realpath "$2")"); shift 2
    else
        args+=("$1"); shift
    fi
done

mkdir -p "$WRANGLER_PERSIST_DIR"
cd "$WORKER_DIR"
if [[ $sub == bulk-put ]]; then
    exec "$NODE_BIN/wrangler" kv bulk put "${args[@]}" "${binding[@]}" \
        --local --preview --persist-to "$WRANGLER_PERSIST_DIR"
fi
# --preview: `wrangler dev` binds the preview_id namespace, and wrangler refuses to guess when a
# binding has both ids. `get` prints nothing but the raw value on stdout.
exec "$NODE_BIN/wrangler" kv key "$sub" "${args[@]}" "${binding[@]}" \
    --local --preview --persist-to "$WRANGLER_PERSIST_DIR"
