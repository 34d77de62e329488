// End-to-end tests of examples/minimal-worker, run by scripts/getting-started.sh against the
// worker it built and serves the way docs/getting-started.md says, in a directory outside this
// repository. Needs WORKER_URL (the running `wrangler dev`) and WORKER_DIR (its crate, where
// `npx wrangler kv key put --local` writes into the same local KV).

import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { test } from "node:test";

function required(name) {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: run through scripts/getting-started.sh`);
  return value;
}
const BASE = required("WORKER_URL");
const WORKER_DIR = required("WORKER_DIR");
const COOKIE = "__Host-session";
const JSON_ACCEPT = { accept: "application/json" };

async function http(path, init = {}) {
  const res = await fetch(BASE + path, { redirect: "manual", ...init });
  const text = await res.text();
  return { status: res.status, headers: res.headers, text, setCookies: res.headers.getSetCookie() };
}

/** The session cookie (`name=value`) a response sets, or null. */
function sessionCookie(res) {
  const c = res.setCookies.find((c) => c.startsWith(`${COOKIE}=`));
  return c ? c.split(";")[0] : null;
}

/** A raw value into the worker's local KV, as another writer (older code) would leave it. */
function kvPut(key, text) {
  execFileSync("npx", ["wrangler", "kv", "key", "put", "--local", "--binding", "KV", key, text], {
    cwd: WORKER_DIR,
    stdio: ["ignore", "ignore", "pipe"],
    env: { ...process.env, WRANGLER_SEND_METRICS: "false" },
  });
}

async function login(email) {
  const res = await http("/login", { method: "POST", body: new URLSearchParams({ email }) });
  assert.equal(res.status, 200, res.text);
  const cookie = sessionCookie(res);
  assert.ok(cookie, "login sets the session cookie");
  assert.match(res.setCookies.join("\n"), /HttpOnly; Secure; SameSite=Lax/);
  return cookie;
}

test("the cached computation: a miss, then hits", async () => {
  const first = await http("/forecast");
  assert.equal(first.status, 200);
  assert.deepEqual(JSON.parse(first.text), { summary: "sunny" });
  const second = await http("/forecast");
  assert.equal(second.headers.get("x-cache"), "hit");
});

test("a login from another site is refused", async () => {
  const res = await http("/login", {
    method: "POST",
    headers: { origin: "https://evil.example" },
    body: new URLSearchParams({ email: "mallory@example.com" }),
  });
  assert.equal(res.status, 403);
  assert.equal(sessionCookie(res), null);
});

test("the protected route wants a session", async () => {
  const res = await http("/profile", { headers: JSON_ACCEPT });
  assert.equal(res.status, 401);
  assert.equal(JSON.parse(res.text).error, "unauthenticated");
});

test("a profile: none, a v1 written by older code read as v2, updated, logged out", async () => {
  const cookie = await login("Grace@Example.com");
  const headers = { cookie, ...JSON_ACCEPT };
  assert.equal((await http("/profile", { headers })).status, 404);

  // What version 1 of the app wrote: read through the migration (language defaults to "en").
  kvPut("profile:grace@example.com", JSON.stringify({ kv: 1, type: "profile", v: 1, data: { name: "Grace" } }));
  const migrated = await http("/profile", { headers });
  assert.equal(migrated.status, 200, migrated.text);
  assert.deepEqual(JSON.parse(migrated.text), { name: "Grace", language: "en" });

  const put = await http("/profile", {
    method: "PUT",
    headers: { ...headers, "content-type": "application/json" },
    body: JSON.stringify({ name: "Grace", language: "fr" }),
  });
  assert.equal(put.status, 200, put.text);
  assert.equal(JSON.parse((await http("/profile", { headers })).text).language, "fr");

  // A value this code cannot use: its status (409), a JSON error, never a 500.
  kvPut("profile:grace@example.com", "{not json");
  const corrupt = await http("/profile", { headers });
  assert.equal(corrupt.status, 409, corrupt.text);
  assert.match(corrupt.headers.get("content-type") ?? "", /^application\/json/);
  assert.equal(typeof JSON.parse(corrupt.text).error, "string");
  assert.ok(!corrupt.text.includes("not json"), "the stored bytes are never echoed");

  const out = await http("/logout", { method: "POST", headers: { cookie } });
  assert.equal(out.status, 200);
  assert.match(out.setCookies.join("\n"), new RegExp(`^${COOKIE}=;.*Max-Age=0`, "m"));
  assert.equal((await http("/profile", { headers })).status, 401, "the old cookie is dead");
});
