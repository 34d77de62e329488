#!/usr/bin/env bash
# The README's Workers example is examples/minimal-worker/src/lib.rs, verbatim: Markdown cannot
# include a file, and the README is also the crate's docs. Fails with a diff when they differ.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
example="$root/examples/minimal-worker/src/lib.rs"
block=$(awk '
    /^<!-- examples\/minimal-worker\/src\/lib.rs, verbatim/ { marked = 1; next }
    marked && /^```rust,ignore$/ { inside = 1; next }
    inside && /^```$/ { exit }
    inside { print }
' "$root/README.md")
[[ -n "$block" ]] || { echo "readme-example: no marked block in README.md" >&2; exit 1; }
if ! diff -u "$example" <(printf '%s\n' "$block"); then
    echo "readme-example: README.md's Workers example differs from $example (diff above);" \
        "copy the file into the README's block" >&2
    exit 1
fi
echo "readme-example: README.md shows examples/minimal-worker/src/lib.rs as it is"
