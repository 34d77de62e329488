// End-to-end tests of the axum example worker (examples/axum-worker) on workerd: tower-sessions on
// KvSessionStore, typed sessions through TypedSessionLayer / TypedSession<Session>, the cached
// route, hostile cookies and the KV write count of repeated reads. Served on its own by
// scripts/e2e.sh (WORKER_EXAMPLE=axum-worker scripts/with-worker.sh), after the demo's files.

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";

import {
  BASE as BASE_URL,
  COOKIE_NAME,
  delta,
  http,
  kvGet,
  kvList,
  kvPut,
  kvSeed,
  newSessionId,
  stats,
  WORKER_LOG,
} from "./lib/worker.mjs";

const TOWER_COOKIE = "__Host-id"; // the example names tower-sessions' cookie with the __Host- prefix
const HOUR = 3_600_000;
const DAY = 24 * HOUR;

/** `name=value` of the cookie `name` in a response's Set-Cookie, or null. */
function cookieOf(res, name) {
  for (const c of res.setCookies) {
    const m = new RegExp(`^${name}=([^;]*)`).exec(c);
    if (m) return m[1];
  }
  return null;
}

function jsonBody(user, field = "user") {
  return { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ [field]: user }) };
}

function cookie(name, value, headers = {}) {
  return { headers: { cookie: `${name}=${value}`, ...headers } };
}

async function towerLogin(user) {
  const res = await http("/tower/login", jsonBody(user));
  assert.equal(res.status, 200, `tower login: ${res.status} ${res.text}`);
  const id = cookieOf(res, TOWER_COOKIE);
  assert.ok(id, "tower login sets tower-sessions' cookie");
  return id;
}

async function typedLogin(email) {
  const res = await http("/typed/login", jsonBody(email, "email"));
  assert.equal(res.status, 303, `typed login: ${res.status} ${res.text}`);
  assert.equal(res.headers.get("location"), "/typed/me");
  const id = cookieOf(res, COOKIE_NAME);
  assert.match(id ?? "", /^[0-9a-f]{64}$/, "typed login sets the typed session cookie");
  return id;
}

test("healthz and 404 are JSON-free basics", async () => {
  assert.equal((await http("/healthz")).status, 200);
  assert.equal((await http("/no/such/route")).status, 404);
});

test("tower-sessions: login, a counter kept across requests, logout", async () => {
  const before = await stats();
  const id = await towerLogin("alice");
  for (const n of [1, 2, 3]) {
    const res = await http("/tower/counter", cookie(TOWER_COOKIE, id));
    assert.equal(res.status, 200, `counter ${n}: ${res.text}`);
    assert.deepEqual(res.json(), { user: "alice", counter: n });
  }
  const d = delta(before, await stats());
  // login writes once, each counter step changes the data: one write each
  assert.equal(d("kv_writes"), 4, "one KV write per modifying request");

  // another login has its own counter
  const other = await towerLogin("bob");
  assert.equal((await http("/tower/counter", cookie(TOWER_COOKIE, other))).json().counter, 1);
  assert.equal((await http("/tower/counter", cookie(TOWER_COOKIE, id))).json().counter, 4);

  const out = await http("/tower/logout", { method: "POST", ...cookie(TOWER_COOKIE, id) });
  assert.equal(out.status, 200, out.text);
  const after = await http("/tower/counter", cookie(TOWER_COOKIE, id));
  assert.equal(after.status, 401, `after logout: ${after.status} ${after.text}`);
  assert.equal(after.json().error, "no_session");
  // without any cookie: 401 JSON as well
  const none = await http("/tower/counter");
  assert.equal(none.status, 401);
  assert.match(none.headers.get("content-type") ?? "", /^application\/json/);
});

test("tower-sessions: a session only kept alive costs no KV write (refresh window)", async () => {
  const id = await towerLogin("carol");
  const before = await stats();
  for (let i = 0; i < 20; i++) {
    const res = await http("/tower/me", cookie(TOWER_COOKIE, id));
    assert.equal(res.status, 200, res.text);
  }
  const d = delta(before, await stats());
  assert.equal(d("kv_writes"), 0, "always_save inside the refresh window writes nothing");
  assert.equal(d("kv_reads"), 20 * 2, "a load and the save's comparison read per request");
});

