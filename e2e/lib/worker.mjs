// Helpers shared by the end-to-end tests: HTTP against the demo worker, its /_stats counters,
// and the local KV behind it (through scripts/worker-kv.sh, i.e. `wrangler kv key ... --local`).
// Run the tests through scripts/e2e.sh (which uses scripts/with-worker.sh); every helper
// throws when what it needs is missing, so nothing is ever skipped.

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

function required(name) {
  const value = process.env[name];
  if (!value) {
    throw new Error(`${name} is not set: run the e2e tests through scripts/e2e.sh`);
  }
  return value;
}

export const BASE = required("WORKER_URL");
export const REPO_ROOT = required("REPO_ROOT");
export const SEED_BIN = required("KV_SEED_BIN");
/** The worker's log (wrangler dev's output), to check what never reaches it. */
export const WORKER_LOG = required("WORKER_LOG_FILE");

/** fetch against the worker, never following redirects. */
export async function http(path, init = {}) {
  const res = await fetch(BASE + path, { redirect: "manual", ...init });
  const body = Buffer.from(await res.arrayBuffer());
  return {
    status: res.status,
    headers: res.headers,
    body,
    text: body.toString("utf8"),
    json() {
      return JSON.parse(body.toString("utf8"));
    },
    setCookies: res.headers.getSetCookie(),
  };
}

/** Assert a response is a client error with a JSON body naming `code`. */
export function assertClientError(res, status, code, what) {
  assert.equal(res.status, status, `${what}: status ${res.status}, body ${res.text}`);
  assert.match(res.headers.get("content-type") ?? "", /^application\/json/, `${what}: JSON error body`);
  const body = res.json();
  assert.equal(body.error, code, `${what}: error code`);
  assert.equal(typeof body.message, "string", `${what}: has a message`);
  assert.ok(body.message.length > 5, `${what}: message is not empty`);
  return body;
}

/** The demo's cookie: the library's default, `__Host-` prefixed. */
export const COOKIE_NAME = "__Host-session";

/** The session id in a response's Set-Cookie, or null. */
export function sessionFromSetCookie(res) {
  for (const c of res.setCookies) {
    const m = new RegExp(`^${COOKIE_NAME}=([^;]*)`).exec(c);
    if (m) return m[1];
  }
  return null;
}

/** A fresh, well-formed session id (what the store generates: 64 lowercase hex digits). */
export function newSessionId() {
  return randomBytes(32).toString("hex");
}

/** The documented KV key of a session id: `session:<sha256(id) hex>`. */
export function sessionKey(id) {
  return "session:" + createHash("sha256").update(id).digest("hex");
}

/** POST /login with a JSON email; returns the session id from the cookie. */
export async function login(email) {
  const res = await http("/login", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ email }),
  });
  assert.equal(res.status, 303, `login: ${res.status} ${res.text}`);
  const id = sessionFromSetCookie(res);
  assert.match(id ?? "", /^[0-9a-f]{64}$/, "login sets a session cookie");
  return id;
}

export function withSession(id, headers = {}) {
  return { headers: { cookie: `${COOKIE_NAME}=${id}`, ...headers } };
}

export async function stats() {
  const res = await http("/_stats");
  assert.equal(res.status, 200, "/_stats answers");
  return res.json();
}

/** Where the demo keeps sessions: "kv" or "durable" (SESSION_BACKEND, from /_stats). */
export async function sessionBackend() {
  return (await stats()).session_backend;
}

/**
 * The session of `id` is stored (`present`) or not, where the demo keeps sessions. In KV: its
 * key under the `KV` binding. On Durable Objects (SESSION_BACKEND=durable), which a test cannot
 * read from outside, the KV namespace must hold nothing under the key either way (the routes'
 * answers check the session's life there).
 */
export async function assertSessionStored(id, present, what) {
  const inKv = await kvGet(sessionKey(id));
  if ((await sessionBackend()) === "durable") {
    assert.equal(inKv, null, `${what}: sessions on Durable Objects are never in KV`);
  } else if (present) {
    assert.notEqual(inKv, null, what);
  } else {
    assert.equal(inKv, null, what);
  }
}

/** Counter deltas between two /_stats snapshots of the same isolate. */
export function delta(before, after) {
  assert.equal(
    after.isolate_id,
    before.isolate_id,
    "the worker's isolate changed between two /_stats reads: counters are per isolate",
  );
  const d = (path) => path.split(".").reduce((o, k) => o[k], after) - path.split(".").reduce((o, k) => o[k], before);
  return d;
}

