// Helpers of the TypeScript-worker end-to-end tests: HTTP against examples/ts-worker (served by
// scripts/with-ts-worker.sh) and the shared local KV through scripts/worker-kv.sh (`wrangler kv key
// --local`, the Rust demo's wrangler.toml: the same namespaces). Everything needed is required;
// nothing is skipped.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export function required(name) {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: run through scripts/with-ts-worker.sh (see scripts/e2e-ts.sh)`);
  return value;
}

export const TS_BASE = required("TS_WORKER_URL");
export const REPO_ROOT = required("REPO_ROOT");
required("WRANGLER_PERSIST_DIR");

/** fetch against a worker; `json` parsed when the body is JSON. */
export async function call(base, path, init = {}) {
  const res = await fetch(base + path, { redirect: "manual", ...init });
  const text = await res.text();
  let json;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, text, json, headers: res.headers };
}

export const ts = (path, init) => call(TS_BASE, path, init);

/**
 * The second TS worker of scripts/e2e-ts.sh (SECOND_TS_WORKER_URL): the same key ring as
 * TS_WORKER_URL, with SEAL_REQUIRE_SEALED=off, the migration path that reads values in clear
 * (TS_WORKER_URL refuses them: `not_sealed`, the library's default). Required only by the files
 * that call it: e2e/interop.test.mjs also imports this module, with one TS worker.
 */
export function migratingBase() {
  return required("SECOND_TS_WORKER_URL");
}

/**
 * Both workers' rings, checked before any test relies on them: the same keys, TS_WORKER_URL
 * requiring sealed values and the migrating worker not. `keyIds`: the ring expected.
 */
export async function assertRings(keyIds) {
  for (const [base, requireSealed] of [
    [TS_BASE, true],
    [migratingBase(), false],
  ]) {
    const res = await call(base, "/keyring");
    assert.equal(res.status, 200, `${base} has no key ring: ${res.text} (scripts/e2e-ts.sh gives both interop/sealed.json's)`);
    assert.deepEqual(res.json.keyIds, keyIds, `${base}: the ring is interop/sealed.json's TEST ring`);
    assert.equal(res.json.requireSealed, requireSealed, `${base}: requireSealed (SEAL_REQUIRE_SEALED, scripts/e2e-ts.sh)`);
  }
}

/** PUT a JSON body to the TS worker. */
export const tsPut = (path, body, base = TS_BASE) =>
  call(base, path, { method: "PUT", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });

/** A fresh key suffix (tests share one KV). */
export const fresh = () => randomBytes(8).toString("hex");

const scratch = mkdtempSync(join(tmpdir(), "kv-e2e-ts-"));
process.on("exit", () => rmSync(scratch, { recursive: true, force: true }));
let n = 0;

// Asynchronous on purpose (as e2e/lib/worker.mjs explains): a blocked event loop breaks keep-alive.
function run(cmd, args, what) {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: REPO_ROOT, stdio: ["ignore", "pipe", "pipe"] });
    const out = [];
    const err = [];
    child.stdout.on("data", (c) => out.push(c));
    child.stderr.on("data", (c) => err.push(c));
    child.on("error", (e) => reject(new Error(`${what}: ${e.message}`)));
    child.on("close", (code, signal) => {
      if (code === 0) return resolve(Buffer.concat(out));
      reject(new Error(`${what} exited ${code ?? signal}: ${Buffer.concat(err).toString("utf8").slice(-2000)}`));
    });
  });
}

/** Write raw bytes into the shared local KV from another process (wrangler's CLI). */
export async function kvPut(key, bytes, { binding = "KV", metadata } = {}) {
  n += 1;
  const file = join(scratch, `v${n}.bin`);
  writeFileSync(file, bytes);
  const args = ["put", key, "--path", file, "--binding", binding];
  if (metadata !== undefined) args.push("--metadata", metadata);
  await run(join(REPO_ROOT, "scripts/worker-kv.sh"), args, `worker-kv.sh put ${key}`);
}

/** Raw bytes of `key` in the shared local KV; null when missing. */
export async function kvGet(key, { binding = "KV" } = {}) {
  const out = await run(join(REPO_ROOT, "scripts/worker-kv.sh"), ["get", key, "--binding", binding], `worker-kv.sh get ${key}`);
  if (out.equals(Buffer.from("Value not found\n"))) return null;
  return out;
}

/** `wrangler kv key list --local`: [{ name, expiration?, metadata? }]. */
export async function kvList(prefix, { binding = "KV" } = {}) {
  const out = await run(join(REPO_ROOT, "scripts/worker-kv.sh"), ["list", "--prefix", prefix, "--binding", binding], "worker-kv.sh list");
  return JSON.parse(out.toString("utf8"));
}

/** A committed file of the repository, as bytes. */
export const repoFile = (path) => readFileSync(join(REPO_ROOT, path));

/** A current-version session payload valid under schemas/session.v3.schema.json. */
export function session(now = Date.now(), email = "ts@example.com") {
  return {
    userId: "u-ts-1",
    email,
    createdAt: now,
    expiresAt: now + 86_400_000,
    absoluteExpiresAt: now + 30 * 86_400_000,
    refreshedAt: now,
    roles: ["reader"],
  };
}

export function assertError(res, status, code, what) {
  assert.equal(res.status, status, `${what}: ${res.status} ${res.text}`);
  assert.equal(res.json?.error, code, `${what}: ${res.text}`);
}
