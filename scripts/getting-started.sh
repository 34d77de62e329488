#!/usr/bin/env bash
# Follows docs/getting-started.md the way a user would, in a directory outside this repository,
# and tests the worker it serves (part of `make test`):
#   1. runs the guide's first `sh` block (cargo new, the wasm32 target) in a fresh temp dir;
#   2. writes every block marked `file=NAME` into the new crate, the kv-envelope dependency
#      pointed at this checkout (nothing is published yet: `version = "0.1"` becomes a path);
#   3. copies examples/minimal-worker/src/lib.rs, as the guide says, and its Cargo.lock (so the
#      wasm-bindgen the guide installs is the one `make test` already has; a lock of your own
#      only changes which version that is);
#   4. runs the `sh` blocks of "Build and serve it, offline and pinned" in order, `cargo install`
#      pointed at the toolchain cache (KV_TOOLS_DIR) so nothing is compiled twice, `wrangler dev`
#      on a free port in the background, then the guide's `curl` block against it;
#   5. runs e2e/minimal/minimal.test.mjs against the served worker.
# KEEP_GETTING_STARTED=1 keeps the temp dir. Prints its time at the end.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/worker-env.sh"
started=$SECONDS
guide="$REPO_ROOT/docs/getting-started.md"
example="$REPO_ROOT/examples/minimal-worker"

dir=$(mktemp -d /tmp/kv-getting-started.XXXXXX)
crate="$dir/my-worker"
wrangler_pgid=""
cleanup() {
    local status=$?
    trap - EXIT INT TERM
    [[ -z "$wrangler_pgid" ]] || stop_group "$wrangler_pgid"
    if [[ $status != 0 && -f "$dir/wrangler.log" ]]; then
        log "wrangler dev's log:"
        tail -40 "$dir/wrangler.log" >&2
    fi
    [[ "${KEEP_GETTING_STARTED:-0}" == 1 ]] || rm -rf "$dir"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# The guide's blocks, as files: blocks/NN.sh (and .section), files/NAME.
python3 - "$guide" "$dir/blocks" <<'PY'
import os, re, sys
guide, out = sys.argv[1], sys.argv[2]
os.makedirs(out + "/files", exist_ok=True)
section, n = "", 0
lines = open(guide, encoding="utf-8").read().split("\n")
i = 0
while i < len(lines):
    line = lines[i]
    if line.startswith("## "):
        section = line[3:].strip()
    m = re.match(r"^```(\w+)(.*)$", line)
    if m:
        lang, attrs = m.group(1), m.group(2).strip()
        j = i + 1
        while lines[j] != "```":
            j += 1
        body = "\n".join(lines[i + 1:j]) + "\n"
        f = re.match(r"file=(\S+)$", attrs)
        if f:
            path = os.path.join(out, "files", f.group(1))
            os.makedirs(os.path.dirname(path), exist_ok=True)
            open(path, "w").write(body)
        elif lang == "sh":
            n += 1
            open(f"{out}/{n:02d}.sh", "w").write(body)
            open(f"{out}/{n:02d}.section", "w").write(section)
        i = j
    i += 1
PY

blocks_of() { # the sh blocks of section $1, in order
    local s
    for s in "$dir"/blocks/*.section; do
        [[ "$(cat "$s")" == "$1" ]] && echo "${s%.section}.sh"
    done
    return 0
}
run_block() { # run block $1 in the current directory, echoing it
    log "guide: $(head -c 300 "$1" | tr '\n' ';')"
    bash -euo pipefail "$1"
}

# Tools the blocks install come from the cache `make test` fills (same versions: no rebuild).
export CARGO_INSTALL_ROOT="$TOOLS_DIR" PATH="$TOOLS_DIR/bin:$PATH"
unset WASM_BINDGEN_BIN ESBUILD_BIN WASM_OPT_BIN # the guide sets them itself

log "1. the crate, in $dir"
mapfile -t crate_blocks < <(blocks_of "The crate")
((${#crate_blocks[@]} == 1)) || die "expected one sh block under \"The crate\", found ${#crate_blocks[@]}"
(cd "$dir" && run_block "${crate_blocks[0]}")
[[ -f "$crate/Cargo.toml" ]] || die "the guide's first block made no crate at $crate"

log "2. the files"
(cd "$dir/blocks/files" && find . -type f) | while read -r f; do
    mkdir -p "$(dirname "$crate/$f")"
    cp "$dir/blocks/files/$f" "$crate/$f"
done
grep -q 'kv-envelope = { version = "0.1"' "$crate/Cargo.toml" || die "the guide's Cargo.toml names no kv-envelope 0.1"
sed -i "s|kv-envelope = { version = \"0.1\"|kv-envelope = { path = \"$REPO_ROOT\"|" "$crate/Cargo.toml"

log "3. src/lib.rs and Cargo.lock from examples/minimal-worker"
cp "$example/src/lib.rs" "$crate/src/lib.rs"
cp "$example/Cargo.lock" "$crate/Cargo.lock"

log "4. build and serve, offline and pinned"
mapfile -t build_blocks < <(blocks_of "Build and serve it, offline and pinned")
((${#build_blocks[@]} == 4)) || die "expected 4 sh blocks (tools, build, serve, try), found ${#build_blocks[@]}"
cd "$crate"
run_block "${build_blocks[0]}"
# The build block exports the *_BIN variables worker-build needs: one shell for it.
run_block "${build_blocks[1]}"
[[ -f build/worker/shim.mjs ]] || die "worker-build made no build/worker/shim.mjs"
wasm=$(find build -maxdepth 1 -name '*.wasm' | head -n 1)
log "built: $(size_report "$wasm")"

port=$(free_port)
grep -q -- '--port 8787' "${build_blocks[2]}" || die "the serve block no longer says --port 8787"
sed "s/--port 8787/--port $port --inspector-port $(free_port)/" "${build_blocks[2]}" >"$dir/serve.sh"
setsid bash "$dir/serve.sh" >"$dir/wrangler.log" 2>&1 </dev/null &
wrangler_pgid=$!
url="http://127.0.0.1:$port"
for _ in $(seq 120); do
    curl -s -o /dev/null "$url/" && break
    kill -0 "$wrangler_pgid" 2>/dev/null || die "wrangler dev exited"
    sleep 0.5
done
curl -s -o /dev/null "$url/" || die "wrangler dev did not answer on $url within 60 s"
log "serving at $url"

sed "s/127.0.0.1:8787/127.0.0.1:$port/g" "${build_blocks[3]}" >"$dir/try.sh"
tried=$(cd "$dir" && bash -euo pipefail "$dir/try.sh")
echo "$tried" | grep -q '"language":"fr"' ||
    die "the guide's curl block did not end with the profile it wrote: $tried"

log "5. e2e/minimal/minimal.test.mjs"
(cd "$REPO_ROOT" && WORKER_URL="$url" WORKER_DIR="$crate" \
    node --test --test-reporter=tap --test-concurrency=1 --test-timeout=120000 e2e/minimal/minimal.test.mjs)
log "getting-started: passed in $((SECONDS - started)) s"
