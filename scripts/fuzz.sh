#!/usr/bin/env bash
# Run the cargo-fuzz targets in fuzz/ (nightly toolchain, cargo-fuzz installed).
#
#   scripts/fuzz.sh smoke [SECS]          each target SECS seconds (default 5): used by `make test`
#   scripts/fuzz.sh long  [SECS] [--no-record]
#                                          each target SECS seconds (default 600: about a
#                                          million executions or more per target on a shared
#                                          2-core machine) and write the figures into
#                                          RELIABILITY.md (`make fuzz`); --no-record only prints
#   scripts/fuzz.sh build                  build the targets only
#
# FUZZ_TARGETS="a b" limits the targets. SECS may be the second argument only. Exits non-zero when any target crashes; the crashing
# input is kept under fuzz/artifacts/<target>/ and must become a corpus case (see RELIABILITY.md).
set -euo pipefail

mode=${1:-smoke}
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root/fuzz"
# The fuzz crate is its own workspace with its own target dir (fuzz/target, read below); a
# CARGO_TARGET_DIR meant for the main crate would send the binaries elsewhere.
unset CARGO_TARGET_DIR

case "$mode" in
smoke) secs=${2:-5} ;;
long) secs=${2:-600} ;;
build) secs=0 ;;
*)
    echo "usage: $0 smoke|long|build [SECS] [--no-record]" >&2
    exit 2
    ;;
esac
record=no
[ "$mode" = long ] && record=yes
for arg in "$@"; do [ "$arg" = --no-record ] && record=no; done

# Debug assertions on (-a): the fuzzer should trip on them as well as on panics.
build_flags=(-a)
targets=${FUZZ_TARGETS:-$(cargo +nightly fuzz list)}
cargo +nightly fuzz build "${build_flags[@]}" >/dev/null
[ "$mode" = build ] && exit 0
bin_dir="target/$(rustc +nightly -vV | sed -n 's/^host: //p')/release"

results=()
failed=0
# Read-only inputs beside seeds/<t>: the committed fixtures, read where they live (libFuzzer takes
# several corpus dirs and reads them recursively) rather than copied into seeds/.
fixtures_of() {
    case "$1" in
    cookie_parse) echo ../tests/corpus/cookies ;;
    session_id) echo ../tests/corpus/session-ids ;;
    envelope_json | envelope_postcard) echo ../tests/corpus/envelope ../tests/golden ;;
    esac
}

for t in $targets; do
    mkdir -p "corpus/$t" "artifacts/$t" "seeds/$t"
    read -r -a fixtures <<<"$(fixtures_of "$t")"
    before=$(find "artifacts/$t" -type f | wc -l)
    log=$(mktemp)
    status=0
    # The binary built above, run directly: `cargo fuzz run` would re-check the build each time.
    # corpus/<t> is libFuzzer's writable working corpus (gitignored); seeds/<t> (inputs of this
    # target only) and the fixtures are committed.
    "$bin_dir/$t" "corpus/$t" "seeds/$t" "${fixtures[@]}" \
        -artifact_prefix="artifacts/$t/" -dict=dict/envelope.dict -max_total_time="$secs" \
        -timeout=10 -rss_limit_mb=2048 -max_len=4096 -print_final_stats=1 -close_fd_mask=1 \
        >"$log" 2>&1 || status=$?
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    after=$(find "artifacts/$t" -type f | wc -l)
    crashes=$((after - before))
    if [ "$status" -ne 0 ] && [ "$crashes" -eq 0 ]; then crashes=1; fi
    if [ "$crashes" -ne 0 ]; then
        failed=1
        echo "== $t crashed (exit $status); last lines of the log:" >&2
        tail -40 "$log" >&2
        echo "== new artifacts in fuzz/artifacts/$t/; reproduce with: (cd fuzz && cargo +nightly fuzz run -a $t <artifact>)" >&2
        echo "== then add it as a regression case (tests/corpus/, see RELIABILITY.md)" >&2
    fi
    corpus=$(find "corpus/$t" -type f | wc -l)
    results+=("| \`$t\` | ${secs} s | ${execs:-0} | ${corpus} | ${crashes} |")
    rm -f "$log"
done

table=$(
    echo "| target | time | executions | corpus entries | crashes |"
    echo "|---|---|---|---|---|"
    printf '%s\n' "${results[@]}"
)
echo "$table"

if [ "$record" = yes ]; then
    when=$(date -u +%Y-%m-%d)
    rev=$(git -C "$root" rev-parse --short HEAD)
    block=$(
        echo "<!-- fuzz-figures:start -->"
        echo "Recorded $when at \`$rev\` with \`scripts/fuzz.sh long $secs\` ($(nproc) cores, shared with other builds):"
        echo
        echo "$table"
        echo "<!-- fuzz-figures:end -->"
    )
    BLOCK="$block" python3 - "$root/RELIABILITY.md" <<'EOF'
import os, re, sys
path = sys.argv[1]
text = open(path).read()
new = re.sub(r"<!-- fuzz-figures:start -->.*?<!-- fuzz-figures:end -->", lambda _: os.environ["BLOCK"], text, flags=re.S)
open(path, "w").write(new)
EOF
    echo "figures written to RELIABILITY.md"
fi
exit "$failed"