test("tower-sessions: form login works too; a bad body is a 4xx", async () => {
  const res = await http("/tower/login", {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: "user=dora",
  });
  assert.equal(res.status, 200, res.text);
  assert.equal(res.json().user, "dora");
  for (const [ct, body] of [
    ["application/json", "{not json"],
    ["application/json", JSON.stringify({ user: "" })],
    ["application/json", JSON.stringify({ user: "x".repeat(300) })],
    ["text/plain", "user=x"],
  ]) {
    const bad = await http("/tower/login", { method: "POST", headers: { "content-type": ct }, body });
    assert.ok(bad.status >= 400 && bad.status < 500, `${ct} ${body.slice(0, 20)}: ${bad.status}`);
  }
});

test("typed sessions: login, /typed/me, rotation, logout", async () => {
  const id = await typedLogin("Erin@example.com");
  const me = await http("/typed/me", cookie(COOKIE_NAME, id));
  assert.equal(me.status, 200, me.text);
  assert.deepEqual(me.json(), { user_id: "erin@example.com", email: "Erin@example.com" });
  assert.equal((await http("/typed/api/me", cookie(COOKIE_NAME, id))).status, 200);

  const rot = await http("/typed/rotate", { method: "POST", ...cookie(COOKIE_NAME, id) });
  assert.equal(rot.status, 200, rot.text);
  const rotated = cookieOf(rot, COOKIE_NAME);
  assert.match(rotated ?? "", /^[0-9a-f]{64}$/, "rotation sets a new cookie");
  assert.notEqual(rotated, id, "rotation changes the id");
  assert.equal(rot.setCookies.filter((c) => c.startsWith(`${COOKIE_NAME}=`)).length, 1, "one session cookie");
  assert.equal((await http("/typed/api/me", cookie(COOKIE_NAME, id))).status, 401, "the old id no longer works");
  const now = await http("/typed/api/me", cookie(COOKIE_NAME, rotated));
  assert.equal(now.status, 200, now.text);
  assert.equal(now.json().email, "Erin@example.com");

  const out = await http("/typed/logout", { method: "POST", ...cookie(COOKIE_NAME, rotated) });
  assert.equal(out.status, 200, out.text);
  assert.equal(cookieOf(out, COOKIE_NAME), "", "logout clears the cookie");
  assert.equal((await http("/typed/api/me", cookie(COOKIE_NAME, rotated))).status, 401);
});

test("typed sessions: pages redirect to /typed/login, APIs answer 401 JSON", async () => {
  const page = await http("/typed/me");
  assert.equal(page.status, 302, page.text);
  assert.match(page.headers.get("location") ?? "", /^\/typed\/login/);
  const api = await http("/typed/api/me");
  assert.equal(api.status, 401, api.text);
  assert.match(api.headers.get("content-type") ?? "", /^application\/json/);
  assert.equal(api.headers.get("cache-control"), "no-store");
  // rotation and the other session routes without a session: no 5xx
  assert.ok((await http("/typed/rotate", { method: "POST" })).status < 500);
});

test("typed sessions: planted records, live and expired", async () => {
  const now = Date.now();
  const plant = async (expiresAt) => {
    const id = newSessionId();
    const seeded = await kvSeed("session", {
      id, version: "3", codec: "json", "user-id": "planted", email: "planted@example.com",
      "created-at": String(now - DAY), "expires-at": String(expiresAt),
    });
    // A current-version session comes with its per-user index entry, as the store writes one.
    if (seeded.index) await kvPut(seeded.index.key, seeded.index.bytes, { binding: "SESSIONS", metadata: seeded.index.metadata });
    await kvPut(seeded.key, seeded.bytes, { binding: "SESSIONS", metadata: seeded.metadata });
    return id;
  };
  const live = await plant(now + HOUR);
  const res = await http("/typed/api/me", cookie(COOKIE_NAME, live));
  assert.equal(res.status, 200, `planted live session: ${res.status} ${res.text}`);
  assert.equal(res.json().email, "planted@example.com");

  const expired = await plant(now - 60_000);
  const gone = await http("/typed/api/me", cookie(COOKIE_NAME, expired));
  assert.equal(gone.status, 401, `planted expired session: ${gone.status} ${gone.text}`);
  const page = await http("/typed/me", cookie(COOKIE_NAME, expired));
  assert.equal(page.status, 302, "an expired session on a page goes to the login page");
});

