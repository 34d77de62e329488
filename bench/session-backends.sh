#!/usr/bin/env bash
# Session-gated GET /me on the demo with its sessions in KV vs in Durable Objects (issue 18), the
# two side by side in one run: the demo is served twice by scripts/with-worker.sh (fresh local
# state each), once with SESSION_BACKEND=kv and once with SESSION_BACKEND=durable, and wrk loads
# /me on each in alternating rounds (kv first in odd rounds): once with one session (every request
# reads the same key, or on Durable Objects the same object) and once with SESSIONS_MANY (default
# 24: the demo allows 30 logins per 10 s per client) sessions taken in turn by a wrk script (one
# object each). Also: the KV-side operations one
# login and one /me cost on each backend, from /_stats. Prints one JSON line per phase
# (bench/wrk_json.py). Run from the repository root (the worker must be built):
#   scripts/with-worker.sh --no-build -- bench/session-backends.sh
# Knobs: LOAD_DURATION (s, default 10), LOAD_CONNECTIONS (default 8), LOAD_ROUNDS (default 3).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
: "${WORKER_URL:?run inside scripts/with-worker.sh}"
command -v wrk >/dev/null || { echo "session-backends.sh: wrk is needed (apt-get install wrk; make bench installs it)" >&2; exit 1; }
if [[ -z "${KV_SESSIONS_URL:-}" ]]; then
    # Outer run: this worker keeps sessions in KV; start the Durable Object one and re-enter.
    KV_SESSIONS_URL="$WORKER_URL" exec env -u WRANGLER_PERSIST_DIR -u WORKER_URL \
        WORKER_VARS="SESSION_BACKEND=durable ${WORKER_VARS:-}" \
        KV_SESSIONS_URL="$WORKER_URL" \
        "$here/../scripts/with-worker.sh" --no-build -- "$here/session-backends.sh"
fi
duration="${LOAD_DURATION:-10}"
conns="${LOAD_CONNECTIONS:-8}"
rounds="${LOAD_ROUNDS:-3}"
declare -A url=([kv]="$KV_SESSIONS_URL" [durable]="$WORKER_URL")

login() { # URL -> "name=value" of the session cookie
    curl -s -D - -o /dev/null -X POST -H 'content-type: application/json' -H "origin: $1" \
        -d '{"email":"ada@example.com"}' "$1/login" |
        sed -n 's/^[Ss]et-[Cc]ookie: \(__Host-session=[^;]*\).*/\1/p' | head -n 1
}

ops_of() { # URL -> the session binding's counters as JSON
    curl -s "$1/_stats" | python3 -c 'import json,sys; s=json.load(sys.stdin); print(json.dumps({"backend": s["session_backend"], **s["kv"]["KV"]}))'
}

many="${SESSIONS_MANY:-24}"
scripts_dir=$(mktemp -d)
trap 'rm -rf "$scripts_dir"' EXIT
declare -A cookie
for w in kv durable; do
    # The many-session wrk script: cookies taken in turn.
    {
        echo "local cookies = {"
        for ((i = 0; i < many; i++)); do echo "  \"$(login "${url[$w]}")\","; done
        echo "}"
        echo 'local i = 0'
        echo 'request = function()'
        echo '  i = i % #cookies + 1'
        echo '  return wrk.format(nil, nil, { ["cookie"] = cookies[i], ["accept"] = "application/json" })'
        echo 'end'
    } >"$scripts_dir/$w.lua"
    before=$(ops_of "${url[$w]}")
    cookie[$w]=$(login "${url[$w]}")
    [[ -n "${cookie[$w]}" ]] || { echo "login to $w failed" >&2; exit 1; }
    after_login=$(ops_of "${url[$w]}")
    curl -s -o /dev/null -H "cookie: ${cookie[$w]}" -H 'accept: application/json' "${url[$w]}/me"
    after_me=$(ops_of "${url[$w]}")
    python3 -c 'import json,sys; b,l,m=(json.loads(a) for a in sys.argv[2:]); d=lambda x,y:{k:y[k]-x[k] for k in y if isinstance(y[k],int)}; print(json.dumps({"kind":"session_ops","sessions":sys.argv[1],"backend":m["backend"],"login":d(b,l),"me":d(l,m)}))' \
        "$w" "$before" "$after_login" "$after_me"
    # Warm up.
    for _ in 1 2 3 4; do
        curl -s -o /dev/null -H "cookie: ${cookie[$w]}" -H 'accept: application/json' "${url[$w]}/me"
    done
done

for ((round = 1; round <= rounds; round++)); do
    order=(kv durable)
    ((round % 2 == 0)) && order=(durable kv)
    for w in "${order[@]}"; do
        out=$(wrk -t1 -c"$conns" -d"${duration}s" --latency \
            -H "cookie: ${cookie[$w]}" -H 'accept: application/json' "${url[$w]}/me")
        WRK_OUT="$out" python3 "$here/wrk_json.py" kind=me_load sessions="$w" path=/me round="$round" \
            connections="$conns" duration_s="$duration" distinct_sessions=1
        out=$(wrk -t1 -c"$conns" -d"${duration}s" --latency -s "$scripts_dir/$w.lua" "${url[$w]}/me")
        WRK_OUT="$out" python3 "$here/wrk_json.py" kind=me_load sessions="$w" path=/me round="$round" \
            connections="$conns" duration_s="$duration" distinct_sessions="$many"
    done
done
