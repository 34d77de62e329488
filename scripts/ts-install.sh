#!/usr/bin/env bash
# @kv-envelope/ts installs and runs the ways ts/README.md ("## Install") says, in fresh projects
# outside the repository. The install commands are read from that block and run as written, with
# <checkout> a fresh copy of this checkout (its tracked and unignored files: no node_modules) and
# the tarball `npm pack` makes of ts/. In each project: `npx kv-envelope-ts generate` from
# schemas/ and from a small folder using ajv-formats' function formats and deep equality, its
# `--check`, a script that writes, reads and refuses values through @kv-envelope/ts with both
# generated registries and @kv-envelope/ts/generated, and tsc over a typed use of the output.
# The projects alternate CommonJS and ES-module package.json files; one more installs the
# tarball beside ajv 6 (eslint 8's), which the generated code must not pick up.
#
# Needs node, npm and the npm registry (or npm's cache), and typescript from `npm ci` at the
# repository root. Temporary folders are removed on exit (TS_INSTALL_KEEP=1 keeps them).
set -euo pipefail
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
START=$(date +%s)
elapsed() { echo "$(( $(date +%s) - START ))s"; }
die() { echo "ts-install: FAILED: $*" >&2; echo "ts-install: failed after $(elapsed)" >&2; exit 1; }

command -v node >/dev/null || die "node not found (Node >= 20 is needed)"
command -v npm >/dev/null || die "npm not found"
TSC="$REPO_ROOT/node_modules/typescript/bin/tsc"
[[ -f "$TSC" ]] || die "typescript missing: run npm ci at the repository root"

TMP=$(mktemp -d "${TMPDIR:-/tmp}/ts-install.XXXXXX")
case "$TMP/" in "$REPO_ROOT"/*) die "temporary folder $TMP is inside the repository";; esac
cleanup() { if [[ "${TS_INSTALL_KEEP:-}" == 1 ]]; then echo "ts-install: kept $TMP"; else rm -rf "$TMP"; fi; }
trap cleanup EXIT

# No prompts, no audit or funding calls, the cache before the network.
export npm_config_audit=false npm_config_fund=false npm_config_update_notifier=false \
    npm_config_prefer_offline=true npm_config_loglevel=error npm_config_yes=false

LOG="$TMP/step.log"
# step DESCRIPTION COMMAND...: run in the current folder; on failure show its output and stop.
step() {
    local what=$1; shift
    if ! "$@" >"$LOG" 2>&1; then
        sed 's/^/    /' "$LOG" >&2
        die "$WAY: $what ($*)"
    fi
}

# The README's install block: `npm i …` lines install, the others prepare the checkout.
mapfile -t COMMANDS < <(awk '/^## Install/ { f = 1 } f && /^```sh/ { b = 1; next } b && /^```/ { exit }
                             b && NF && !/^#/' "$REPO_ROOT/ts/README.md")
(( ${#COMMANDS[@]} > 0 )) || die "no sh block under '## Install' in ts/README.md"

# A fresh checkout: the files git would give (tracked or new, not ignored), as they are now.
CHECKOUT="$TMP/checkout"
mkdir -p "$CHECKOUT"
(cd "$REPO_ROOT" && git ls-files -z --cached --others --exclude-standard -- ts package.json package-lock.json |
    while IFS= read -r -d '' f; do [[ -f "$f" ]] && printf '%s\0' "$f"; done |
    tar --null -T - -cf -) | tar -xf - -C "$CHECKOUT"
[[ -f "$CHECKOUT/ts/package.json" && ! -e "$CHECKOUT/node_modules" ]] || die "could not copy the checkout to $CHECKOUT"

WAY=pack
TGZ_NAME=$(cd "$REPO_ROOT/ts" && node -p 'const p = require("./package.json"); `${p.name.replace(/^@/, "").replace("/", "-")}-${p.version}.tgz`')
(cd "$CHECKOUT/ts" && step "npm pack" npm pack --pack-destination "$TMP")
[[ -f "$TMP/$TGZ_NAME" ]] || die "npm pack wrote no $TGZ_NAME"

# A schemas folder whose validators need ajv's run-time helpers beyond string length.
mkdir -p "$TMP/extra-schemas"
cat >"$TMP/extra-schemas/event.v1.schema.json" <<'EOF'
{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "type": "object",
  "properties": {
    "at": { "type": "string", "format": "date-time" },
    "link": { "type": "string", "format": "uri" },
    "tags": { "type": "array", "items": { "type": "object" }, "uniqueItems": true },
    "kind": { "enum": [{ "a": 1 }, "plain"] }
  },
  "required": ["at"],
  "additionalProperties": false
}
EOF

cat >"$TMP/consumer.mjs" <<'EOF'
// Writes, reads and refuses values through @kv-envelope/ts as installed in this project.
import assert from "node:assert/strict";
import { createEnvelopes, EnvelopeError } from "@kv-envelope/ts";
import { registry as shipped } from "@kv-envelope/ts/generated";
import { registry } from "./gen/index.js";
import { registry as extra } from "./gen-extra/index.js";

/** The part of a Workers KV namespace @kv-envelope/ts uses, in memory. */
function memoryKv() {
  const data = new Map();
  return {
    async getWithMetadata(key) {
      const e = data.get(key);
      return e ? { value: e.value.slice().buffer, metadata: e.metadata } : { value: null, metadata: null };
    },
    async put(key, value, options = {}) {
      data.set(key, { value: typeof value === "string" ? new TextEncoder().encode(value) : value, metadata: options.metadata });
    },
  };
}

