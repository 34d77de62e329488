#!/usr/bin/env bash
# make bench: reproduces every figure of issue 5 into BENCHMARKS.md (about 15-20 minutes here).
#   1. criterion medians (benches/envelope.rs): reads, writes, rejection, migration, compile;
#      the validating rows again with the in-crate validator (--no-default-features)
#   2. paired ratios (benches/ratios.rs paired): the two sides of each ratio row alternate in
#      rounds within one process; the median of the per-round ratios
#   3. instructions per call under valgrind callgrind (deterministic), for this tree and, for the
#      validation rows, for a baseline tree when BASELINE_REV is set (none by default)
#   4. sizes, and the KV write budget (benches/write_budget.rs, simulated hour)
#   5. wasm size of the demo worker, raw and gzip, with a twiggy breakdown
#   6. load test: demo worker vs the TypeScript reference worker under wrangler dev (bench/load.sh)
# Every figure lands in $CARGO_TARGET_DIR/bench-results.jsonl first; bench/render.py turns it into
# BENCHMARKS.md. The wasm and load steps need the worker toolchain (scripts/setup-worker-toolchain.sh);
# if one fails, the others still run and the file says what is missing.
# Knobs: BENCH_SKIP="baseline wasm load sealload" (any of them), BASELINE_REV (a tree to compare the
# callgrind rows with; none by default), BENCH_OUT (default BENCHMARKS.md), CRITERION_ARGS, LOAD_* (bench/load.sh).
set -euo pipefail
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO_ROOT"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$REPO_ROOT/target}"
OUT="${BENCH_OUT:-$REPO_ROOT/BENCHMARKS.md}"
# No baseline by default: the bench driver uses the names of 8d55386 on (Sessions,
# SessionRecord, KvCache), so it does not build against trees before it; the before/after
# figures of the validation change (919ec43) are in bench/history.md.
BASELINE_REV="${BASELINE_REV:-}"
SKIP=" ${BENCH_SKIP:-} "
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
# Kept (not in $WORK): a failed late step leaves every figure measured so far;
# `python3 bench/render.py $CARGO_TARGET_DIR/bench-results.jsonl` renders them.
RESULTS="$CARGO_TARGET_DIR/bench-results.jsonl"
mkdir -p "$CARGO_TARGET_DIR"
: >"$RESULTS"
started=$SECONDS

log() { printf '[bench %4ds] %s\n' "$((SECONDS - started))" "$*" >&2; }
skip() { [[ "$SKIP" == *" $1 "* ]]; }
emit() { printf '%s\n' "$1" >>"$RESULTS"; }
# `cargo bench --no-run` prints the executables as JSON; pick the one of bench target $1 (further
# arguments go to cargo).
bench_exe() {
    cargo bench --bench "$@" --no-run --message-format=json 2>/dev/null | python3 -c '
import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["name"] == sys.argv[1]:
        print(m["executable"])' "$1" | tail -n 1
}

# --- machine -------------------------------------------------------------------------------
cpu=$(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -n 1)
emit "$(python3 -c 'import json,sys; print(json.dumps({"kind":"machine","nproc":int(sys.argv[1]),"cpu":sys.argv[2],"date":sys.argv[3],"rev":sys.argv[4],"rustc":sys.argv[5],"load":sys.argv[6],"valgrind":sys.argv[7]}))' \
    "$(nproc)" "${cpu:-unknown}" "$(date -u +%Y-%m-%dT%H:%MZ)" "$(git rev-parse --short HEAD)$(git diff --quiet HEAD -- src benches || echo '+dirty')" \
    "$(rustc -V)" "$(cut -d' ' -f1-3 /proc/loadavg)" "$(valgrind --version 2>/dev/null || echo none)")"

# --- build -----------------------------------------------------------------------------------
log "building benches (release)"
# The benches reach the test tools (`testing`); the JSON tape is kv-envelope-validator's.
BENCH_FEATURES=(--features testing)
cargo bench --no-run --bench envelope --bench ratios --bench write_budget "${BENCH_FEATURES[@]}" >&2
ENVELOPE=$(bench_exe envelope "${BENCH_FEATURES[@]}")
cargo bench --no-run --bench envelope --no-default-features "${BENCH_FEATURES[@]}" >&2
ENVELOPE_COMPACT=$(bench_exe envelope --no-default-features "${BENCH_FEATURES[@]}")
RATIOS=$(bench_exe ratios "${BENCH_FEATURES[@]}")
BUDGET=$(bench_exe write_budget "${BENCH_FEATURES[@]}")

