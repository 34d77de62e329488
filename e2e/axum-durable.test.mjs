// The axum example worker (examples/axum-worker) with its sessions in Durable Objects, on
// workerd: scripts/e2e.sh serves it for this file with SESSION_BACKEND=durable (its own fresh
// local state). Both front ends — tower-sessions' SessionManagerLayer over KvSessionStore, and
// TypedSessionLayer / TypedSession<Session> — run unchanged on `DurableKv`: sessions live in the
// SESSION_OBJECTS objects (the SESSIONS KV namespace holds none), a logout or rotation takes
// effect on the very next request, and the objects' SQLite storage really holds them.

import assert from "node:assert/strict";
import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";

import { COOKIE_NAME, http, kvList, stats } from "./lib/worker.mjs";

const TOWER_COOKIE = "__Host-id"; // the example names tower-sessions' cookie with the __Host- prefix

function cookieOf(res, name) {
  for (const c of res.setCookies) {
    const m = new RegExp(`^${name}=([^;]*)`).exec(c);
    if (m) return m[1];
  }
  return null;
}

function jsonBody(value, field) {
  return { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ [field]: value }) };
}

function cookie(name, value) {
  return { headers: { cookie: `${name}=${value}` } };
}

/** The SessionObject class's objects in the local state (one SQLite file each). */
function objectFiles() {
  const root = join(process.env.WRANGLER_PERSIST_DIR ?? "", "v3", "do");
  if (!existsSync(root)) return [];
  return readdirSync(root)
    .filter((d) => d.endsWith("-SessionObject"))
    .flatMap((d) => readdirSync(join(root, d)).filter((f) => f.endsWith(".sqlite")));
}

test("the axum worker keeps its sessions in the Durable Objects, none in KV", async () => {
  assert.equal((await stats()).session_backend, "durable", "SESSION_BACKEND=durable reached the worker");
  const before = objectFiles().length;
  const tower = await http("/tower/login", jsonBody("dora", "user"));
  assert.equal(tower.status, 200, tower.text);
  const typed = await http("/typed/login", jsonBody("Dora@example.com", "email"));
  assert.equal(typed.status, 303, typed.text);
  assert.deepEqual(await kvList({ binding: "SESSIONS" }), [], "the SESSIONS namespace holds no session");
  // A tower session is one object; a typed session one, and its user's index another.
  assert.ok(objectFiles().length >= before + 3, `objects: ${before} → ${objectFiles().length}`);
});

test("tower-sessions on the objects: a counter across requests, a logout seen at once", async () => {
  const res = await http("/tower/login", jsonBody("olga", "user"));
  assert.equal(res.status, 200, res.text);
  const id = cookieOf(res, TOWER_COOKIE);
  assert.ok(id, "tower login sets tower-sessions' cookie");
  for (const n of [1, 2, 3]) {
    const r = await http("/tower/counter", cookie(TOWER_COOKIE, id));
    assert.equal(r.status, 200, `counter ${n}: ${r.text}`);
    assert.deepEqual(r.json(), { user: "olga", counter: n });
  }
  assert.equal((await http("/tower/me", cookie(TOWER_COOKIE, id))).status, 200);
  const out = await http("/tower/logout", { method: "POST", ...cookie(TOWER_COOKIE, id) });
  assert.equal(out.status, 200, out.text);
  assert.equal((await http("/tower/counter", cookie(TOWER_COOKIE, id))).status, 401, "logged out at once");
});

test("typed sessions on the objects: /typed/me, rotation and logout take effect on the next request", async () => {
  const login = await http("/typed/login", jsonBody("Ivo@example.com", "email"));
  assert.equal(login.status, 303, login.text);
  const id = cookieOf(login, COOKIE_NAME);
  assert.match(id ?? "", /^[0-9a-f]{64}$/);
  const me = await http("/typed/api/me", cookie(COOKIE_NAME, id));
  assert.equal(me.status, 200, me.text);
  assert.deepEqual(me.json(), { user_id: "ivo@example.com", email: "Ivo@example.com" });

  const rot = await http("/typed/rotate", { method: "POST", ...cookie(COOKIE_NAME, id) });
  assert.equal(rot.status, 200, rot.text);
  const rotated = cookieOf(rot, COOKIE_NAME);
  assert.match(rotated ?? "", /^[0-9a-f]{64}$/);
  assert.notEqual(rotated, id);
  assert.equal((await http("/typed/api/me", cookie(COOKIE_NAME, id))).status, 401, "the old id is dead at once");
  assert.equal((await http("/typed/api/me", cookie(COOKIE_NAME, rotated))).status, 200);

  const out = await http("/typed/logout", { method: "POST", ...cookie(COOKIE_NAME, rotated) });
  assert.equal(out.status, 200, out.text);
  assert.equal((await http("/typed/api/me", cookie(COOKIE_NAME, rotated))).status, 401, "logged out at once");
  assert.equal((await http("/typed/me", cookie(COOKIE_NAME, rotated))).status, 302, "pages go to the login");
});

test("bad cookies on the objects are still 4xx, never a 5xx", async () => {
  for (const value of ["", "zz", "a".repeat(64), "%00", "x".repeat(5000)]) {
    for (const path of ["/typed/api/me", "/tower/counter"]) {
      const name = path.startsWith("/typed") ? COOKIE_NAME : TOWER_COOKIE;
      const res = await http(path, cookie(name, value));
      assert.ok(res.status >= 400 && res.status < 500, `${path} with ${JSON.stringify(value.slice(0, 8))}: ${res.status}`);
    }
  }
});

test("typed sessions on the objects: a device signed out from another is out at once", async () => {
  const email = `devices.${Date.now()}@example.com`;
  const login = async (agent) => {
    const res = await http("/typed/login", {
      ...jsonBody(email, "email"),
      headers: { "content-type": "application/json", "user-agent": agent },
    });
    assert.equal(res.status, 303, res.text);
    return cookieOf(res, COOKIE_NAME);
  };
  const laptop = await login("Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0");
  const phone = await login("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36");
  const list = await http("/typed/api/devices", cookie(COOKIE_NAME, laptop));
  assert.equal(list.status, 200, list.text);
  const { devices } = list.json();
  assert.deepEqual(
    devices.map((d) => [d.label, d.current]),
    [
      ["Firefox on Linux", true],
      ["Chrome on Windows", false],
    ],
  );
  const res = await http("/typed/api/devices/revoke", {
    method: "POST",
    headers: { cookie: `${COOKIE_NAME}=${laptop}`, "content-type": "application/json" },
    body: JSON.stringify({ handle: devices[1].handle }),
  });
  assert.equal(res.status, 200, res.text);
  assert.equal((await http("/typed/api/me", cookie(COOKIE_NAME, phone))).status, 401, "the other device is out on its next request");
  assert.deepEqual(await kvList({ binding: "SESSIONS" }), [], "nothing of it in KV");
});
