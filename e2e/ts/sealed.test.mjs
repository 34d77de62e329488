// Sealed values (0xC6) through the TypeScript worker on workerd, with WebCrypto on both ends:
// frames the Rust side sealed (interop/sealed.json, its public TEST ring, which scripts/e2e-ts.sh
// hands this worker as its SEAL_KEYS / SEAL_KEY_<id>), planted at their KV keys by wrangler's CLI,
// open here; what the worker seals holds no plaintext, carries `k` in its metadata and opens in
// Node; a value moved, edited or sealed with a key the ring lacks is a typed error and is never
// overwritten. A value in clear is refused (`not_sealed`) and never overwritten by the worker with
// the library's default ring; the second worker (same ring, SEAL_REQUIRE_SEALED=off: the
// migration path) reads it and seals it at its next write.
import assert from "node:assert/strict";
import { before, describe, test } from "node:test";

import { encodeEnvelope, keyRingFromEnv, openEnvelope, peekHeader, sealEnvelope, toMetadata } from "@kv-envelope/ts";
import { registry } from "@kv-envelope/ts/generated";

import {
  assertError,
  assertRings,
  call,
  fresh,
  kvGet,
  kvList,
  kvPut,
  migratingBase,
  repoFile,
  session,
  ts,
  TS_BASE,
  tsPut,
} from "./lib.mjs";

const golden = JSON.parse(repoFile("interop/sealed.json").toString("utf8"));
const ring = await keyRingFromEnv(golden.env, golden.prefix);
const unhex = (h) => Buffer.from(h, "hex");
const SECRETS = Object.entries(golden.env)
  .filter(([k]) => k.includes("_KEY_"))
  .map(([, v]) => v);

const MIGRATING = migratingBase();

before(async () => {
  await assertRings(ring.keyIds);
  const res = await ts("/keyring");
  for (const s of SECRETS) assert.ok(!res.text.includes(s), "no key material in /keyring");
});

describe("frames the Rust side sealed", () => {
  for (const c of golden.cases) {
    test(`${c.name}, planted by wrangler's CLI at its KV key, ${c.codec === "json" ? "opens" : "opens and is refused as postcard"}`, async () => {
      await kvPut(c.kvKey, unhex(c.sealed), { metadata: c.metadata });
      const res = await ts(`/kv/${encodeURIComponent(c.kvKey)}?type=${c.type}`);
      if (c.codec === "json") {
        assert.equal(res.status, 200, res.text);
        assert.deepEqual(res.json.data, c.data);
        assert.equal(res.json.version, c.version);
        assert.equal(res.json.keyId, c.keyId);
        assert.equal(res.json.seal, c.keyId === ring.primaryId ? "primary" : "older_key");
      } else {
        assertError(res, 422, "binary_codec", c.name);
      }
      const h = await ts(`/header/KV/${encodeURIComponent(c.kvKey)}`);
      assert.equal(h.status, 200, h.text);
      assert.equal(h.json.header.keyId, c.keyId, "the header reads without a key");
      assert.deepEqual(h.json.metadata, h.json.header, "metadata k agrees with the frame's key id");
    });
  }

  for (const n of golden.negative.filter((n) => n.ring && n.read !== "miss")) {
    test(`negative ${n.name}: ${n.read} on workerd too, and the value is never overwritten`, async () => {
      const key = n.kvKey;
      const bytes = unhex(n.sealed);
      await kvPut(key, bytes);
      const expected = { type_mismatch: "wrong_type" }[n.read] ?? n.read;
      const status = expected === "future_version" ? 409 : 422;
      const read = await ts(`/kv/${encodeURIComponent(key)}?type=${n.type}`);
      assertError(read, status, expected, n.name);
      for (const s of SECRETS) assert.ok(!read.text.includes(s));
      assert.ok(!read.text.includes("ada@example.com"), "no payload in the error");
      const put = await tsPut(`/kv/${encodeURIComponent(key)}?type=${n.type}`, { data: session() });
      assert.ok(put.status === 409 || put.status === 422, put.text);
      assert.deepEqual(await kvGet(key), bytes, "bytes unchanged");
    });
  }
});