/** Wait until the cache has no computation or write in flight (background work finished). */
export async function settled(timeoutMs = 10_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const s = await stats();
    if (s.cache.in_flight === 0) return s;
    if (Date.now() > deadline) throw new Error(`cache still has ${s.cache.in_flight} flights after ${timeoutMs} ms`);
    await sleep(50);
  }
}

/** Poll /_stats until `pred(stats)` holds. */
export async function until(pred, what, timeoutMs = 10_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const s = await stats();
    if (pred(s)) return s;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const scratch = mkdtempSync(join(tmpdir(), "kv-e2e-"));
process.on("exit", () => rmSync(scratch, { recursive: true, force: true }));
let fileCounter = 0;
export function scratchFile() {
  fileCounter += 1;
  return join(scratch, `value-${fileCounter}.bin`);
}

// Child processes run asynchronously on purpose: a blocked event loop (spawnSync of wrangler
// takes seconds) keeps undici from noticing that the server closed an idle keep-alive
// connection, and the next fetch fails on the dead socket.
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
      const tail = Buffer.concat(err).toString("utf8").slice(-2000);
      reject(new Error(`${what} exited ${code ?? signal}: ${tail}`));
    });
  });
}

/** Write raw bytes into the worker's local KV (binary safe, one key at a time); `expiration`:
 * seconds since the epoch, as `wrangler kv key list` shows it. */
export async function kvPut(key, bytes, { binding = "KV", metadata, expiration } = {}) {
  const file = scratchFile();
  writeFileSync(file, bytes);
  const args = ["put", key, "--path", file, "--binding", binding];
  if (metadata !== undefined) args.push("--metadata", metadata);
  if (expiration !== undefined) args.push("--expiration", String(expiration));
  await run(join(REPO_ROOT, "scripts/worker-kv.sh"), args, `worker-kv.sh put ${key}`);
}

/**
 * Write many values into the worker's local KV at once: `entries` = [{ key, bytes, metadata? }]
 * (metadata: JSON text, as kvSeed returns it). Binary safe (sealed frames): through wrangler's
 * `getPlatformProxy` on the same persisted state as the running `wrangler dev`, since
 * `wrangler kv bulk put` turns "base64" values into UTF-8 text locally (wrangler 4.86), and one
 * `wrangler kv key put` per key takes about a second.
 */
export async function kvBulkPut(entries, { binding = "KV" } = {}) {
  await withLocalKv(binding, async (kv) => {
    for (const { key, bytes, metadata } of entries) {
      await kv.put(key, new Uint8Array(bytes), metadata === undefined ? {} : { metadata: JSON.parse(metadata) });
    }
  });
}

/** Delete `key` from the worker's local KV. */
export async function kvDelete(key, { binding = "KV" } = {}) {
  await withLocalKv(binding, (kv) => kv.delete(key));
}

/** Run `f` with the KV binding `binding` of the running worker's persisted local state. */
async function withLocalKv(binding, f) {
  const { getPlatformProxy } = await import("wrangler");
  const proxy = await getPlatformProxy({
    configPath: join(required("WORKER_DIR"), "wrangler.toml"),
    // `wrangler dev --persist-to DIR` keeps its state under DIR/v3.
    persist: { path: join(required("WRANGLER_PERSIST_DIR"), "v3") },
  });
  try {
    const kv = proxy.env[binding];
    assert.ok(kv, `no KV binding ${binding} in the worker's wrangler.toml`);
    return await f(kv);
  } finally {
    await proxy.dispose();
  }
}

/** Read raw bytes from the worker's local KV; null when the key does not exist. */
export async function kvGet(key, { binding = "KV" } = {}) {
  const args = ["get", key, "--binding", binding];
  const stdout = await run(join(REPO_ROOT, "scripts/worker-kv.sh"), args, `worker-kv.sh get ${key}`);
  // wrangler prints this (exit status 0) for a missing key.
  if (stdout.equals(Buffer.from("Value not found\n"))) return null;
  return stdout;
}

/**
 * Build a value with kv-envelope itself (e2e/seed): `kvSeed("session", {id, version, codec, ...})`.
 * Returns { key, metadata, bytes, index } (`index`: the entry of a v3 session, or null).
 */
