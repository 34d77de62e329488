// Sealed sessions at rest (issue 15): the demo seals every session and its per-user index entry
// with the key ring of its secrets (examples/worker/.dev.vars: SEAL_KEYS, SEAL_KEY_<id>). What a
// `wrangler kv key get --local` of the namespace shows (scripts/worker-kv.sh) holds no email and
// no user id; the header stays readable (KV metadata names the key id); the key ring of the same
// file opens it (kv-seed open) to the session /me serves. Sessions planted in clear (what the
// demo wrote before sealing) are still served, and sealed by their next write.
// Key rotation end to end (wrangler dev restarted with other rings) is scripts/e2e-rotation.sh.

import assert from "node:assert/strict";
import { describe, test } from "node:test";

import {
  assertSealed,
  delta,
  http,
  indexKeysOf,
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
const API = { accept: "application/json" };

async function ring() {
  const s = (await stats()).sealing;
  assert.equal(s.error, undefined, `the worker's key ring: ${s.error}`);
  assert.equal(s.sessions, true, "the demo seals its sessions (SEAL=off in .dev.vars or WORKER_VARS?)");
  assert.ok(s.key_ids.length >= 1, "at least one key");
  return s;
}

describe("sessions are sealed at rest", () => {
  test("a login stores a sealed session and index entry: no email, no user id in KV", async () => {
    const { key_ids: [primary] } = await ring();
    const email = "Sealed.Person@example.com";
    const id = await login(email);
    const me = await http("/me", withSession(id, API));
    assert.equal(me.status, 200, me.text);
    const { userId } = me.json();
    assert.match(userId, /^u_[0-9a-f]{16}$/);
    const secrets = [email, email.toLowerCase(), userId, "Sealed.Person", "sealed.person"];

    const key = sessionKey(id);
    const stored = await kvGet(key);
    assertSealed(stored, await kvMeta(key), primary, secrets, "session");
    const opened = await kvOpen(key, stored);
    assert.equal(opened.type, "session");
    assert.equal(opened.key_id, primary);
    assert.deepEqual(opened.data, me.json(), "the sealed payload is the session /me serves");

    const index = await indexKeysOf(id);
    assert.equal(index.length, 1, "one index entry for the session");
    assert.ok(!index[0].name.includes(userId), "the index key hashes the user id");
    const entry = await kvGet(index[0].name);
    assertSealed(entry, index[0].metadata, primary, secrets, "index entry");
    assert.equal((await kvOpen(index[0].name, entry)).type, "session-index");
  });

  test("a sealed value moved to another session's key does not open there", async () => {
    const a = await login("moved.a@example.com");
    const b = await login("moved.b@example.com");
    const bytes = await kvGet(sessionKey(a));
    await kvPut(sessionKey(b), bytes, { metadata: JSON.stringify(await kvMeta(sessionKey(a))) });
    const before = await stats();
    const res = await http("/me", withSession(b, API));
    assert.equal(res.status, 401, `a copied sealed value is refused: ${res.text}`);
    const after = await stats();
    assert.equal(
      (after.session_rejections.sealed_unopenable ?? 0) - (before.session_rejections.sealed_unopenable ?? 0),
      1,
      `reason sealed_unopenable: ${JSON.stringify(after.session_rejections)}`,
    );
    assert.deepEqual(await kvGet(sessionKey(b)), bytes, "left in KV as it was");
    assert.equal((await http("/me", withSession(a, API))).status, 200, "the original still opens");
  });

  // Review 2 (issue 26, item 8): the demo never wrote a clear value, yet served one planted under
  // a session key, so anyone who could write to KV without the key could forge a session with
  // any roles. Its ring refuses clear values (the library's default); the migration path for
  // apps that did write them is `requiring_sealed(false)` (tests/sealed.rs).
  test("a session planted in clear (roles: admin) is refused and left as it is", async () => {
    const now = Date.now();
    const id = newSessionId();
    const seeded = await kvSeed("envelope", {
      key: sessionKey(id),
      type: "session",
      version: "3",
      "expires-at": String(now + HOUR),
      data: {
        userId: "u-forged", email: "forged@example.com", createdAt: now - HOUR, expiresAt: now + HOUR,
        absoluteExpiresAt: now + DAY, refreshedAt: now - HOUR, roles: ["admin"],
      },
    });
    assert.equal(seeded.bytes[0], 0x7b, "planted in clear");
    await kvPut(sessionKey(id), seeded.bytes, { metadata: seeded.metadata });
    const before = await stats();
    const res = await http("/me", withSession(id, API));
    assert.equal(res.status, 401, `a forged clear session is no session: ${res.status} ${res.text}`);
    assert.doesNotMatch(res.text, /admin|forged/);
    const page = await http("/", withSession(id));
    assert.match(page.text, /Not signed in/);
    const after = await stats();
    assert.equal(
      (after.session_rejections.not_sealed ?? 0) - (before.session_rejections.not_sealed ?? 0),
      2,
      `reason not_sealed: ${JSON.stringify(after.session_rejections)}`,
    );
    assert.equal(delta(before, after)("kv.KV.kv_writes"), 0, "nothing written");
    assert.deepEqual(await kvGet(sessionKey(id)), seeded.bytes, "left in KV as it was");
  });
});
