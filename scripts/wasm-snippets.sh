#!/usr/bin/env bash
# Compiles the docs' workers-rs snippets for wasm32 (part of `make test`): every ```rust,ignore
# block in README.md and docs/*.md right after the line
#   <!-- wasm32: compiled for wasm32 by scripts/wasm-snippets.sh, not a doctest -->
# becomes a module of a scratch crate (target/wasm-snippets) that `cargo check` builds for
# wasm32-unknown-unknown with kv-envelope's `worker`, `tower-sessions` and `axum` features. They
# are `ignore` for rustdoc because doctests build natively, where the Workers API does not exist.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
crate="$root/target/wasm-snippets"
mkdir -p "$crate/src" "$crate/.cargo"

python3 - "$root" "$crate/src/lib.rs" <<'PY'
import glob, os, re, sys
root, out = sys.argv[1], sys.argv[2]
marker = "<!-- wasm32: compiled for wasm32 by scripts/wasm-snippets.sh, not a doctest -->"
mods = []
for path in [os.path.join(root, "README.md")] + sorted(glob.glob(os.path.join(root, "docs", "*.md"))):
    lines = open(path, encoding="utf-8").read().split("\n")
    for i, line in enumerate(lines):
        if line.strip() != marker:
            continue
        if i + 1 >= len(lines) or lines[i + 1] != "```rust,ignore":
            sys.exit(f"{path}:{i + 1}: the wasm32 marker must be followed by a ```rust,ignore block")
        j = i + 2
        while lines[j] != "```":
            j += 1
        name = re.sub(r"\W", "_", os.path.relpath(path, root)) + f"_l{i + 2}"
        body = "\n".join("    " + l if l else "" for l in lines[i + 2:j])
        mods.append(f"// {os.path.relpath(path, root)}:{i + 2}\nmod {name} {{\n{body}\n}}\n")
if not mods:
    sys.exit("no marked wasm32 snippets found")
open(out, "w").write("#![allow(dead_code, unused_imports, unused_variables)]\n\n" + "\n".join(mods))
print(f"wasm-snippets: {len(mods)} snippets")
PY

cat >"$crate/Cargo.toml" <<TOML
[package]
name = "kv-envelope-wasm-snippets"
version = "0.0.0"
edition = "2021"
publish = false

[workspace]

[lib]
crate-type = ["cdylib"]

[dependencies]
worker = { version = "0.8", features = ["http", "axum"] }
kv-envelope = { path = "$root", default-features = false, features = ["worker", "tower-sessions", "axum"] }
axum = { version = "0.8", default-features = false, features = ["json"] }
tower-sessions = { version = "0.15", default-features = false, features = ["axum-core"] }
tower-service = "0.3"
serde = { version = "1", features = ["derive"] }
serde_json = "1"
schemars = "1.2"
# `#[durable_object]` expands to wasm-bindgen attributes that name the crate.
wasm-bindgen = "0.2"
TOML
cp "$root/examples/axum-worker/.cargo/config.toml" "$crate/.cargo/config.toml"
# The axum example's lock has every dependency above: nothing new is resolved.
[[ -f "$crate/Cargo.lock" ]] || cp "$root/examples/axum-worker/Cargo.lock" "$crate/Cargo.lock"
unset CARGO_TARGET_DIR
(cd "$crate" && cargo check --quiet --target wasm32-unknown-unknown)
echo "wasm-snippets: every marked snippet compiles for wasm32"