describe("what the TS worker seals", () => {
  test("PUT seals with the primary key: no plaintext in KV, metadata k, opens in Node and reads back", async () => {
    const now = Date.now();
    const key = `session:sealed-${fresh()}`;
    const data = session(now, "sealed-ts@example.com");
    const res = await tsPut(`/kv/${key}`, { data, expiresAt: data.expiresAt });
    assert.equal(res.status, 201, res.text);
    assert.equal(res.json.sealed.keyId, "k2");
    const stored = await kvGet(key);
    assert.equal(stored[0], 0xc6);
    for (const secret of [data.email, data.userId, "reader"]) assert.ok(!stored.includes(secret), `${secret} in clear in KV`);
    const [listed] = await kvList(key);
    assert.deepEqual(listed.metadata, { t: "session", v: 3, c: "json", e: data.expiresAt, k: "k2" });
    // workerd's WebCrypto sealed it; Node's opens it, bound to its KV key.
    const opened = await openEnvelope(registry, ring, stored, "session", key);
    assert.deepEqual(opened.data, data);
    const back = await ts(`/kv/${key}`);
    assert.equal(back.status, 200, back.text);
    assert.deepEqual(back.json.data, data);
    assert.equal(back.json.seal, "primary");
  });

  test("a value sealed in Node opens in the worker; moved to another key it does not", async () => {
    const key = `session:node-${fresh()}`;
    const data = session(Date.now(), "node-sealed@example.com");
    const bytes = await sealEnvelope(registry, ring, key, "session", data, { expiresAt: data.expiresAt });
    await kvPut(key, bytes);
    assert.deepEqual((await ts(`/kv/${key}`)).json.data, data);
    const moved = `session:moved-${fresh()}`;
    await kvPut(moved, bytes);
    assertError(await ts(`/kv/${moved}`), 422, "sealed_unopenable", "moved");
  });

  test("a clear value planted in KV is refused (not_sealed) on read and on write, and left as it is", async () => {
    // What someone who can write to KV but has no key could plant: a valid session granting admin.
    const key = `session:clear-${fresh()}`;
    const data = { ...session(Date.now(), "planted@example.com"), roles: ["admin"] };
    const planted = Buffer.from(encodeEnvelope("session", 3, data.expiresAt, data));
    const header = { codec: "json", type: "session", version: 3, expiresAt: data.expiresAt };
    await kvPut(key, planted, { metadata: JSON.stringify(toMetadata(header)) });
    const read = await ts(`/kv/${key}`);
    assertError(read, 422, "not_sealed", "a clear session under the default ring");
    assert.doesNotMatch(read.text, /planted@|admin/, "nothing of the value in the error");
    assert.equal(read.json.data, undefined);
    const put = await tsPut(`/kv/${key}`, { data: session(Date.now(), "new@example.com") });
    assertError(put, 422, "not_sealed", "a sealed PUT over a clear session");
    assert.deepEqual(await kvGet(key), planted, "bytes unchanged: neither the read nor the write replaced them");
    // The header reads without a key (it is the clear envelope's): the value is reported, not served.
    const h = await ts(`/header/KV/${key}`);
    assert.equal(h.status, 200, h.text);
    assert.deepEqual(h.json.header, header);
  });

  test("with SEAL_REQUIRE_SEALED=off (the migration path) a clear value reads, and is re-sealed when the worker writes it", async () => {
    const key = `session:migrate-${fresh()}`;
    const data = session(Date.now(), "was-clear@example.com");
    assert.equal((await tsPut(`/kv/${key}?seal=0`, { data }, MIGRATING)).status, 201);
    const h = await ts(`/header/KV/${key}`);
    assert.equal(h.status, 200, h.text);
    assert.equal(h.json.header.keyId, undefined, "written in clear");
    const read = await call(MIGRATING, `/kv/${key}`);
    assert.equal(read.status, 200, read.text);
    assert.deepEqual(read.json.data, data);
    assert.equal(read.json.seal, "clear");
    assert.equal(read.json.keyId, null);
    assertError(await ts(`/kv/${key}`), 422, "not_sealed", "the same clear value, the default ring");
    const updated = { ...data, refreshedAt: data.refreshedAt + 1 };
    assert.equal((await tsPut(`/kv/${key}`, { data: updated }, MIGRATING)).status, 201);
    const stored = await kvGet(key);
    assert.equal(peekHeader(stored).keyId, "k2", "sealed with the primary");
    assert.ok(!stored.includes(data.email), "no plaintext left in KV");
    // Sealed now: both workers read it, the default one included.
    for (const base of [MIGRATING, TS_BASE]) {
      const back = await call(base, `/kv/${key}`);
      assert.equal(back.status, 200, back.text);
      assert.deepEqual(back.json.data, updated);
      assert.equal(back.json.seal, "primary");
    }
  });

  test("a value of an older key of the ring reads, and re-seals with the primary on write", async () => {
    const key = `session:older-${fresh()}`;
    const data = session(Date.now(), "older@example.com");
    const older = await keyRingFromEnv({ ...golden.env, [`${golden.prefix}_KEYS`]: "k1" }, golden.prefix);
    await kvPut(key, await sealEnvelope(registry, older, key, "session", data));
    assert.equal((await ts(`/kv/${key}`)).json.seal, "older_key");
    assert.equal((await tsPut(`/kv/${key}`, { data })).status, 201);
    assert.equal(peekHeader(await kvGet(key)).keyId, "k2");
  });
});
