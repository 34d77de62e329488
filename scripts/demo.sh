#!/usr/bin/env bash
# Sets up the toolchain, builds the example worker and serves it with `wrangler dev` on workerd,
# with local KV persisted under .wrangler/state (override with WRANGLER_PERSIST_DIR).
#   PORT=8787 scripts/demo.sh
#   open http://127.0.0.1:8787/login (log in with any email), or with curl:
#   curl -i -X POST -H 'content-type: application/json' -d '{"email":"ada@example.com"}' http://127.0.0.1:8787/login
#   curl -i http://127.0.0.1:8787/popular      # x-cache: miss, then hit
#   curl http://127.0.0.1:8787/_stats
# docs/demo.md describes every route.
# Sessions are sealed with the key ring in examples/worker/.dev.vars (gitignored), created here with
# a fresh random key when absent. WORKER_VARS=SEAL=off serves them in clear (benchmarks);
# WORKER_VARS=SEAL_CACHE=on seals the cache entries too.
# wrangler reloads the worker when scripts/build-worker.sh rewrites build/ (wrangler.toml has no
# build command, so wrangler itself never runs worker-build or fetches anything).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/worker-env.sh"

"$REPO_ROOT/scripts/setup-worker-toolchain.sh"
"$REPO_ROOT/scripts/build-worker.sh"

ensure_dev_vars
worker_var_args
mkdir -p "$WRANGLER_PERSIST_DIR"
cd "$WORKER_DIR"
log "serving on http://127.0.0.1:${PORT:-8787} (KV persisted in $WRANGLER_PERSIST_DIR); Ctrl-C stops"
exec "$NODE_BIN/wrangler" dev --local --ip 127.0.0.1 --port "${PORT:-8787}" \
    --persist-to "$WRANGLER_PERSIST_DIR" ${WORKER_VAR_ARGS[@]+"${WORKER_VAR_ARGS[@]}"}
