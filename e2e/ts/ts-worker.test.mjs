// The TypeScript worker (examples/ts-worker) on real workerd, against values another process put
// in the same local KV with `wrangler kv key put --local` (the Rust demo's wrangler.toml): values
// the Rust writer produced (tests/golden, tests/corpus) are read with the Rust reader's verdicts,
// and what the TS worker writes is the canonical envelope, with metadata and KV expiration.
// Those values are in clear: the worker with the library's default ring (TS_WORKER_URL) refuses
// them (`not_sealed`) once their header has been checked (type, version, expiry), and the second
// worker (same ring, SEAL_REQUIRE_SEALED=off: the migration path) reads them.
import assert from "node:assert/strict";
import { before, describe, test } from "node:test";

import { encodeEnvelope, keyRingFromEnv, peekHeader, sealEnvelope } from "@kv-envelope/ts";
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

const MIGRATING = migratingBase();
const golden = JSON.parse(repoFile("interop/sealed.json").toString("utf8"));
const ring = await keyRingFromEnv(golden.env, golden.prefix);
/** Both workers: the default ring, and the migration path. */
const BOTH = [
  ["default ring", TS_BASE],
  ["SEAL_REQUIRE_SEALED=off", MIGRATING],
];

before(() => assertRings(ring.keyIds));

describe("reading what the Rust writer wrote", () => {
  for (const v of [1, 2, 3]) {
    test(`golden session v${v}.json, planted in clear by wrangler's CLI: not_sealed by default, reads at v${v} while migrating`, async () => {
      const bytes = repoFile(`tests/golden/session/v${v}.json`);
      const key = `session:golden-${v}-${fresh()}`;
      await kvPut(key, bytes);
      assertError(await ts(`/kv/${key}`), 422, "not_sealed", `golden v${v}, default ring`);
      const res = await call(MIGRATING, `/kv/${key}`);
      assert.equal(res.status, 200, res.text);
      assert.equal(res.json.version, v);
      assert.equal(res.json.seal, "clear");
      assert.deepEqual(res.json.data, JSON.parse(bytes.toString("utf8")).data);
    });
  }

  test("a postcard frame is recognised and refused (binary_codec while migrating, not_sealed by default), not misread", async () => {
    const key = `session:bin-${fresh()}`;
    await kvPut(key, repoFile("tests/golden/session/v3.bin"));
    assertError(await ts(`/kv/${key}`), 422, "not_sealed", "postcard v3, default ring");
    assertError(await call(MIGRATING, `/kv/${key}`), 422, "binary_codec", "postcard v3, migrating");
  });

  test("an envelope past its exact expiry is a miss while KV still holds it (decided before sealing is)", async () => {
    const key = `session:expired-${fresh()}`;
    await kvPut(key, repoFile("tests/corpus/envelope/expired.json"));
    for (const [what, base] of BOTH) assertError(await call(base, `/kv/${key}`), 404, "miss", `expired, ${what}`);
    assert.ok(await kvGet(key), "KV still has the bytes");
  });

  test("another type's value reads as wrong_type on both workers; its header is still reported", async () => {
    const key = `session:cart-${fresh()}`;
    await kvPut(key, repoFile("tests/corpus/envelope/wrong-type.json"));
    for (const [what, base] of BOTH) assertError(await call(base, `/kv/${key}`), 422, "wrong_type", `cart under a session key, ${what}`);
    const h = await ts(`/header/KV/${key}`);
    assert.equal(h.status, 200, h.text);
    assert.deepEqual(h.json.header, { codec: "json", type: "cart", version: 3, expiresAt: 4_000_000_000_000 });
  });
});

