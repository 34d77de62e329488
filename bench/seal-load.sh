#!/usr/bin/env bash
# Sealed vs clear sessions on workerd (issue 15, item 6): the same demo build served twice by
# `wrangler dev`, once sealing its sessions (AES-256-GCM, SEAL_KEYS from .dev.vars) and once with
# SEAL=off, loaded with wrk on the session-gated GET /me in alternating rounds (sealed first in odd
# rounds), plus GET /healthz as the fixed per-request cost. One JSON line per phase.
#   make a build first (scripts/build-worker.sh), then:  bash bench/seal-load.sh
# Knobs: LOAD_DURATION (s, default 10), LOAD_CONNECTIONS (8), LOAD_ROUNDS (3).
set -euo pipefail
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [[ -z "${SEALED_URL:-}" ]]; then
    # Outer worker: sealed (the demo's default). Inner: SEAL=off, its own local KV.
    exec env -u WORKER_VARS "$REPO_ROOT/scripts/with-worker.sh" --no-build -- \
        bash -c 'export SEALED_URL=$WORKER_URL; exec env -u WRANGLER_PERSIST_DIR WORKER_VARS=SEAL=off "$0" --no-build -- "$1"' \
        "$REPO_ROOT/scripts/with-worker.sh" "$REPO_ROOT/bench/seal-load.sh"
fi
: "${WORKER_URL:?run through bench/seal-load.sh}"
command -v wrk >/dev/null || { echo "wrk missing: apt-get install -y wrk" >&2; exit 1; }
duration="${LOAD_DURATION:-10}"
conns="${LOAD_CONNECTIONS:-8}"
rounds="${LOAD_ROUNDS:-3}"
declare -A url=([sealed]="$SEALED_URL" [clear]="$WORKER_URL")

login() { # URL -> "name=value" of the session cookie
    curl -s -D - -o /dev/null -X POST -H 'content-type: application/json' -H "origin: $1" \
        -d '{"email":"ada@example.com"}' "$1/login" |
        sed -n 's/^[Ss]et-[Cc]ookie: \(\(__Host-\)\{0,1\}session=[^;]*\).*/\1/p' | head -n 1
}

declare -A cookie
for w in sealed clear; do
    cookie[$w]=$(login "${url[$w]}")
    [[ -n "${cookie[$w]}" ]] || { echo "login to the $w worker failed" >&2; exit 1; }
    body=$(curl -s -H "cookie: ${cookie[$w]}" -H 'accept: application/json' "${url[$w]}/me")
    [[ "$body" == *ada@example.com* ]] || { echo "$w worker: /me did not answer the session: $body" >&2; exit 1; }
    keyring=$(curl -s "${url[$w]}/_stats" | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d.get("sealing", d.get("seal", "?")))' 2>/dev/null || echo "?")
    echo "{\"worker\":\"$w\",\"url\":\"${url[$w]}\",\"sealing\":\"$keyring\"}" >&2
    for _ in 1 2 3 4; do curl -s -o /dev/null -H "cookie: ${cookie[$w]}" -H 'accept: application/json' "${url[$w]}/me"; done
done
sleep 1

for ((round = 1; round <= rounds; round++)); do
    order=(sealed clear)
    ((round % 2 == 0)) && order=(clear sealed)
    for path in /me /healthz; do
        for w in "${order[@]}"; do
            out=$(wrk -t1 -c"$conns" -d"${duration}s" --latency \
                -H "cookie: ${cookie[$w]}" -H 'accept: application/json' "${url[$w]}$path")
            WRK_OUT="$out" python3 "$REPO_ROOT/bench/wrk_json.py" kind=seal_load worker="$w" path="$path" \
                round="$round" connections="$conns" duration_s="$duration"
        done
    done
done
