#!/usr/bin/env bash
# Every `cargo test ...` command the docs give (README, RELIABILITY.md, docs/*.md) is run as
# written, and must run at least one test: a renamed test or a stale flag fails here instead of
# in a reader's terminal. Runs after test-native, so everything is already built.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
mapfile -t commands < <(git grep -ohE '`cargo test [^`]+`' -- '*.md' ':!CHANGELOG.md' | tr -d '`' | sort -u)
(( ${#commands[@]} > 0 )) || { echo "doc-commands: no commands found" >&2; exit 1; }
for cmd in "${commands[@]}"; do
    out=$(eval "$cmd" 2>&1) || { echo "$out" | tail -20; echo "doc-commands: FAILED: $cmd" >&2; exit 1; }
    ran=$(echo "$out" | sed -nE 's/^test result: [a-z]+\. ([0-9]+) passed.*/\1/p' | awk '{s+=$1} END {print s+0}')
    if (( ran == 0 )); then
        echo "doc-commands: runs no test: $cmd" >&2
        exit 1
    fi
    echo "doc-commands: $ran passed: $cmd"
done
