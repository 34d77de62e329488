#!/usr/bin/env bash
# Smoke test of the demo worker on workerd (seconds; the full suite is scripts/e2e.sh). Run it
# through scripts/with-worker.sh:
#   scripts/with-worker.sh scripts/worker-smoke.sh
# Checks /healthz, the pages and /_stats, and that the local KV the worker runs on takes and returns
# binary values through `wrangler kv key put/get --local` (scripts/worker-kv.sh) while it runs.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/worker-env.sh"
: "${WORKER_URL:?run me through scripts/with-worker.sh}"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
passed=0 failed=0
check() {
    local name=$1; shift
    if "$@"; then passed=$((passed + 1)); log "ok: $name"
    else failed=$((failed + 1)); log "FAILED: $name"; fi
}
status_of() { curl -s -o "$tmp/body" -w '%{http_code}' "$@"; }

check "healthz answers 200 ok" \
    bash -c '[[ "$(curl -s -w " %{http_code}" "$1/healthz")" == "ok 200" ]]' _ "$WORKER_URL"
check "GET /login is a page" test "$(status_of "$WORKER_URL/login")" = 200
check "GET /me without a session redirects" test "$(status_of "$WORKER_URL/me")" = 302
check "GET /_stats answers" test "$(status_of "$WORKER_URL/_stats")" = 200

# Every byte value, plus a NUL and invalid UTF-8, so any text conversion on the way shows.
printf '%b' "$(printf '\\x%02x' $(seq 0 255))" >"$tmp/bytes"
head -c 4096 /dev/urandom >>"$tmp/bytes"
printf '\xff\xfe\x00' >>"$tmp/bytes"
check "wrangler kv key put --local --path seeds while the worker runs" \
    bash -c '"$1/scripts/worker-kv.sh" put smoke-seeded --path "$2/bytes" >/dev/null 2>"$2/kv.log" || { cat "$2/kv.log" >&2; exit 1; }' _ "$REPO_ROOT" "$tmp"
check "wrangler kv key get --local returns the same bytes" \
    bash -c '"$1/scripts/worker-kv.sh" get smoke-seeded 2>/dev/null | cmp -s - "$2/bytes"' _ "$REPO_ROOT" "$tmp"

echo "worker-smoke: $passed passed, $failed failed"
[[ $failed == 0 ]]
