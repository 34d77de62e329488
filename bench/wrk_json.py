"""One wrk run as a JSON line: `WRK_OUT="$out" python3 bench/wrk_json.py key=value ...`.

Reads wrk's `--latency` report from $WRK_OUT and prints {key: value..., rps, requests, p50_ms,
p99_ms, non_2xx, socket_errors}; values that look like integers become numbers, `json:` prefixed
ones are parsed as JSON. Shared by bench/load.sh and bench/seal-load.sh.
"""
import json
import os
import re
import sys


def ms(text):
    v, unit = re.match(r"([\d.]+)(us|ms|s)", text).groups()
    return float(v) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[unit]


def field(value):
    if value.startswith("json:"):
        return json.loads(value[5:])
    return int(value) if re.fullmatch(r"-?\d+", value) else value


out = os.environ["WRK_OUT"]
row = {}
for arg in sys.argv[1:]:
    key, _, value = arg.partition("=")
    row[key] = field(value)
pct = {p: ms(v) for p, v in re.findall(r"^\s+(50|75|90|99)%\s+(\S+)", out, re.M)}
bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
errors = re.search(r"Socket errors: (.*)", out)
row.update(
    rps=float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
    requests=int(re.search(r"(\d+) requests in", out).group(1)),
    p50_ms=pct.get("50"),
    p99_ms=pct.get("99"),
    non_2xx=int(bad.group(1)) if bad else 0,
    socket_errors=errors.group(1) if errors else None,
)
print(json.dumps(row))
