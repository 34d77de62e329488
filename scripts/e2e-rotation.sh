#!/usr/bin/env bash
# Key rotation end to end (issue 15, docs/sealing.md "Rotation, step by step"), run by
# scripts/e2e.sh after the main suite: the demo worker served seven times in a row by `wrangler dev`
# (scripts/with-worker.sh --no-build, a free port each time) on ONE local KV of its own, each time
# with another key ring. wrangler reads secrets only at start, so each phase is a restart with its
# own secrets file (WORKER_ENV_FILE -> --env-file, which replaces examples/worker/.dev.vars; no key
# ever goes on a command line):
#   1 SEAL_KEYS=k1   2 k1,k2 (added)   3 k2,k1 (primary; lazy and CLI bulk re-seal)   4 k2 (retired)
#   5 k2,k1 (restored)
# around them phase 0 (SEAL_KEY_k1 of the wrong length: a clear configuration error) and phase 6
# (SEAL=off, the benchmarks' clear mode).
# e2e/rotation.test.mjs runs once per phase (ROTATION_PHASE), handing cookies and stored bytes to
# the next phase in a state file. Keys are fresh random ones, in a 0700 scratch dir removed on exit
# (with the KV state) unless KEEP_WORKER_STATE=1.
# Needs what scripts/e2e.sh builds and exports: the built worker, KV_SEED_BIN (kv-seed open) and
# KV_ENVELOPE_BIN (the ops CLI: migrate --keys-file for the bulk re-seal, census).
#   E2E_FILES=e2e/rotation.test.mjs scripts/e2e.sh    # this alone, with the builds
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/worker-env.sh"
cd "$REPO_ROOT"

[[ -x "${KV_SEED_BIN:-}" && -x "${KV_ENVELOPE_BIN:-}" ]] ||
    die "KV_SEED_BIN / KV_ENVELOPE_BIN not set: run through scripts/e2e.sh (E2E_FILES=e2e/rotation.test.mjs)"
[[ -f "$WORKER_DIR/build/worker/shim.mjs" ]] || die "worker not built: run scripts/build-worker.sh"

mkdir -p "$REPO_ROOT/.wrangler/tmp"
dir=$(mktemp -d "$REPO_ROOT/.wrangler/tmp/rotation.XXXXXX")
chmod 700 "$dir"
cleanup() {
    local status=$?
    [[ "${KEEP_WORKER_STATE:-0}" == 1 ]] && log "kept $dir" || rm -rf "$dir"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

k1=$(random_key)
k2=$(random_key)
# Phase secrets: the ids in SEAL_KEYS, and only the keys they list (a retired key is gone).
secrets() {
    local ids=$1 id
    case $ids in
        bad) printf 'SEAL_KEYS=k1\nSEAL_KEY_k1=c2VjcmV0LW5vdC1hLWtleQ==\n'; return ;;
        off) echo "SEAL=off"; return ;;
    esac
    echo "SEAL_KEYS=$ids"
    echo "SEAL_CACHE=on"
    for id in ${ids//,/ }; do
        case $id in
            k1) echo "SEAL_KEY_k1=$k1" ;;
            k2) echo "SEAL_KEY_k2=$k2" ;;
        esac
    done
}
rings=(bad k1 k1,k2 k2,k1 k2 k2,k1 off)
(umask 077; echo '{}' >"$dir/state.json")
mkdir -p "$dir/kv"

failed=0
for phase in 0 1 2 3 4 5 6; do
    (umask 077; secrets "${rings[$phase]}" >"$dir/phase$phase.vars")
    log "phase $phase: wrangler dev with key ring ${rings[$phase]}"
    # WORKER_VARS cleared: the ring must come from the phase file alone.
    if ! WRANGLER_PERSIST_DIR="$dir/kv" WORKER_ENV_FILE="$dir/phase$phase.vars" WORKER_VARS="" \
        ROTATION_PHASE=$phase ROTATION_STATE="$dir/state.json" \
        "$REPO_ROOT/scripts/with-worker.sh" --no-build \
        node --test --test-reporter=tap --test-concurrency=1 --test-timeout=180000 e2e/rotation.test.mjs; then
        failed=$phase
        break
    fi
done
if [[ $failed != 0 ]]; then
    die "key rotation e2e failed in phase $failed (later phases not run)"
fi
log "key rotation e2e: 7 phases passed"