test("tower-sessions: a planted record past its expiry date is no session", async () => {
  const list = () => kvList({ binding: "SESSIONS", prefix: "tower-session:" });
  const before = new Set((await list()).map((k) => k.name));
  const id = await towerLogin("gina");
  const added = (await list()).filter((k) => !before.has(k.name));
  assert.equal(added.length, 1, "login stored one tower-session record");
  const [{ name: key, metadata }] = added;
  assert.ok(!key.includes(id) && !key.includes(decodeURIComponent(id)), "the KV key is a hash, not the session id");
  const stored = JSON.parse((await kvGet(key, { binding: "SESSIONS" })).toString("utf8"));
  assert.equal(stored.type, "tower-session");
  assert.equal(typeof stored.data.expiryDate, "number");
  // Plant the same record with another expiry date (envelope header and record agree).
  const plant = async (expiry) => {
    const record = { ...stored, exp: expiry, data: { ...stored.data, expiryDate: expiry } };
    const meta = metadata && JSON.stringify({ ...metadata, e: expiry });
    await kvPut(key, Buffer.from(JSON.stringify(record)), { binding: "SESSIONS", metadata: meta });
  };
  // Control: a planted record with a live expiry date is read (the edit itself is accepted).
  await plant(Date.now() + HOUR);
  const live = await http("/tower/counter", cookie(TOWER_COOKIE, id));
  assert.equal(live.status, 200, `planted live record: ${live.status} ${live.text}`);
  assert.equal(live.json().counter, 1);
  await plant(Date.now() - 60_000);
  const gone = await http("/tower/counter", cookie(TOWER_COOKIE, id));
  assert.equal(gone.status, 401, `planted expired record: ${gone.status} ${gone.text}`);
});

test("hostile cookies never cause a 5xx", async () => {
  const garbage = [
    "%%%", "\u0000", "a".repeat(64), "z".repeat(64), "0".repeat(63), "=".repeat(20),
    "AAAAAAAAAAAAAAAAAAAAAA", "-1", "..", "../../etc", "'; DROP", "é".repeat(10),
  ];
  const cookies = [
    ...garbage.flatMap((g) => [`${COOKIE_NAME}=${g}`, `${TOWER_COOKIE}=${g}`]),
    `${COOKIE_NAME}=${"f".repeat(6000)}`, // huge
    `${TOWER_COOKIE}=${"A".repeat(6000)}`,
    Array.from({ length: 150 }, (_, i) => `${COOKIE_NAME}=${newSessionId()}; c${i}=${i}`).join("; "), // many
    Array.from({ length: 150 }, (_, i) => `${TOWER_COOKIE}=x${i}`).join("; "),
  ];
  const routes = [
    ["GET", "/tower/counter"], ["GET", "/tower/me"], ["POST", "/tower/logout"],
    ["GET", "/typed/me"], ["GET", "/typed/api/me"], ["POST", "/typed/rotate"], ["POST", "/typed/logout"],
  ];
  for (const c of cookies) {
    let value;
    try {
      value = new Headers({ cookie: c }).get("cookie");
    } catch {
      continue; // not sendable by fetch (e.g. a NUL byte)
    }
    for (const [method, path] of routes) {
      const res = await http(path, { method, headers: { cookie: value } });
      assert.ok(res.status < 500, `${method} ${path} with cookie ${c.slice(0, 40)}…: ${res.status} ${res.text.slice(0, 200)}`);
    }
  }
  // tower login with a garbage cookie still logs in
  const res = await http("/tower/login", { ...jsonBody("hostile"), headers: { "content-type": "application/json", cookie: `${TOWER_COOKIE}=%%%` } });
  assert.equal(res.status, 200, res.text);
});

test("repeated typed reads make no KV write", async () => {
  const id = await typedLogin("frank@example.com");
  const before = await stats();
  for (let i = 0; i < 20; i++) {
    const res = await http("/typed/me", cookie(COOKIE_NAME, id));
    assert.equal(res.status, 200, res.text);
  }
  const d = delta(before, await stats());
  assert.equal(d("kv_writes"), 0, "20 reads of a fresh session: no KV write");
  assert.equal(d("kv_reads"), 20, "one KV read per request");
});