describe("writing", () => {
  test("PUT writes the canonical envelope, the metadata copy and a clamped KV expiration", async () => {
    const now = Date.now();
    const key = `session:w-${fresh()}`;
    const data = session(now);
    const expiresAt = now + 10_000; // below KV's 60 s floor: the envelope keeps it, KV gets the floor
    // In clear (`seal=0`): this worker has a key ring and seals by default (e2e/ts/sealed.test.mjs).
    const res = await tsPut(`/kv/${key}?seal=0`, { data, expiresAt });
    assert.equal(res.status, 201, res.text);
    const stored = await kvGet(key);
    assert.equal(stored.toString("utf8"), encodeEnvelope("session", 3, expiresAt, data));
    const [listed] = await kvList(key);
    assert.equal(listed.name, key);
    assert.deepEqual(listed.metadata, { t: "session", v: 3, c: "json", e: expiresAt });
    const floor = Math.ceil(now / 1000) + 65;
    assert.ok(listed.expiration >= floor && listed.expiration <= floor + 5, `expiration ${listed.expiration}, floor ${floor}`);
    // What the TS worker wrote validates under the whole-value schema of schemas/ (Ajv).
    assert.ok(registry.wholeValue.session(JSON.parse(stored.toString("utf8"))));
    // In clear, it is read back on the migration path only.
    const back = await call(MIGRATING, `/kv/${key}`);
    assert.equal(back.status, 200, back.text);
    assert.deepEqual(back.json.data, data);
    assertError(await ts(`/kv/${key}`), 422, "not_sealed", "written in clear, read with the default ring");
  });

  test("seal=0 writes in clear, guarded as by a worker without a ring: over a clear value, never over a sealed one", async () => {
    const key = `session:seal0-${fresh()}`;
    const first = session(Date.now(), "first@example.com");
    const second = session(Date.now(), "second@example.com");
    assert.equal((await tsPut(`/kv/${key}?seal=0`, { data: first })).status, 201);
    const res = await tsPut(`/kv/${key}?seal=0`, { data: second });
    assert.equal(res.status, 201, res.text);
    assert.deepEqual(JSON.parse((await kvGet(key)).toString("utf8")).data, second, "the clear value replaced, in clear");
    const sealedKey = `session:seal0-sealed-${fresh()}`;
    assert.equal((await tsPut(`/kv/${sealedKey}`, { data: first })).status, 201);
    const sealed = await kvGet(sealedKey);
    assert.equal(sealed[0], 0xc6);
    assertError(await tsPut(`/kv/${sealedKey}?seal=0`, { data: second }), 422, "sealed_no_key_ring", "a clear PUT over a sealed value");
    assert.deepEqual(await kvGet(sealedKey), sealed, "the sealed value left as it is");
  });

  test("invalid data is refused with JSON-pointer issues and nothing is written", async () => {
    const key = `session:bad-${fresh()}`;
    const res = await tsPut(`/kv/${key}`, { data: { ...session(), email: "SECRET-not-an-email" } });
    assertError(res, 422, "invalid", "bad email");
    assert.deepEqual(res.json.issues.map((i) => i.instancePath), ["/email"]);
    assert.ok(!res.text.includes("SECRET"), "the value is not echoed");
    assert.equal(await kvGet(key), null);
  });

  for (const [what, file] of [
    ["JSON", "tests/corpus/envelope/future-version.json"],
    ["postcard", "tests/corpus/envelope/future-version.bin"],
  ]) {
    test(`a future-version value (${what}) is never overwritten`, async () => {
      const key = `session:future-${fresh()}`;
      const planted = repoFile(file);
      await kvPut(key, planted);
      assertError(await tsPut(`/kv/${key}`, { data: session() }), 409, "future_version", what);
      assert.deepEqual(await kvGet(key), planted, "bytes unchanged");
    });
  }

  test("an unreadable session is not overwritten; an unreadable cache entry is, sealed", async () => {
    const planted = repoFile("tests/corpus/envelope/unterminated.json");
    const key = `session:corrupt-${fresh()}`;
    await kvPut(key, planted);
    assertError(await tsPut(`/kv/${key}`, { data: session() }), 422, "malformed", "corrupt session");
    assert.deepEqual(await kvGet(key), planted);

    // A cache namespace of session-index entries, generation 5 (the Rust cache's key layout). The
    // generation record is in clear, as the Rust cache writes it even when it seals its entries
    // (it holds no data): the worker with the default ring reads it without the ring.
    const ns = "session-index";
    await kvPut(`cache:${ns}:generation`, Buffer.from(encodeEnvelope("kv-envelope.cache-generation", 1, null, { generation: 5 })), {
      binding: "CACHE",
    });
    const id = fresh();
    const full = `cache:${ns}:g5:${id}`;
    await kvPut(full, planted, { binding: "CACHE" });
    assertError(await ts(`/cache/${ns}/${id}`), 422, "malformed", "corrupt cache entry");
    const entry = { createdAt: 1, absoluteExpiresAt: 2 };
    const res = await tsPut(`/cache/${ns}/${id}`, { data: entry, expiresAt: Date.now() + 3_600_000 });
    assert.equal(res.status, 201, res.text);
    assert.equal(res.json.key, full);
    assert.equal(peekHeader(await kvGet(full, { binding: "CACHE" })).keyId, "k2", "replaced sealed");
    assert.deepEqual((await ts(`/cache/${ns}/${id}`)).json.data, entry);
  });

  test("a clear cache entry is not_sealed by default and replaced, sealed, by the next cache PUT (caches recompute)", async () => {
    const ns = "session-index";
    const id = `clear-${fresh()}`;
    const entry = { createdAt: 3, absoluteExpiresAt: 4 };
    const expiresAt = Date.now() + 3_600_000;
    const put = await tsPut(`/cache/${ns}/${id}?seal=0`, { data: entry, expiresAt });
    assert.equal(put.status, 201, put.text);
    const full = put.json.key;
    // The header route reads the stored bytes without a key: keyId only in a sealed frame's header.
    const header = async () => (await ts(`/header/CACHE/${encodeURIComponent(full)}`)).json?.header;
    assert.deepEqual(await header(), { codec: "json", type: ns, version: registry.types[ns].current, expiresAt }, "in clear");
    assertError(await ts(`/cache/${ns}/${id}`), 422, "not_sealed", "clear cache entry, default ring");
    assert.deepEqual((await call(MIGRATING, `/cache/${ns}/${id}`)).json?.data, entry, "read while migrating");
    const next = { createdAt: 5, absoluteExpiresAt: 6 };
    const res = await tsPut(`/cache/${ns}/${id}`, { data: next, expiresAt });
    assert.equal(res.status, 201, res.text);
    assert.equal((await header()).keyId, "k2", "replaced sealed");
    assert.deepEqual((await ts(`/cache/${ns}/${id}`)).json?.data, next);
  });

  test("a cache generation record the worker cannot read (sealed) is refused on every cache route and left as it is", async () => {
    // Rust's cache reads generation records without a ring and bypasses one it cannot read; the
    // TS worker answers it with the reader's error (never a 5xx) and never overwrites it. Its own
    // namespace ("session": a type of the registry), so no other test sees this record.
    const ns = "session";
    const key = `cache:${ns}:generation`;
    const sealed = Buffer.from(await sealEnvelope(registry, ring, key, "kv-envelope.cache-generation", { generation: 7 }));
    await kvPut(key, sealed, { binding: "CACHE" });
    const id = fresh();
    assertError(await ts(`/cache/${ns}/${id}`), 422, "sealed_no_key_ring", "sealed generation record, GET");
    const put = await tsPut(`/cache/${ns}/${id}`, { data: session(), expiresAt: Date.now() + 3_600_000 });
    assertError(put, 422, "sealed_no_key_ring", "sealed generation record, PUT");
    assert.deepEqual(await kvGet(key, { binding: "CACHE" }), sealed, "the record is left as it is");
    for (const g of [0, 7]) {
      assertError(await ts(`/header/CACHE/cache:${ns}:g${g}:${id}`), 404, "miss", `no entry written at generation ${g}`);
    }
  });

  test("limits are refused before KV: an over-long key is a 400", async () => {
    assertError(await ts(`/kv/session:${"x".repeat(600)}`), 400, "limit", "long key");
  });
});
