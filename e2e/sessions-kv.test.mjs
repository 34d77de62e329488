// Sessions against what is really in KV: the write budget of sliding expiration (read from
// /_stats), values written by older code (schema v1, both codecs) read as the current version,
// and corrupt or future-version values that must neither break a request nor be overwritten.
// Values are built with kv-envelope itself (e2e/seed) and planted with `wrangler kv key put
// --local` (scripts/worker-kv.sh) under the session store's key, `session:<sha256(id)>`.

import assert from "node:assert/strict";
import { describe, test } from "node:test";

import {
  COOKIE_NAME,
  delta,
  http,
  kvGet,
  kvMeta,
  kvOpen,
  kvPut,
  kvSeed,
  login,
  newSessionId,
  sessionKey,
  stats,
  until,
  withSession,
} from "./lib/worker.mjs";

const DAY = 86400 * 1000;
const HOUR = 3600 * 1000;
const JSON_ACCEPT = { accept: "application/json" };

/** Plant a session built by the library; returns its id and the planted bytes. */
async function plant({ version, codec, createdAt, expiresAt, email = "old@example.com", userId = "u-legacy-1" }) {
  const id = newSessionId();
  // Sealed as the demo seals: its ring refuses sessions stored in clear.
  const seeded = await kvSeed("session", {
    seal: true,
    id,
    version: String(version),
    codec,
    "user-id": userId,
    email,
    "created-at": String(createdAt),
    "expires-at": String(expiresAt),
  });
  assert.equal(seeded.key, sessionKey(id), "seed tool and tests agree on the session key format");
  if (seeded.index) await kvPut(seeded.index.key, seeded.index.bytes, { metadata: seeded.index.metadata });
  await kvPut(seeded.key, seeded.bytes, { metadata: seeded.metadata });
  assert.deepEqual(await kvGet(seeded.key), seeded.bytes, "planted bytes read back identical");
  return { id, ...seeded };
}

function envelopeOf(bytes) {
  assert.equal(bytes[0], 0x7b, "a JSON envelope");
  return JSON.parse(bytes.toString("utf8"));
}

/** What the worker wrote under `key`: sealed (the demo seals its sessions), opened with its key
 * ring, as { type, v, data } like a clear JSON envelope. */
async function storedSession(key) {
  const bytes = await kvGet(key);
  assert.equal(bytes[0], 0xc6, "the worker's write is sealed");
  const opened = await kvOpen(key, bytes);
  assert.equal((await kvMeta(key))?.k, opened.key_id, "KV metadata names the key id");
  return { type: opened.type, v: opened.version, codec: opened.codec, data: opened.data };
}

describe("sliding expiration under KV's write budget", () => {
  test("repeated /me within the refresh threshold causes no KV write", async () => {
    const id = await login("slide@example.com");
    const before = await stats();
    for (let i = 0; i < 5; i++) {
      const res = await http("/me", withSession(id));
      assert.equal(res.status, 200);
      assert.equal(res.setCookies.length, 0, "no refresh cookie while the session is far from expiry");
    }
    const after = await stats();
    const d = delta(before, after);
    assert.equal(d("kv.KV.kv_reads"), 5, "one KV read per /me");
    assert.equal(d("kv.KV.kv_writes"), 0, "no KV write");
    assert.equal(d("kv.KV.kv_deletes"), 0);
  });

  test("a session near its idle expiry is extended once: one write, a longer cookie", async () => {
    const now = Date.now();
    const s = await plant({ version: 3, codec: "json", createdAt: now - DAY, expiresAt: now + HOUR });
    const before = await stats();
    const res = await http("/me", withSession(s.id));
    assert.equal(res.status, 200, res.text);
    assert.equal(res.json().expiresAt, now + HOUR, "the response shows the session as read");
    assert.equal(res.setCookies.length, 1, "the extended cookie rides on the response");
    const maxAge = Number(/Max-Age=(\d+)/.exec(res.setCookies[0])?.[1]);
    assert.ok(maxAge > 7 * 86400 - 120, `cookie extended to ~7 days: ${maxAge}`);
    // The write runs in ctx.waitUntil, after the response.
    const after = await until((x) => x.kv.KV.kv_writes > before.kv.KV.kv_writes, "the refresh write");
    assert.equal(delta(before, after)("kv.KV.kv_writes"), 1, "exactly one write");
    const stored = await storedSession(s.key);
    assert.ok(stored.data.expiresAt >= now + 7 * DAY - 60_000, "KV holds the extended expiry");
    assert.ok(stored.data.refreshedAt >= now, "refreshedAt moved");
    // Now far from expiry again: no more writes.
    const again = await stats();
    assert.equal((await http("/me", withSession(s.id))).setCookies.length, 0);
    assert.equal(delta(again, await stats())("kv.KV.kv_writes"), 0);
  });
});