test("/cached: computed once, then the stored text", async () => {
  const first = await http("/cached");
  assert.equal(first.status, 200, first.text);
  assert.match(first.headers.get("content-type") ?? "", /^application\/json/);
  const value = first.json();
  assert.equal(value.message, "hello from axum on workers");
  const before = await stats();
  const second = await http("/cached");
  assert.equal(second.status, 200);
  assert.equal(second.headers.get("x-cache"), "hit");
  assert.deepEqual(second.json(), value, "the same stored value");
  assert.equal(delta(before, await stats())("cache_computations"), 0);
});

// ---- second black-box review (issue 26) ----

test("review 2: tower-sessions' cookie is __Host-id, Secure, Path=/, host-only", async () => {
  const res = await http("/tower/login", jsonBody("hostie"));
  assert.equal(res.status, 200, res.text);
  const set = res.setCookies.find((c) => c.startsWith(`${TOWER_COOKIE}=`));
  assert.ok(set, `a __Host-id cookie: ${res.setCookies.join(" | ")}`);
  assert.match(set, /;\s*Secure/i);
  assert.match(set, /;\s*Path=\/(;|$)/i);
  assert.doesNotMatch(set, /Domain=/i, "host-only");
  assert.ok(!res.setCookies.some((c) => c.startsWith("id=")), "no bare `id` cookie any more");
  // A bare `id` cookie (what a sibling subdomain can toss, Domain=parent) is another cookie now:
  // it never selects a session, whatever its order.
  const victim = cookieOf(res, TOWER_COOKIE);
  const attacker = await towerLogin("mallory");
  const tossed = await http("/tower/me", { headers: { cookie: `${TOWER_COOKIE}=${victim}; id=${attacker}` } });
  assert.equal(tossed.status, 200, tossed.text);
  assert.equal(tossed.json().user, "hostie", "served as the victim, not the tossed cookie");
});

const CROSS_SITE = { origin: "https://evil.example", "sec-fetch-site": "cross-site" };

test("review 2: a cross-site form POST cannot log the browser in (login CSRF), on both front ends", async () => {
  const form = (field, value) => ({
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded", ...CROSS_SITE },
    body: `${field}=${encodeURIComponent(value)}`,
  });
  for (const [path, field, value] of [
    ["/typed/login", "email", "victim@example.com"],
    ["/tower/login", "user", "victim"],
  ]) {
    const res = await http(path, form(field, value));
    assert.equal(res.status, 403, `${path}: ${res.status} ${res.text}`);
    assert.equal(res.json().error, "cross_origin");
    assert.deepEqual(res.setCookies, [], `${path}: no session cookie`);
    // An old browser: Origin only.
    const old = await http(path, {
      method: "POST",
      headers: { "content-type": "application/json", origin: "https://evil.example" },
      body: JSON.stringify({ [field]: value }),
    });
    assert.equal(old.status, 403, `${path} (Origin only): ${old.status}`);
  }
  // Logout and rotation are state changes too.
  for (const path of ["/typed/logout", "/typed/rotate", "/tower/logout"]) {
    assert.equal((await http(path, { method: "POST", headers: CROSS_SITE })).status, 403, path);
  }
  // Same-origin browsers and non-browser clients still log in.
  const own = new URL(BASE_URL).origin;
  const same = await http("/typed/login", {
    method: "POST",
    headers: { "content-type": "application/json", origin: own, "sec-fetch-site": "same-origin" },
    body: JSON.stringify({ email: "same.origin@example.com" }),
  });
  assert.equal(same.status, 303, same.text);
  await typedLogin("no.headers@example.com");
});

test("review 2: a bad email is a 4xx, never 503", async () => {
  for (const email of ["notanemail", "x<script>@example.com", "аda@example.com", "a@b", `${"a".repeat(300)}@example.com`]) {
    const res = await http("/typed/login", jsonBody(email, "email"));
    assert.ok(res.status >= 400 && res.status < 500, `${JSON.stringify(email)}: ${res.status} ${res.text}`);
    assert.deepEqual(res.setCookies, [], "no session");
  }
  const res = await http("/typed/login", jsonBody("notanemail", "email"));
  assert.equal(res.status, 422);
  assert.equal(res.json().error, "invalid_value");
  assert.doesNotMatch(res.text, /notanemail/, "the value is not echoed");
});

