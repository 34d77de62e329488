#!/usr/bin/env bash
# Load test (issue 5, item 8), run by scripts/bench.sh inside scripts/with-worker.sh (demo worker,
# WORKER_URL) and bench/with-reference-worker.sh (REFERENCE_URL):
#   session-gated GET /me, cached GET /popular and GET /healthz (the fixed per-request cost), with
#   wrk, the two workers alternating in
#   rounds (demo first in odd rounds, reference first in even ones), KV operations from each
#   worker's /_stats before and after each phase. Prints one JSON line per phase.
# Knobs: LOAD_DURATION (s, default 10), LOAD_CONNECTIONS (default 8), LOAD_ROUNDS (default 3).
set -euo pipefail
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
sleep 1

for ((round = 1; round <= rounds; round++)); do
    order=(demo reference)
    ((round % 2 == 0)) && order=(reference demo)
    # /healthz: the fixed cost of a request through each worker (routing, runtime glue).
    for path in /me /popular /healthz; do
        for w in "${order[@]}"; do
            writes0=$(stat_of "${url[$w]}" kv_writes)
            reads0=$(stat_of "${url[$w]}" kv_reads)
            out=$(wrk -t1 -c"$conns" -d"${duration}s" --latency \
                -H "cookie: ${cookie[$w]}" -H 'accept: application/json' \
                "${url[$w]}$path")
            sleep 1 # let waitUntil writes land before counting
            writes1=$(stat_of "${url[$w]}" kv_writes)
            reads1=$(stat_of "${url[$w]}" kv_reads)
            WRK_OUT="$out" python3 - "$w" "$path" "$round" "$conns" "$duration" \
                "$((writes1 - writes0))" "$((reads1 - reads0))" <<'PY'
import json, os, re, sys
w, path, rnd, conns, duration, writes, reads = sys.argv[1:]
out = os.environ["WRK_OUT"]
def ms(text):
    v, unit = re.match(r"([\d.]+)(us|ms|s)", text).groups()
    return float(v) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[unit]
pct = {p: ms(v) for p, v in re.findall(r"^\s+(50|75|90|99)%\s+(\S+)", out, re.M)}
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
total = int(re.search(r"(\d+) requests in", out).group(1))
bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
errors = re.search(r"Socket errors: (.*)", out)
print(json.dumps({"worker": w, "path": path, "round": int(rnd), "connections": int(conns),
                  "duration_s": int(duration), "rps": rps, "requests": total,
                  "p50_ms": pct.get("50"), "p99_ms": pct.get("99"),
                  "non_2xx": int(bad.group(1)) if bad else 0,
                  "socket_errors": errors.group(1) if errors else None,
                  "kv_writes": int(writes), "kv_reads": int(reads)}))
PY
        done
    done
done
