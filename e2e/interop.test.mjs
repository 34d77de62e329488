// The Rust demo (examples/worker) and the TypeScript worker (examples/ts-worker) on ONE local KV:
// two `wrangler dev` processes with the same --persist-to. Each reads what the other wrote, each
// refuses the other's future-version values, and values written by either validate under the
// other's schemas (the Rust worker validates every read; the TS side checks Rust-written bytes with
// the Ajv validators generated from schemas/).
// Run as: scripts/with-worker.sh scripts/with-ts-worker.sh node --test e2e/interop.test.mjs
// (WORKER_URL, KV_SEED_BIN from scripts/e2e.sh; TS_WORKER_URL from scripts/with-ts-worker.sh).
// Sealed sessions: when the demo seals (its key ring from examples/worker/.dev.vars, SEAL_KEYS and
// SEAL_KEY_<id>), with-ts-worker.sh hands the TS worker the same file: each then opens what the
// other sealed (WebCrypto and RustCrypto, one AES-256-GCM frame) and KV holds no plaintext email.
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { describe, test } from "node:test";

import { encodeEnvelope } from "@kv-envelope/ts";
import { registry } from "@kv-envelope/ts/generated";

import { http, kvGet, kvPut, kvSeed, login, newSessionId, scratchFile, sessionKey, withSession } from "./lib/worker.mjs";
import { session, ts, tsPut } from "./ts/lib.mjs";

const DAY = 86_400_000;
const HOUR = 3_600_000;
const API = { accept: "application/json" };

/** A v3 session far enough from its idle expiry that the Rust worker does not refresh (rewrite) it. */
function quietSession(email) {
  const now = Date.now();
  return { ...session(now, email), expiresAt: now + 6 * DAY + 23 * HOUR };
}

