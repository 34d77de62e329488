#!/usr/bin/env bash
# The crate's public API (cargo-public-api, from nightly rustdoc JSON) against the committed
# snapshot api/public-api.txt, so that every change to the surface shows up in review as a diff
# of that file. KV_ENVELOPE_BLESS=1 (`make bless`) rewrites the snapshot (after a deliberate change). Needs the nightly
# toolchain and cargo-public-api, which `make setup` installs.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
snapshot=api/public-api.txt
command -v cargo-public-api >/dev/null || { echo "cargo-public-api missing: run make setup" >&2; exit 1; }
current=$(mktemp)
trap 'rm -f "$current"' EXIT
# Every native feature (the default jsonschema validator, testing, cli, tower-sessions, axum): the
# widest surface.
CARGO_TARGET_DIR="$root/target/public-api" cargo public-api -p kv-envelope --features testing,tower-sessions,axum -ss >"$current"
if [[ -n "${KV_ENVELOPE_BLESS:-}" ]]; then
    cp "$current" "$snapshot"
    echo "public-api: $snapshot rewritten ($(wc -l <"$snapshot") items)"
    exit 0
fi
if ! diff -u "$snapshot" "$current"; then
    echo "public-api: the public API differs from $snapshot (diff above). If the change is" \
        "deliberate: make bless, and commit the snapshot." >&2
    exit 1
fi
echo "public-api: $(wc -l <"$snapshot") lines, as committed; $(python3 scripts/count-public-items.py "$snapshot")"