describe("values written by older code", () => {
  test("a v1 session in JSON is read as the current version (and not rewritten)", async () => {
    const now = Date.now();
    const createdAt = now - HOUR;
    const expiresAt = now + 6 * DAY + 23 * HOUR; // more than the 6-day threshold left: no refresh
    const s = await plant({ version: 1, codec: "json", createdAt, expiresAt, email: "v1.json@example.com" });
    const planted = await kvOpen(s.key, s.bytes);
    assert.equal(planted.version, 1);
    assert.equal("absoluteExpiresAt" in planted.data, false, "a real v1 payload");
    const before = await stats();
    const res = await http("/me", withSession(s.id));
    assert.equal(res.status, 200, res.text);
    assert.deepEqual(res.json(), {
      userId: "u-legacy-1",
      email: "v1.json@example.com",
      createdAt,
      expiresAt,
      absoluteExpiresAt: createdAt + 30 * DAY, // v1 → v2 migration
      refreshedAt: createdAt, // v2 → v3 migration
      roles: [],
    });
    assert.equal(delta(before, await stats())("kv.KV.kv_writes"), 0, "reading migrates in memory only");
    assert.deepEqual(await kvGet(s.key), s.bytes, "the v1 value is still in KV, untouched");
  });

  test("a v1 session in postcard is read as v3, and the refresh write upgrades it in KV", async () => {
    const now = Date.now();
    const createdAt = now - 2 * DAY;
    const expiresAt = now + HOUR; // refresh due
    const s = await plant({ version: 1, codec: "postcard", createdAt, expiresAt, email: "v1.postcard@example.com" });
    assert.equal(JSON.parse(s.metadata).c, "postcard", "a postcard payload (sealed)");
    const before = await stats();
    const res = await http("/me", withSession(s.id));
    assert.equal(res.status, 200, res.text);
    const me = res.json();
    assert.equal(me.email, "v1.postcard@example.com");
    assert.equal(me.createdAt, createdAt);
    assert.equal(me.absoluteExpiresAt, createdAt + 30 * DAY);
    assert.deepEqual(me.roles, []);
    await until((x) => x.kv.KV.kv_writes > before.kv.KV.kv_writes, "the refresh write");
    const stored = await storedSession(s.key);
    assert.equal(stored.codec, "json", "rewritten in the store's codec");
    assert.equal(stored.type, "session");
    assert.equal(stored.v, 3, "rewritten at the current version");
    assert.equal(stored.data.email, "v1.postcard@example.com");
    assert.equal(stored.data.createdAt, createdAt, "creation time kept");
    assert.equal(stored.data.absoluteExpiresAt, createdAt + 30 * DAY);
    assert.ok(stored.data.expiresAt > expiresAt, "idle expiry extended");
    assert.equal((await http("/me", withSession(s.id))).status, 200);
  });

  test("a v2 session in postcard is read as v3", async () => {
    const now = Date.now();
    const s = await plant({ version: 2, codec: "postcard", createdAt: now - HOUR, expiresAt: now + 6 * DAY + 22 * HOUR });
    const res = await http("/me", withSession(s.id));
    assert.equal(res.status, 200, res.text);
    assert.equal(res.json().refreshedAt, now - HOUR);
  });
});