# --- 1. criterion ----------------------------------------------------------------------------
log "criterion (benches/envelope.rs)"
rm -rf "$CARGO_TARGET_DIR/criterion"
# shellcheck disable=SC2086
"$ENVELOPE" --bench ${CRITERION_ARGS:---warm-up-time 1 --measurement-time 3} >"$WORK/criterion.txt" 2>&1
criterion_rows() { # DIR KIND
    python3 - "$1" "$2" <<'PY'
import glob, json, os, sys
for bench in sorted(glob.glob(os.path.join(sys.argv[1], "**", "new", "benchmark.json"), recursive=True)):
    meta = json.load(open(bench))
    est = json.load(open(os.path.join(os.path.dirname(bench), "estimates.json")))
    m = est["median"]
    print(json.dumps({"kind": sys.argv[2], "id": meta["full_id"], "median_ns": m["point_estimate"],
                      "lo_ns": m["confidence_interval"]["lower_bound"],
                      "hi_ns": m["confidence_interval"]["upper_bound"]}))
PY
}
criterion_rows "$CARGO_TARGET_DIR/criterion" criterion >>"$RESULTS"
# The same bench built without the `jsonschema` feature: the in-crate validator the demo worker
# ships. Only the rows validation touches.
log "criterion, in-crate validator (--no-default-features)"
rm -rf "$CARGO_TARGET_DIR/criterion-compact"
# shellcheck disable=SC2086
CRITERION_HOME="$CARGO_TARGET_DIR/criterion-compact" "$ENVELOPE_COMPACT" --bench \
    ${CRITERION_ARGS:---warm-up-time 1 --measurement-time 3} '^(read/.*validated|migrate/|schema_compile/)' \
    >"$WORK/criterion-compact.txt" 2>&1
criterion_rows "$CARGO_TARGET_DIR/criterion-compact" criterion_compact >>"$RESULTS"

# --- 2. paired ratios ------------------------------------------------------------------------
PAIRS=(
    "session/read/raw_serde_json session/read/json_unvalidated"
    "cache_2k/read/raw_serde_json cache_2k/read/json_unvalidated"
    "session/write/raw_serde_json session/write/json"
    "cache_2k/write/raw_serde_json cache_2k/write/json"
    "session/read/json_unvalidated session/read/postcard_unvalidated"
    "cache_2k/read/json_unvalidated cache_2k/read/postcard_unvalidated"
    "session/read/json_unvalidated session/read/json_validated"
    "session/read/postcard_unvalidated session/read/postcard_validated"
    "cache_2k/read/json_unvalidated cache_2k/read/json_validated"
    "cache_2k/read/postcard_unvalidated cache_2k/read/postcard_validated"
    "migrate/current_v3/json migrate/v1_to_v3/json"
    "migrate/current_v3/postcard migrate/v1_to_v3/postcard"
    "session/read/json_validated session/read/json_sealed"
    "session/read/postcard_validated session/read/postcard_sealed"
    "cache_2k/read/json_validated cache_2k/read/json_sealed"
    "cache_2k/read/postcard_validated cache_2k/read/postcard_sealed"
    "session/write/json session/write/json_sealed"
)
# Each row three times, the repetitions a minute or so apart (rows inner, repetitions outer): a
# burst of load from other work can still skew one repetition; the table shows the median and
# the spread of the three.
log "paired ratios (${#PAIRS[@]} rows x ${PAIRED_REPEATS:-3})"
for ((rep = 1; rep <= ${PAIRED_REPEATS:-3}; rep++)); do
    for pair in "${PAIRS[@]}"; do
        # shellcheck disable=SC2086
        line=$("$RATIOS" paired $pair "${PAIRED_ROUNDS:-101}")
        emit "$(python3 -c 'import json,sys; d=json.loads(sys.argv[1]); d["kind"]="paired"; d["rep"]=int(sys.argv[2]); print(json.dumps(d))' "$line" "$rep")"
    done
done

