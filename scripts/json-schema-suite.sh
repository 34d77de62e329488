#!/usr/bin/env bash
# Fetches the official JSON-Schema-Test-Suite (draft 2020-12) that `make json-schema-suite` runs
# both validators on (tests/json_schema_suite.rs), into a git-ignored cache:
#
#   scripts/json-schema-suite.sh [DIR]     DIR defaults to $JSON_SCHEMA_SUITE_DIR, then
#                                          target/json-schema-test-suite
#
# The suite is not copied into this repository: it comes pinned from a package registry, the
# sdist of Python's `jsonschema` on PyPI, which ships it under json/ (the suite's MIT licence is
# kept beside the copy, as json/LICENSE). The URL and the sha256 are fixed here, so no registry
# lookup happens at test time; a wrong hash stops before anything is extracted. A second run finds
# the stamp of this hash and does nothing. Takes about 0.2 s (366 KB).
#
# To move to a newer suite: take the sdist URL and sha256 of another `jsonschema` release from
# https://pypi.org/simple/jsonschema/, change the three values below, run `make bless` and review
# tests/json-schema-suite/expectations.txt.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DEST="${1:-${JSON_SCHEMA_SUITE_DIR:-$ROOT/target/json-schema-test-suite}}"
VERSION=4.26.0
URL="https://files.pythonhosted.org/packages/b3/fc/e067678238fa451312d4c62bf6e6cf5ec56375422aee02f9cb5f909b3047/jsonschema-$VERSION.tar.gz"
SHA256=0c26707e2efad8aa1bfc5b7ce170f3fccc2e4918ff85989ba9ffa9facb2be326
STAMP="$DEST/.stamp-$SHA256"

log() { printf '[json-schema-suite] %s\n' "$*" >&2; }

if [[ -f "$STAMP" ]]; then
    log "ok: $DEST (jsonschema $VERSION sdist, sha256 ${SHA256:0:12}…)"
    exit 0
fi
start=$SECONDS
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
tgz="$tmp/jsonschema-$VERSION.tar.gz"
log "downloading the jsonschema $VERSION sdist from PyPI (the suite is in its json/ folder)"
if command -v curl >/dev/null; then
    curl -sSfL --retry 3 --retry-delay 2 -m 120 -o "$tgz" "$URL"
else
    python3 -c 'import sys, urllib.request; open(sys.argv[2], "wb").write(urllib.request.urlopen(sys.argv[1], timeout=120).read())' \
        "$URL" "$tgz"
fi
if ! echo "$SHA256  $tgz" | sha256sum -c --quiet - >/dev/null 2>&1; then
    log "error: sha256 of $URL is $(sha256sum "$tgz" | cut -d' ' -f1), expected $SHA256"
    exit 1
fi
rm -rf "$DEST"
mkdir -p "$DEST"
# Only draft 2020-12, the remote documents its tests name, and the licence.
tar -xzf "$tgz" -C "$DEST" --strip-components=2 \
    "jsonschema-$VERSION/json/tests/draft2020-12" \
    "jsonschema-$VERSION/json/remotes" \
    "jsonschema-$VERSION/json/LICENSE"
echo "jsonschema $VERSION sdist from PyPI, sha256 $SHA256: $URL" >"$DEST/SOURCE"
touch "$STAMP"
log "extracted into $DEST in $((SECONDS - start)) s"
