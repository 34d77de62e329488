#!/usr/bin/env bash
# `make interop-schemas`: the committed schemas in the validators other services use, in their
# default modes. Ajv 2020 strict + ajv-formats (interop/schemas.test.mjs, node --test) and
# Python's jsonschema (interop/check_schemas.py, which also runs docs/interop.md's example).
# Installs what is missing the way a newcomer would get it: the npm devDependencies from
# package-lock.json, and interop/requirements.txt into a venv under the repo (.venv-interop,
# gitignored). A missing node or python3 is an error, never a skip.
set -euo pipefail
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO_ROOT"
log() { echo "interop-schemas: $*" >&2; }
die() {
    log "error: $*"
    exit 1
}

command -v node >/dev/null || die "node not found: Node >= 20 is needed (Ajv, node --test)"
command -v npm >/dev/null || die "npm not found"
command -v python3 >/dev/null || die "python3 not found (the Python jsonschema check)"

# npm ci replaces node_modules, so only when Ajv is missing or the lock changed since the last
# install (npm writes node_modules/.package-lock.json), as scripts/setup-worker-toolchain.sh does.
hidden_lock=node_modules/.package-lock.json
if [[ ! -f node_modules/ajv/package.json || ! -f node_modules/ajv-formats/package.json \
      || ! -f "$hidden_lock" || package-lock.json -nt "$hidden_lock" ]]; then
    log "running npm ci (ajv, ajv-formats and the other devDependencies)"
    npm ci --no-audit --no-fund
fi

VENV="${INTEROP_VENV:-$REPO_ROOT/.venv-interop}"
stamp="$VENV/.requirements.txt"
if [[ ! -x "$VENV/bin/python" ]]; then
    log "creating $VENV (python3 -m venv)"
    python3 -m venv "$VENV" || die "python3 -m venv failed (Debian: apt-get install python3-venv)"
fi
if ! cmp -s interop/requirements.txt "$stamp"; then
    log "installing interop/requirements.txt into $VENV"
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r interop/requirements.txt
    cp interop/requirements.txt "$stamp"
fi

log "Ajv 2020 strict + ajv-formats"
node --test interop/schemas.test.mjs
log "Python jsonschema $("$VENV/bin/python" -c 'from importlib.metadata import version; print(version("jsonschema"))')"
"$VENV/bin/python" interop/check_schemas.py
log "all schemas portable"