const now = Date.now();
const session = { userId: "u1", email: "a@example.com", createdAt: now, expiresAt: now + 1, absoluteExpiresAt: now + 2, refreshedAt: now, roles: [] };
for (const reg of [registry, shipped]) {
  const { getValue, putValue, readEnvelope } = createEnvelopes(reg);
  const kv = memoryKv();
  await putValue(kv, "k", "session", session, { expiresAt: now + 3_600_000 });
  const read = await getValue(kv, "k", "session");
  assert.equal(read?.version, 3);
  assert.deepEqual(read.data, session);
  const bad = JSON.stringify({ kv: 1, type: "session", v: 3, exp: null, data: { ...session, email: "no" } });
  assert.throws(() => readEnvelope(bad, "session"), (e) => e instanceof EnvelopeError && e.code === "invalid");
}
const { readEnvelope, writeEnvelope } = createEnvelopes(extra);
const event = { at: "2024-01-01T00:00:00Z", link: "https://x.example/a", tags: [{ a: 1 }, { a: 2 }], kind: { a: 1 } };
assert.deepEqual(readEnvelope(writeEnvelope("event", event), "event").data, event);
for (const wrong of [{ at: "2024-13-01T00:00:00Z" }, { ...event, link: "not a uri" }, { ...event, tags: [{ a: 1 }, { a: 1 }] }, { ...event, kind: { a: 2 } }]) {
  assert.throws(() => writeEnvelope("event", wrong), (e) => e instanceof EnvelopeError && e.code === "invalid");
}
console.log("consumer ok");
EOF

cat >"$TMP/check.mts" <<'EOF'
import { createEnvelopes } from "@kv-envelope/ts";
import { registry } from "./gen/index.js";

const { readEnvelope } = createEnvelopes(registry);
const read = readEnvelope('{"kv":1,"type":"session","v":3,"exp":null,"data":{}}', "session");
if (read?.version === 3) {
  const email: string = read.data.email;
  void email;
}
// @ts-expect-error: no such type in the registry
readEnvelope("", "sesion");
EOF
cat >"$TMP/tsconfig.json" <<'EOF'
{
  "compilerOptions": {
    "module": "nodenext", "moduleResolution": "nodenext", "target": "es2022", "lib": ["es2024"],
    "types": [], "strict": true, "noEmit": true, "skipLibCheck": false
  },
  "files": ["check.mts"]
}
EOF

