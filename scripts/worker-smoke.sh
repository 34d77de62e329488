#!/usr/bin/env bash
# Smoke test of the example worker on workerd; run it through scripts/with-worker.sh:
#   scripts/with-worker.sh scripts/worker-smoke.sh
# Checks /healthz, a binary PUT/GET round trip through the worker's KV binding, a miss, and that a
# binary value seeded with `wrangler kv key put --local --path` while the worker runs is served.
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

# Every byte value, plus a NUL and invalid UTF-8, so any text conversion on the way shows.
printf '%b' "$(printf '\\x%02x' $(seq 0 255))" >"$tmp/bytes"
head -c 4096 /dev/urandom >>"$tmp/bytes"
check "PUT /kv/:key stores the body" \
    test "$(status_of -X PUT --data-binary @"$tmp/bytes" "$WORKER_URL/kv/smoke-roundtrip")" = 200
check "GET /kv/:key returns the same bytes" \
    bash -c '[[ "$(curl -s -o "$2/got" -w "%{http_code}" "$1/kv/smoke-roundtrip")" == 200 ]] && cmp -s "$2/got" "$2/bytes"' _ "$WORKER_URL" "$tmp"
check "GET of a missing key is 404" \
    test "$(status_of "$WORKER_URL/kv/smoke-missing-$RANDOM")" = 404

head -c 2048 /dev/urandom >"$tmp/seed"
printf '\xff\xfe\x00' >>"$tmp/seed"
check "wrangler kv key put --local --path seeds while the worker runs" \
    bash -c '"$1/scripts/worker-kv.sh" put smoke-seeded --path "$2/seed" >/dev/null 2>"$2/kv.log" || { cat "$2/kv.log" >&2; exit 1; }' _ "$REPO_ROOT" "$tmp"
check "the worker serves the seeded bytes" \
    bash -c '[[ "$(curl -s -o "$2/got2" -w "%{http_code}" "$1/kv/smoke-seeded")" == 200 ]] && cmp -s "$2/got2" "$2/seed"' _ "$WORKER_URL" "$tmp"
check "wrangler kv key get --local reads what the worker wrote" \
    bash -c '"$1/scripts/worker-kv.sh" get smoke-roundtrip 2>/dev/null | cmp -s - "$2/bytes"' _ "$REPO_ROOT" "$tmp"

echo "worker-smoke: $passed passed, $failed failed"
[[ $failed == 0 ]]
