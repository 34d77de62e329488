#!/usr/bin/env bash
# End-to-end tests of the TypeScript worker (examples/ts-worker) that need no Rust build: two TS
# worker processes (`wrangler dev` each, same --persist-to, same key ring; the second one reads
# values in clear, SEAL_REQUIRE_SEALED=off) plus wrangler's CLI writing into the same local KV, and
# every e2e/ts/*.test.mjs run with Node's test runner. The tests that also need
# the Rust demo are e2e/interop.test.mjs (scripts/e2e.sh with the TS worker nested: see
# scripts/with-ts-worker.sh). Nothing is optional: a missing tool is an error.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/worker-env.sh"
cd "$REPO_ROOT"
command -v node >/dev/null || die "node not found (Node >= 20 is needed)"
[[ -x "$NODE_BIN/wrangler" ]] || die "wrangler missing: run npm ci at the repository root"
# The worker's key ring: the public TEST ring of interop/sealed.json (unless TS_WORKER_DEV_VARS
# names another file), so the tests plant frames the Rust side sealed and seal with the same keys.
if [[ -z "${TS_WORKER_DEV_VARS:-}" ]]; then
    mkdir -p "$REPO_ROOT/.wrangler/tmp"
    TS_WORKER_DEV_VARS="$REPO_ROOT/.wrangler/tmp/e2e-ts.dev.vars"
    node -e 'const g = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
             for (const [k, v] of Object.entries(g.env)) console.log(`${k}=${v}`);' \
        "$REPO_ROOT/interop/sealed.json" >"$TS_WORKER_DEV_VARS"
    export TS_WORKER_DEV_VARS
fi
read -r -a files <<<"${E2E_FILES:-$(echo e2e/ts/*.test.mjs)}"
# The outer script serves the second worker (exported as SECOND_TS_WORKER_URL) and the fresh
# state dir; the inner one inherits the dir and serves TS_WORKER_URL. Same ring, two settings:
# TS_WORKER_URL refuses values in clear (the library's default, `not_sealed`), the second worker
# reads them (SEAL_REQUIRE_SEALED=off, the migration path), so the tests check both on one KV.
TS_WORKER_URL_VAR=SECOND_TS_WORKER_URL TS_WORKER_VARS=SEAL_REQUIRE_SEALED=off exec "$REPO_ROOT/scripts/with-ts-worker.sh" \
    "$REPO_ROOT/scripts/with-ts-worker.sh" \
    node --test --test-reporter=tap --test-concurrency=1 --test-timeout=180000 "${files[@]}"
