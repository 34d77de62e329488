// The TypeScript worker (examples/ts-worker) on real workerd, against values another process put
// in the same local KV with `wrangler kv key put --local` (the Rust demo's wrangler.toml): values
// the Rust writer produced (tests/golden, tests/corpus) are read with the Rust reader's verdicts,
// and what the TS worker writes is the canonical envelope, with metadata and KV expiration.
import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { encodeEnvelope } from "@kv-envelope/ts";
import { registry } from "@kv-envelope/ts/generated";

import { assertError, fresh, kvGet, kvList, kvPut, repoFile, session, ts, tsPut } from "./lib.mjs";

describe("reading what the Rust writer wrote", () => {
  for (const v of [1, 2, 3]) {
    test(`golden session v${v}.json, planted by wrangler's CLI, reads at v${v}`, async () => {
      const bytes = repoFile(`tests/golden/session/v${v}.json`);
      const key = `session:golden-${v}-${fresh()}`;
      await kvPut(key, bytes);
      const res = await ts(`/kv/${key}`);
      assert.equal(res.status, 200, res.text);
      assert.equal(res.json.version, v);
      assert.deepEqual(res.json.data, JSON.parse(bytes.toString("utf8")).data);
    });
  }

  test("a postcard frame is recognised and refused (binary_codec), not misread", async () => {
    const key = `session:bin-${fresh()}`;
    await kvPut(key, repoFile("tests/golden/session/v3.bin"));
    assertError(await ts(`/kv/${key}`), 422, "binary_codec", "postcard v3");
  });

  test("an envelope past its exact expiry is a miss while KV still holds it", async () => {
    const key = `session:expired-${fresh()}`;
    await kvPut(key, repoFile("tests/corpus/envelope/expired.json"));
    assertError(await ts(`/kv/${key}`), 404, "miss", "expired");
    assert.ok(await kvGet(key), "KV still has the bytes");
  });

  test("another type's value reads as wrong_type; its header is still reported", async () => {
    const key = `session:cart-${fresh()}`;
    await kvPut(key, repoFile("tests/corpus/envelope/wrong-type.json"));
    assertError(await ts(`/kv/${key}`), 422, "wrong_type", "cart under a session key");
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
    assert.equal((await ts(`/kv/${key}`)).json.data.email, data.email);
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

  test("an unreadable session is not overwritten; an unreadable cache entry is", async () => {
    const planted = repoFile("tests/corpus/envelope/unterminated.json");
    const key = `session:corrupt-${fresh()}`;
    await kvPut(key, planted);
    assertError(await tsPut(`/kv/${key}`, { data: session() }), 422, "malformed", "corrupt session");
    assert.deepEqual(await kvGet(key), planted);

    // A cache namespace of session-index entries, generation 5 (the Rust cache's key layout).
    const ns = "session-index";
    await kvPut(`cache:${ns}:generation`, Buffer.from(encodeEnvelope("kv-envelope.cache-generation", 1, null, { generation: 5 })), {
      binding: "CACHE",
    });
    const id = fresh();
    await kvPut(`cache:${ns}:g5:${id}`, planted, { binding: "CACHE" });
    const entry = { createdAt: 1, absoluteExpiresAt: 2 };
    const res = await tsPut(`/cache/${ns}/${id}?seal=0`, { data: entry, expiresAt: Date.now() + 3_600_000 });
    assert.equal(res.status, 201, res.text);
    assert.equal(res.json.key, `cache:${ns}:g5:${id}`);
    assert.deepEqual(JSON.parse((await kvGet(`cache:${ns}:g5:${id}`, { binding: "CACHE" })).toString()).data, entry);
    assert.deepEqual((await ts(`/cache/${ns}/${id}`)).json.data, entry);
  });

  test("limits are refused before KV: an over-long key is a 400", async () => {
    assertError(await ts(`/kv/session:${"x".repeat(600)}`), 400, "limit", "long key");
  });
});