test("review 2: tower data that no longer fits the app's type is no session, not a lasting 503, and is never logged", async () => {
  const list = () => kvList({ binding: "SESSIONS", prefix: "tower-session:" });
  const before = new Set((await list()).map((k) => k.name));
  const id = await towerLogin("typed.tower");
  const [{ name: key, metadata }] = (await list()).filter((k) => !before.has(k.name));
  const stored = JSON.parse((await kvGet(key, { binding: "SESSIONS" })).toString("utf8"));
  const marker = `str-${newSessionId().slice(0, 12)}`;
  const record = { ...stored, data: { ...stored.data, data: { ...stored.data.data, n: marker } } };
  await kvPut(key, Buffer.from(JSON.stringify(record)), { binding: "SESSIONS", metadata: metadata && JSON.stringify(metadata) });
  const res = await http("/tower/counter", cookie(TOWER_COOKIE, id));
  assert.equal(res.status, 401, `${res.status} ${res.text}`);
  assert.equal(res.json().error, "no_session");
  assert.doesNotMatch(res.text, new RegExp(marker));
  const cleared = res.setCookies.find((c) => c.startsWith(`${TOWER_COOKIE}=`));
  assert.ok(cleared && /Max-Age=0/i.test(cleared), `the cookie is cleared: ${res.setCookies.join(" | ")}`);
  assert.equal(await kvGet(key, { binding: "SESSIONS" }), null, "the record that no longer fits is gone");
  // Not a lasting state: the next request is simply without a session, and a login works.
  assert.equal((await http("/tower/counter", cookie(TOWER_COOKIE, id))).status, 401);
  await towerLogin("typed.tower");
  assert.doesNotMatch(readFileSync(WORKER_LOG, "utf8"), new RegExp(marker), "the stored value never reached the log");
});

test("typed sessions: the user's devices listed, another signed out, only the user's own", async () => {
  const ua = (agent) => ({ "user-agent": agent });
  const email = `devices.${Date.now()}@example.com`;
  const login = async (agent) => {
    const res = await http("/typed/login", { ...jsonBody(email, "email"), headers: { "content-type": "application/json", ...ua(agent) } });
    assert.equal(res.status, 303, res.text);
    return cookieOf(res, COOKIE_NAME);
  };
  const laptop = await login("Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0");
  const phone = await login(
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
  );
  const stranger = await typedLogin(`stranger.${Date.now()}@example.com`);
  const list = await http("/typed/api/devices", cookie(COOKIE_NAME, laptop));
  assert.equal(list.status, 200, list.text);
  const { devices } = list.json();
  assert.deepEqual(
    devices.map((d) => [d.label, d.current]),
    [
      ["Firefox on Linux", true],
      ["Safari on iPhone", false],
    ],
  );
  const handle = devices[1].handle;
  assert.match(handle, /^[0-9a-f]{32}$/);
  assert.ok(!phone.includes(handle), "a handle is no part of the session id");
  const revoke = (id, h, headers = {}) =>
    http("/typed/api/devices/revoke", {
      method: "POST",
      headers: { cookie: `${COOKIE_NAME}=${id}`, "content-type": "application/json", ...headers },
      body: JSON.stringify({ handle: h }),
    });
  const foreign = await revoke(stranger, handle);
  assert.equal(foreign.status, 404, `another user's session cannot revoke it: ${foreign.text}`);
  const cross = await revoke(laptop, handle, { origin: "https://evil.example", "sec-fetch-site": "cross-site" });
  assert.equal(cross.status, 403, cross.text);
  assert.equal((await http("/typed/api/me", cookie(COOKIE_NAME, phone))).status, 200, "the phone still works");
  const done = await revoke(laptop, handle);
  assert.equal(done.status, 200, done.text);
  assert.deepEqual(done.json(), { revoked: "device" });
  assert.equal((await http("/typed/api/me", cookie(COOKIE_NAME, phone))).status, 401, "the phone is signed out");
  assert.equal((await http("/typed/api/devices", cookie(COOKIE_NAME, laptop))).json().devices.length, 1);
  assert.equal((await http("/typed/api/devices")).status, 401, "no session: 401 JSON");
});