# consumer NAME TYPE COMMAND [AJV6]: a fresh project, the install command, and every check.
n=0
consumer() {
    local name=$1 type=$2 cmd=$3 ajv6=${4:-}
    WAY="$name ($cmd, $type project${ajv6:+, with ajv 6})"
    local dir="$TMP/project-$name"
    mkdir -p "$dir" && cd "$dir"
    if [[ $type == module ]]; then
        printf '{ "name": "consumer-%s", "version": "1.0.0", "private": true, "type": "module" }\n' "$name" >package.json
    else
        # What `npm init -y` writes (npm 11): explicit, so Node does not guess from the syntax.
        printf '{ "name": "consumer-%s", "version": "1.0.0", "private": true, "type": "commonjs" }\n' "$name" >package.json
    fi
    cp "$TMP/$TGZ_NAME" "$TMP/consumer.mjs" "$TMP/check.mts" "$TMP/tsconfig.json" .
    if [[ -n $ajv6 ]]; then
        step "install ajv 6 first" npm i ajv@6
    fi
    step "install" bash -c "$cmd"
    local pkg=node_modules/@kv-envelope/ts
    [[ -e $pkg/package.json ]] || die "$WAY: $pkg is not installed"
    if [[ $cmd == *--install-links* || $cmd == *.tgz* ]]; then
        [[ ! -L $pkg ]] || die "$WAY: $pkg is a link, expected a copy"
    else
        [[ -L $pkg ]] || die "$WAY: $pkg is a copy, expected npm's link to the checkout"
    fi
    if [[ -n $ajv6 ]]; then
        [[ $(node -p 'require("ajv/package.json").version') == 6.* ]] || die "$WAY: the project's own ajv is not ajv 6"
    fi
    step "generate from schemas/" npx --no kv-envelope-ts generate --schemas "$REPO_ROOT/schemas" --out gen
    step "generate --check" npx --no kv-envelope-ts generate --schemas "$REPO_ROOT/schemas" --out gen --check
    step "generate with formats" npx --no kv-envelope-ts generate --schemas "$TMP/extra-schemas" --out gen-extra
    step "consumer script" node consumer.mjs
    step "tsc over the generated types" node "$TSC" -p .
    local bad
    bad=$(grep -hoE '^import [^"]* from "[^".][^"]*"' gen/*.js gen-extra/*.js | grep -vE '"@kv-envelope/ts/runtime/[a-z0-9_]+"$' || true)
    [[ -z $bad ]] || die "$WAY: generated code imports something other than @kv-envelope/ts/runtime/*: $(echo "$bad" | sort -u | tr '\n' ' ')"
    grep -q '"@kv-envelope/ts/runtime/formats"' gen-extra/event.v1.js || die "$WAY: the formats check imports no formats helper"
    cd "$TMP"
    n=$((n + 1))
    echo "ts-install: ok: $WAY ($(elapsed))"
}

# Only these shapes are run: a plain `npm i …` (once <checkout> is replaced), or
# `(cd <checkout> && npm ci …)`.
INSTALL_RE='^npm i [^;&|`$()<>]+$'
PREPARE_RE='^\(cd <checkout> && npm ci [^;&|`$()<>]+\)$'
first_install=
for raw in "${COMMANDS[@]}"; do
    cmd=${raw//<checkout>/$CHECKOUT}
    if [[ $cmd =~ $INSTALL_RE ]]; then
        if [[ $raw == *.tgz ]]; then name=tarball; elif [[ $raw == *--install-links* ]]; then name=copied; else name=linked; fi
        type=commonjs; (( n % 2 == 1 )) && type=module
        consumer "$name" "$type" "$cmd"
        [[ -n $first_install ]] || first_install=$cmd
    elif [[ $raw =~ $PREPARE_RE ]]; then
        WAY="checkout"
        step "prepare the checkout" bash -c "$cmd"
        echo "ts-install: ok: $raw ($(elapsed))"
    else
        die "unexpected command in ts/README.md's Install block: $raw"
    fi
done
(( n >= 3 )) || die "ts/README.md's Install block gives $n install commands; expected the tarball, linked and copied ways"
[[ $first_install == *.tgz ]] || die "the first install command in ts/README.md is not the tarball"
consumer tarball-ajv6 module "$first_install" ajv6
echo "ts-install: all $n installs ok in $(elapsed)"