# --- 3. instruction counts -------------------------------------------------------------------
callgrind_cases() { # EXE LABEL CASE...
    local exe=$1 label=$2 case n ir
    shift 2
    for case in "$@"; do
        case $case in cache_2k/*|schema_compile/*) n=20 ;; *) n=200 ;; esac
        ir=$(valgrind --tool=callgrind --callgrind-out-file=/dev/null --toggle-collect=kvbench_measured \
            "$exe" run "$case" "$n" 2>&1 | sed -n 's/.*Collected : \([0-9]*\).*/\1/p')
        [[ -n "$ir" ]] || { log "callgrind failed for $case"; continue; }
        emit "{\"kind\":\"instructions\",\"tree\":\"$label\",\"case\":\"$case\",\"per_call\":$((ir / n))}"
    done
}
mapfile -t ALL_CASES < <("$RATIOS" list)
if command -v valgrind >/dev/null; then
    log "callgrind: ${#ALL_CASES[@]} cases"
    callgrind_cases "$RATIOS" current "${ALL_CASES[@]}"
    # Where a decode's instructions go: allocator and UTF-8 checks (shared by both codecs).
    log "callgrind: allocator / UTF-8 shares of decodes"
    for case in session/read/json_unvalidated session/read/postcard_unvalidated \
        cache_2k/read/json_unvalidated cache_2k/read/postcard_unvalidated; do
        valgrind --tool=callgrind --callgrind-out-file="$WORK/cg.out" --toggle-collect=kvbench_measured \
            "$RATIOS" run "$case" 50 >/dev/null 2>&1
        callgrind_annotate --threshold=100 "$WORK/cg.out" 2>/dev/null | python3 -c '
import json, re, sys
case, n = sys.argv[1], 50
total = alloc = utf8 = 0
for line in sys.stdin:
    m = re.match(r"\s*([\d,]+) \([ \d.]+%\)\s+(\S.*)", line)
    if not m:
        continue
    ir, what = int(m.group(1).replace(",", "")), m.group(2)
    if "PROGRAM TOTALS" in what:
        total = ir
    elif re.search(r"malloc|free|realloc|_int_|unlink_chunk|__rdl_|__rust_alloc|__rust_dealloc|__rust_realloc|alloc::raw_vec", what):
        alloc += ir
    elif re.search(r"from_utf8|str::validations", what):
        utf8 += ir