describe("unusable values: no 5xx, never overwritten", () => {
  const now = Date.now();
  const corrupt = async () => [
    ["binary garbage (not an envelope)", Buffer.from([0xff, 0xfe, 0x00, 0x13, 0x37, 0xc3, 0x28, 0x80])],
    ["JSON envelope cut short", Buffer.from(`{"kv":1,"type":"session","v":3,"exp":${now + DAY},"data":{"userId":"u`)],
    [
      "postcard frame cut short",
      (await kvSeed("session", {
        id: newSessionId(), version: "3", codec: "postcard", "user-id": "u1", email: "cut@example.com",
        "created-at": String(now), "expires-at": String(now + DAY),
      })).bytes.subarray(0, 30),
    ],
    [
      "v3 payload that fails its schema",
      (await kvSeed("envelope", {
        type: "session", version: "3", "expires-at": String(now + DAY),
        data: { userId: "", email: "not-an-email", createdAt: now, expiresAt: now + DAY, absoluteExpiresAt: now + DAY, refreshedAt: now, roles: [] },
      })).bytes,
    ],
    [
      "another type under a session key",
      (await kvSeed("envelope", { type: "popular", version: "1", "expires-at": String(now + DAY), data: { items: [] } })).bytes,
    ],
  ];

  async function probe(id, what) {
    const api = await http("/me", withSession(id, JSON_ACCEPT));
    assert.equal(api.status, 401, `${what}: GET /me (API) → ${api.status} ${api.text}`);
    const page = await http("/me", withSession(id));
    assert.equal(page.status, 302, `${what}: GET /me (page)`);
    const home = await http("/", withSession(id));
    assert.equal(home.status, 200, `${what}: GET /`);
    assert.match(home.text, /Not signed in/);
    const rotate = await http("/sessions/rotate", { method: "POST", ...withSession(id) });
    assert.equal(rotate.status, 401, `${what}: POST /sessions/rotate → ${rotate.status} ${rotate.text}`);
    return api;
  }

  test("corrupt session values are a miss, the cookie is cleared, the bytes stay", async () => {
    const before = await stats();
    const cases = await corrupt();
    for (const [what, bytes] of cases) {
      const id = newSessionId();
      await kvPut(sessionKey(id), bytes);
      const api = await probe(id, what);
      assert.ok(api.setCookies.some((c) => c.startsWith(`${COOKIE_NAME}=; Max-Age=0`)), `${what}: cookie cleared`);
      assert.deepEqual(await kvGet(sessionKey(id)), bytes, `${what}: bytes in KV unchanged`);
    }
    const after = await stats();
    const d = delta(before, after);
    assert.equal(d("kv.KV.kv_writes"), 0, "nothing written");
    assert.equal(d("kv.KV.kv_deletes"), 0, "nothing deleted");
    // A readable envelope in clear is refused before its payload is looked at (the demo's ring
    // refuses clear values: `not_sealed`); the rest do not decode at all (`unreadable`).
    const count = (s, code) => s.session_rejections[code] ?? 0;
    assert.equal(
      count(after, "unreadable") - count(before, "unreadable") + count(after, "not_sealed") - count(before, "not_sealed"),
      cases.length * 4,
      "every probe saw a session it cannot use",
    );
  });

  test("future-version session values are refused without clearing the cookie, bytes stay", async () => {
    const before = await stats();
    for (const codec of ["json", "postcard"]) {
      const s = await plant({ version: 4, codec, createdAt: now - HOUR, expiresAt: now + DAY, email: `v4.${codec}@example.com` });
      const api = await probe(s.id, `v4 ${codec}`);
      assert.equal(
        api.setCookies.length,
        0,
        `v4 ${codec}: cookie kept (newer code can still read it during a rolling deploy)`,
      );
      assert.deepEqual(await kvGet(s.key), s.bytes, `v4 ${codec}: bytes in KV unchanged`);
    }
    const after = await stats();
    assert.equal(delta(before, after)("kv.KV.kv_writes"), 0, "nothing written");
    assert.equal(
      (after.session_rejections.future_version ?? 0) - (before.session_rejections.future_version ?? 0),
      8,
      "4 probes x 2 codecs saw a future version",
    );
  });

  test("an expired session (KV still holding it) is refused", async () => {
    const t = Date.now();
    const s = await plant({ version: 3, codec: "json", createdAt: t - 8 * DAY, expiresAt: t - 1000 });
    const res = await http("/me", withSession(s.id, JSON_ACCEPT));
    assert.equal(res.status, 401);
  });

  test("POST /_conformance does not exist unless CONFORMANCE=on (only the Durable Object e2e run sets it)", async () => {
    const res = await http("/_conformance", { method: "POST" });
    assert.equal(res.status, 404, res.text);
  });
});
