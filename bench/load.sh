#!/usr/bin/env bash
# Load test (issue 5, item 8), run by scripts/bench.sh inside scripts/with-worker.sh (demo worker,
# WORKER_URL) and bench/with-reference-worker.sh (REFERENCE_URL):
#   session-gated GET /me, cached GET /popular and GET /healthz (the fixed per-request cost), with
#   wrk, the two workers alternating in
#   rounds (demo first in odd rounds, reference first in even ones), KV operations from each
#   worker's /_stats before and after each phase (and the demo's memory-tier hits). Then, the demo
#   alone, GET /articles with 50 cached entries read in bulk gets vs one read each, with the KV
#   operations one such request reports. Prints one JSON line per phase (bench/wrk_json.py).
# Knobs: LOAD_DURATION (s, default 10), LOAD_CONNECTIONS (default 8), LOAD_ROUNDS (default 3).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
: "${WORKER_URL:?run inside scripts/with-worker.sh}" "${REFERENCE_URL:?run inside bench/with-reference-worker.sh}"
duration="${LOAD_DURATION:-10}"
conns="${LOAD_CONNECTIONS:-8}"
rounds="${LOAD_ROUNDS:-3}"

login() { # URL -> "name=value" of the session cookie (the demo's is __Host-session)
    curl -s -D - -o /dev/null -X POST -H 'content-type: application/json' -H "origin: $1" \
        -d '{"email":"ada@example.com"}' "$1/login" |
        sed -n 's/^[Ss]et-[Cc]ookie: \(\(__Host-\)\{0,1\}session=[^;]*\).*/\1/p' | head -n 1
}

stat_of() { # URL FIELD
    curl -s "$1/_stats" | python3 -c "import json,sys; print(json.load(sys.stdin).get('$2', 0))"
}

l1_hits_of() { # URL -> the memory tier's hits (0 for the reference, which has none)
    curl -s "$1/_stats" | python3 -c "import json,sys; print(json.load(sys.stdin).get('cache', {}).get('l1_hits', 0))"
}

declare -A url=([demo]="$WORKER_URL" [reference]="$REFERENCE_URL")
declare -A cookie
for w in demo reference; do
    cookie[$w]=$(login "${url[$w]}")
    [[ -n "${cookie[$w]}" ]] || { echo "login to $w failed" >&2; exit 1; }
    # Warm up: validators, JIT, the first /popular computation (a miss) and its cache write.
    for path in /me /popular /me /popular; do
        curl -s -o /dev/null -H "cookie: ${cookie[$w]}" -H 'accept: application/json' \
            "${url[$w]}$path"
    done
done
# 50 articles into the cache (their writes run in waitUntil).
curl -s -o /dev/null "$WORKER_URL/articles?first=0&count=50"
sleep 3

for ((round = 1; round <= rounds; round++)); do
    order=(demo reference)
    ((round % 2 == 0)) && order=(reference demo)
    # /healthz: the fixed cost of a request through each worker (routing, runtime glue).
    for path in /me /popular /healthz; do
        for w in "${order[@]}"; do
            writes0=$(stat_of "${url[$w]}" kv_writes)
            reads0=$(stat_of "${url[$w]}" kv_reads)
            l1_0=$(l1_hits_of "${url[$w]}")
            out=$(wrk -t1 -c"$conns" -d"${duration}s" --latency \
                -H "cookie: ${cookie[$w]}" -H 'accept: application/json' \
                "${url[$w]}$path")
            sleep 1 # let waitUntil writes land before counting
            writes1=$(stat_of "${url[$w]}" kv_writes)
            reads1=$(stat_of "${url[$w]}" kv_reads)
            l1_1=$(l1_hits_of "${url[$w]}")
            WRK_OUT="$out" python3 "$here/wrk_json.py" worker="$w" path="$path" round="$round" \
                connections="$conns" duration_s="$duration" \
                kv_writes="$((writes1 - writes0))" kv_reads="$((reads1 - reads0))" \
                l1_hits="$((l1_1 - l1_0))"
        done
    done
    # The demo alone: 50 cached articles per request, in bulk gets vs one read each (issue 16).
    for read in bulk single; do
        path="/articles?first=0&count=50&read=$read"
        # The KV operations of one request, as the route reports them.
        ops=$(curl -s "$WORKER_URL$path" | python3 -c 'import json,sys; print(json.dumps(json.load(sys.stdin)["kv"]))')
        out=$(wrk -t1 -c"$conns" -d"${duration}s" --latency "$WORKER_URL$path")
        WRK_OUT="$out" python3 "$here/wrk_json.py" kind=articles_load worker=demo read="$read" \
            path="$path" round="$round" connections="$conns" duration_s="$duration" kv="json:$ops"
    done
done