print(json.dumps({"kind": "profile", "case": case, "total": total // n, "alloc": alloc // n, "utf8": utf8 // n}))' "$case" >>"$RESULTS"
    done
    if [[ -z "$BASELINE_REV" ]]; then
        log "callgrind: no baseline (BASELINE_REV unset; see bench/history.md)"
    elif ! skip baseline && git rev-parse -q --verify "$BASELINE_REV^{commit}" >/dev/null; then
        log "callgrind: baseline $BASELINE_REV (the driver built against that tree)"
        base="$WORK/baseline"
        mkdir -p "$base"
        git archive "$BASELINE_REV" | tar -x -C "$base"
        mkdir -p "$base/benches/common"
        cp benches/ratios.rs "$base/benches/"
        cp benches/common/mod.rs "$base/benches/common/"
        # The baseline has no validation document: no `part/*` cases, no crate compile case.
        cat >"$base/benches/common/internals.rs" <<'RS'
pub fn value_case<T>(_what: &str, _value: T, _payload: Vec<u8>) -> Option<Box<dyn FnMut()>> {
    None
}
pub fn schema_compile() -> Option<Box<dyn FnMut()>> {
    None
}
pub fn sealed_case<T>(_what: &str, _value: T, _now: u64) -> Option<Box<dyn FnMut()>> {
    None
}
pub fn memory_tier_case<T>(_what: &str, _value: T, _now: u64) -> Option<Box<dyn FnMut()>> {
    None
}
RS
        printf '\n[[bench]]\nname = "ratios"\nharness = false\n' >>"$base/Cargo.toml"
        base_exe=$(cd "$base" && bench_exe ratios)
        emit "{\"kind\":\"baseline\",\"rev\":\"$BASELINE_REV\"}"
        callgrind_cases "$base_exe" baseline \
            session/read/json_unvalidated session/read/json_validated \
            session/read/postcard_unvalidated session/read/postcard_validated \
            cache_2k/read/json_unvalidated cache_2k/read/json_validated \
            cache_2k/read/postcard_unvalidated cache_2k/read/postcard_validated \
            session/read/raw_serde_json cache_2k/read/raw_serde_json
    fi
else
    log "valgrind missing: no instruction counts (apt-get install valgrind)"
fi

# --- 4. sizes and write budget ---------------------------------------------------------------
log "sizes, write budget"
"$RATIOS" sizes | sed 's/^{/{"kind":"sizes",/' >>"$RESULTS"
"$BUDGET" run | sed 's/^{/{"kind":"budget",/' >>"$RESULTS"

# --- 5. wasm size ----------------------------------------------------------------------------
wasm_step() {
    source scripts/worker-env.sh
    log() { printf '[bench %4ds] %s\n' "$((SECONDS - started))" "$*" >&2; }
    if ! [[ -x "$TOOLS_DIR/bin/worker-build" && -x "$WASM_BINDGEN_BIN" ]]; then
        bash scripts/setup-worker-toolchain.sh >&2
    fi
    [[ -x "$TOOLS_DIR/bin/twiggy" ]] || cargo install --locked twiggy --root "$TOOLS_DIR" >&2
    # The worker has its own workspace and target dir: build it exactly as scripts/demo.sh does.
    # Another build of the worker in this checkout makes worker-build wait, then give up: retry.
    local try
    for try in 1 2 3; do
        env -u CARGO_TARGET_DIR bash scripts/build-worker.sh >&2 && break
        ((try < 3)) || return 1
        log "worker build failed (a concurrent build?), retrying in 60 s"
        sleep 60
    done
    local wasm="$WORKER_DIR/build/index_bg.wasm"
    # The breakdown reads the wasm cargo produced for the same build, before wasm-bindgen and
    # wasm-opt: it still has its function names (the shipped one has none).
    local named="$WORKER_DIR/target/wasm32-unknown-unknown/release/kv_envelope_example_worker.wasm"
    "$TOOLS_DIR/bin/twiggy" top -n 20 "$named" >"$WORK/twiggy-top.txt"
    "$TOOLS_DIR/bin/twiggy" top -n 1000000 --format csv "$named" >"$WORK/twiggy.csv"
    python3 - "$wasm" "$named" "$WORK/twiggy.csv" "$WORK/twiggy-top.txt" >>"$RESULTS" <<'PY'
import csv, gzip, json, re, sys
shipped, named, table, top = sys.argv[1:]
data = open(shipped, "rb").read()
def crate_of(name):
    if name.startswith("data[") or name.startswith("data segment"):
        return "(data segments: static tables, strings)"
    if "function names" in name or name.startswith("custom section") or name.startswith('"'):
        return "(names and custom sections, not shipped)"
    if name.startswith(("code[", "elem[", "global", "table", "import", "export", "type[")):
        return "(wasm structure, unnamed)"
    m = re.search(r"([A-Za-z_][A-Za-z0-9_]*)::", name)
    return m.group(1) if m else "(other)"
by, total = {}, 0
for row in csv.DictReader(open(table)):
    size = int(row["ShallowSize"])
    total += size
    c = crate_of(row["Name"])
    by[c] = by.get(c, 0) + size
print(json.dumps({"kind": "wasm", "raw": len(data), "gzip": len(gzip.compress(data, 9)),
                  "named_raw": total, "named_file": named.split("/work/main/")[-1],
                  "by_crate": sorted(by.items(), key=lambda kv: -kv[1])[:18],
                  "top": open(top).read()}))
PY
}
# The other examples' shipped wasm, built the same way, beside the demo's.
example_wasm() {
    local example=$1
    WORKER_EXAMPLE=$example env -u CARGO_TARGET_DIR bash scripts/build-worker.sh >&2 || return 1
    python3 - "$example" "examples/$example/build/index_bg.wasm" >>"$RESULTS" <<'PY'
import gzip, json, sys
name, path = sys.argv[1:]
data = open(path, "rb").read()
print(json.dumps({"kind": "wasm_example", "example": name, "raw": len(data), "gzip": len(gzip.compress(data, 9))}))
PY
}
if ! skip wasm; then
    log "demo worker wasm (scripts/build-worker.sh) and its twiggy breakdown"
    (wasm_step) || log "wasm step failed: no wasm figures"
    for example in minimal-worker axum-worker; do
        log "$example wasm (WORKER_EXAMPLE=$example scripts/build-worker.sh)"
        (example_wasm "$example") || log "$example wasm step failed: no figure for it"
    done
fi

# --- 6. load test ----------------------------------------------------------------------------
if ! skip load; then
    if ! command -v wrk >/dev/null; then
        log "installing wrk (Debian)"
        apt-get install -y wrk >&2 || log "wrk unavailable: no load figures"
    fi
    if command -v wrk >/dev/null; then
        log "load: demo worker vs reference worker, alternating"
        (env -u CARGO_TARGET_DIR scripts/with-worker.sh --no-build -- bench/with-reference-worker.sh -- bench/load.sh \
            | sed '/"kind"/!s/^{/{"kind":"load",/' >>"$RESULTS") || log "load test failed"
    fi
fi

# --- 7. sealed vs clear sessions under load --------------------------------------------------
if ! skip sealload && command -v wrk >/dev/null; then
    log "load: the demo sealing its sessions vs SEAL=off, alternating (bench/seal-load.sh)"
    (env -u CARGO_TARGET_DIR bench/seal-load.sh >>"$RESULTS") || log "sealed load test failed"
fi

# --- render ----------------------------------------------------------------------------------
emit "{\"kind\":\"duration\",\"seconds\":$((SECONDS - started))}"
python3 bench/render.py "$RESULTS" >"$OUT"
log "wrote $OUT in $((SECONDS - started)) s"