describe("Rust writes, TypeScript reads", () => {
  test("the TS worker reads a session the Rust worker created at login", async () => {
    const id = await login("rust-made@example.com");
    const key = sessionKey(id);
    const res = await ts(`/kv/${key}`);
    assert.equal(res.status, 200, res.text);
    assert.equal(res.json.type, "session");
    assert.equal(res.json.version, 3);
    assert.equal(res.json.data.email, "rust-made@example.com");
    const bytes = await kvGet(key);
    if (bytes[0] === 0xc6) {
      // Sealed by the demo: the TS worker opened it with the same ring, and KV has no plaintext.
      assert.ok(res.json.keyId, "opened with a key id");
      assert.ok(!bytes.includes("rust-made@example.com"), "the email is in clear in KV");
      assert.ok(registry.types.session.versions[3](res.json.data), "Rust's sealed payload fails schemas/ under Ajv");
    } else {
      assert.ok(registry.wholeValue.session(JSON.parse(bytes.toString("utf8"))), "Rust's value fails schemas/ under Ajv");
    }
    const h = await ts(`/header/KV/${key}`);
    assert.deepEqual(h.json.metadata, h.json.header, "the metadata copy agrees with the envelope header (k too)");
    assert.ok(registry.metadata(h.json.rawMetadata), "Rust's metadata fails metadata.schema.json under Ajv");
  });

  test("both workers have the same key ring, or neither has one", async () => {
    const ring = await ts("/keyring");
    const id = await login("ring-check@example.com");
    const bytes = await kvGet(sessionKey(id));
    if (ring.status === 404) {
      assert.notEqual(bytes[0], 0xc6, "the demo seals its sessions but the TS worker has no key ring (examples/worker/.dev.vars?)");
    } else {
      assert.equal(ring.status, 200, ring.text);
      if (bytes[0] === 0xc6) {
        const keyId = (await ts(`/header/KV/${sessionKey(id)}`)).json.header.keyId;
        assert.ok(ring.json.keyIds.includes(keyId), `the demo sealed with ${keyId}, the TS ring holds ${ring.json.keyIds}`);
      }
    }
  });

  test("the TS worker reports the cached /popular value the Rust worker wrote (header and cache metadata)", async () => {
    assert.equal((await http("/popular")).status, 200);
    // The generation record is read from KV directly: the Rust cache writes it in clear (it holds
    // no data), and the TS worker's ring refuses clear values by default (`not_sealed`).
    const genBytes = await kvGet("cache:popular:generation", { binding: "CACHE" });
    const generation = genBytes === null ? 0 : JSON.parse(genBytes.toString("utf8")).data.generation;
    const key = `cache:popular:g${generation}:top`;
    // The entry is written in ctx.waitUntil after the response: poll briefly.
    let h;
    for (let i = 0; i < 50; i++) {
      h = await ts(`/header/CACHE/${key}`);
      if (h.status === 200) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal(h.status, 200, h.text);
    assert.equal(h.json.header.type, "popular");
    assert.equal(h.json.header.version, 1);
    assert.equal(h.json.header.codec, "json");
    assert.ok(h.json.header.expiresAt > Date.now());
    assert.equal(h.json.metadata.type, "popular");
    assert.ok(h.json.rawMetadata.cf > 0 && h.json.rawMetadata.ca > 0, "the cache's own metadata fields");
    assert.ok(registry.envelope(JSON.parse((await kvGet(key, { binding: "CACHE" })).toString("utf8"))));
  });
});

describe("TypeScript writes, Rust reads", () => {
  test("the Rust worker serves a session the TS worker wrote", async () => {
    const id = newSessionId();
    const data = quietSession("ts-made@example.com");
    const res = await tsPut(`/kv/${sessionKey(id)}`, { data, expiresAt: data.expiresAt });
    assert.equal(res.status, 201, res.text);
    if ((await ts("/keyring")).status === 200) {
      // Sealed with WebCrypto under the shared ring: the Rust worker opens it.
      assert.equal(res.json.sealed?.keyId !== undefined, true, res.text);
      assert.equal((await kvGet(sessionKey(id)))[0], 0xc6);
    }
    const me = await http("/me", withSession(id, API));
    assert.equal(me.status, 200, me.text);
    assert.deepEqual(me.json(), data, "validated by the Rust reader against its schemas, served as written");
  });

  test("an old-version value from the TS package is migrated by the Rust worker and read as stored by TS", async () => {
    // What a TS deployment generated from v1 schemas writes: the package's envelope, checked with
    // the v1 validator of schemas/.
    const now = Date.now();
    const v1 = { userId: "u-ts-v1", email: "ts-v1@example.com", createdAt: now - HOUR, expiresAt: now + 6 * DAY + 23 * HOUR };
    assert.ok(registry.types.session.versions[1](v1));
    const id = newSessionId();
    const clear = Buffer.from(encodeEnvelope("session", 1, v1.expiresAt, v1));
    // Sealed for its key with the demo's ring (which refuses sessions stored in clear): the TS
    // package seals only the current version, so the seed tool seals these bytes as they are.
    const input = scratchFile();
    writeFileSync(input, clear);
    const { bytes, metadata } = await kvSeed("file", { key: sessionKey(id), in: input, seal: true });
    assert.equal(JSON.parse(metadata).v, 1);
    await kvPut(sessionKey(id), bytes, { metadata });
    const me = await http("/me", withSession(id, API));
    assert.equal(me.status, 200, me.text);
    assert.deepEqual(me.json(), { ...v1, absoluteExpiresAt: v1.createdAt + 30 * DAY, refreshedAt: v1.createdAt, roles: [] });
    const read = await ts(`/kv/${sessionKey(id)}`);
    assert.equal(read.json.version, 1, "the TS reader gets the stored version and branches on it");
    assert.deepEqual(await kvGet(sessionKey(id)), bytes, "a read migrates in memory only");
  });
});

describe("future versions are never overwritten, either way", () => {
  for (const codec of ["json", "postcard"]) {
    test(`the TS worker refuses to overwrite a v4 session the Rust side planted (${codec})`, async () => {
      const now = Date.now();
      const id = newSessionId();
      const seeded = await kvSeed("session", {
        id,
        version: "4",
        codec,
        "user-id": "u-future",
        email: "future@example.com",
        "created-at": String(now - HOUR),
        "expires-at": String(now + DAY),
      });
      assert.equal(seeded.key, sessionKey(id));
      await kvPut(seeded.key, seeded.bytes, { metadata: seeded.metadata });
      const res = await tsPut(`/kv/${seeded.key}`, { data: quietSession("overwrite@example.com") });
      assert.equal(res.status, 409, res.text);
      assert.equal(res.json.error, "future_version");
      assert.deepEqual(await kvGet(seeded.key), seeded.bytes, "bytes unchanged");
    });
  }

  test("the Rust worker refuses the TS side's future-version value and keeps it", async () => {
    const id = newSessionId();
    const data = { ...quietSession("ts-v4@example.com"), newField: 1 };
    const bytes = Buffer.from(encodeEnvelope("session", 4, data.expiresAt, data));
    await kvPut(sessionKey(id), bytes, { metadata: JSON.stringify({ t: "session", v: 4, c: "json", e: data.expiresAt }) });
    const me = await http("/me", withSession(id, API));
    assert.equal(me.status, 401, me.text);
    assert.equal(me.setCookies.length, 0, "cookie kept: newer code can still read it during a rolling deploy");
    const rotate = await http("/sessions/rotate", { method: "POST", ...withSession(id) });
    assert.equal(rotate.status, 401, rotate.text);
    assert.deepEqual(await kvGet(sessionKey(id)), bytes, "bytes unchanged");
  });
});