export async function kvSeed(command, options) {
  const out = scratchFile();
  const args = [command];
  // `seal: true`: sealed with the demo's ring (it refuses sessions stored in clear).
  const { seal, ...rest } = options;
  if (seal) args.push("--seal-keys-file", SECRETS_FILE);
  for (const [k, v] of Object.entries(rest)) {
    args.push(`--${k}`, typeof v === "string" ? v : JSON.stringify(v));
  }
  args.push("--out", out);
  const line = JSON.parse((await run(SEED_BIN, args, `kv-seed ${command}`)).toString("utf8"));
  // A current-version session comes with its index entry, as the store writes one.
  const index = line.index && { key: line.index.key, metadata: line.index.metadata, bytes: readFileSync(line.index.path) };
  return { key: line.key, metadata: line.metadata, bytes: readFileSync(out), index };
}

/**
 * Run a command asynchronously (see `run` above for why) and return its exit code and output
 * instead of throwing on a non-zero status: `{ code, stdout, stderr }` (stdout a Buffer, stderr text).
 * Throws only when the command cannot be started or is killed by a signal.
 */
export function runTool(cmd, args, { cwd = REPO_ROOT, what = cmd } = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd, stdio: ["ignore", "pipe", "pipe"] });
    const out = [];
    const err = [];
    child.stdout.on("data", (c) => out.push(c));
    child.stderr.on("data", (c) => err.push(c));
    child.on("error", (e) => reject(new Error(`${what}: ${e.message}`)));
    child.on("close", (code, signal) => {
      if (code === null) return reject(new Error(`${what} killed by ${signal}`));
      resolve({ code, stdout: Buffer.concat(out), stderr: Buffer.concat(err).toString("utf8") });
    });
  });
}

/** `wrangler kv key list --local` of the worker's namespace: [{ name, expiration?, metadata? }]. */
export async function kvList({ binding = "KV", prefix } = {}) {
  const args = ["list", "--binding", binding];
  if (prefix !== undefined) args.push("--prefix", prefix);
  const stdout = await run(join(REPO_ROOT, "scripts/worker-kv.sh"), args, "worker-kv.sh list");
  return JSON.parse(stdout.toString("utf8"));
}

/** The file the worker's secrets came from (examples/worker/.dev.vars or WORKER_ENV_FILE). */
export const SECRETS_FILE = required("WORKER_SECRETS_FILE");

/** Sealed frames start with this byte (clear ones with `{` or 0xC5). */
export const SEALED_MAGIC = 0xc6;

/**
 * Open a stored value the way the worker does, with the key ring in SECRETS_FILE
 * (`kv-seed open`): { type, version, codec, key_id (null in clear), expires_at, data }.
 */
export async function kvOpen(key, bytes, { keysFile = SECRETS_FILE } = {}) {
  const file = scratchFile();
  writeFileSync(file, bytes);
  const out = await run(SEED_BIN, ["open", "--key", key, "--in", file, "--keys-file", keysFile], `kv-seed open ${key}`);
  return JSON.parse(out.toString("utf8"));
}

/** The KV keys of a session's per-user index entries: `session-user:<sha256(user)>:<sha256(id)>`. */
export async function indexKeysOf(id) {
  const hashed = createHash("sha256").update(id).digest("hex");
  return (await kvList({ prefix: "session-user:" })).filter((k) => k.name.endsWith(`:${hashed}`));
}

/**
 * Assert `bytes` (and its KV metadata) is a sealed frame with key id `keyId` that shows none of
 * `secrets` (emails, user ids) in any form a reader could spot: raw, lowercased, base64, hex.
 */
export function assertSealed(bytes, metadata, keyId, secrets, what) {
  assert.ok(bytes, `${what}: stored`);
  assert.equal(bytes[0], SEALED_MAGIC, `${what}: a sealed frame (first byte 0x${bytes[0].toString(16)})`);
  assert.equal(metadata?.k, keyId, `${what}: KV metadata names key ${keyId}: ${JSON.stringify(metadata)}`);
  const haystacks = [bytes.toString("latin1"), bytes.toString("latin1").toLowerCase(), bytes.toString("base64"), bytes.toString("hex"), JSON.stringify(metadata)];
  for (const secret of secrets) {
    for (const needle of [secret, Buffer.from(secret).toString("base64").replace(/=+$/, ""), Buffer.from(secret).toString("hex")]) {
      for (const hay of haystacks) {
        assert.ok(!hay.includes(needle), `${what}: ${JSON.stringify(secret)} appears in the stored value or its metadata`);
      }
    }
  }
}

/** The KV metadata of one key (from the key listing), or undefined when the key is not listed. */
export async function kvMeta(key, { binding = "KV" } = {}) {
  return (await kvList({ binding, prefix: key })).find((k) => k.name === key)?.metadata;
}
