// KV-facing behaviour: limits before any call, the 60 s floor with skew margin, the metadata
// copy, and the write guard (never replace a future-version or unreadable value).
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { test } from "node:test";

import {
  EXPIRATION_SKEW_SECS,
  MIN_EXPIRATION_SECS,
  clampExpiration,
  createEnvelopes,
  encodeEnvelope,
  parseMetadata,
} from "../src/index.js";
import { registry } from "../generated/index.js";
import { CORPUS, FakeKv, GOLDEN, NOW, outcome } from "./helpers.js";

const { getValue, putValue, writeEnvelope, readEnvelope } = createEnvelopes(registry);
const session = () => ({
  userId: "user-1",
  email: "ada@example.com",
  createdAt: NOW,
  expiresAt: NOW + 86_400_000,
  absoluteExpiresAt: NOW + 30 * 86_400_000,
  refreshedAt: NOW,
  roles: ["admin"],
});
const corpus = (f) => new Uint8Array(fs.readFileSync(path.join(CORPUS, f)));

test("the skew margin and floor are the Rust backend's", () => {
  assert.equal(MIN_EXPIRATION_SECS, 60);
  assert.equal(EXPIRATION_SKEW_SECS, 5);
  // Soon: raised to the floor; later: the envelope's second, rounded up.
  assert.equal(clampExpiration(NOW + 1, NOW), NOW / 1000 + 65);
  assert.equal(clampExpiration(NOW + 3_600_000, NOW), NOW / 1000 + 3600);
  assert.equal(clampExpiration(NOW + 3_600_001, NOW), NOW / 1000 + 3601);
  assert.equal(clampExpiration(1_800_000_000_500 + 70_000, 1_800_000_000_500), 1_800_000_071);
});

test("putValue writes the canonical envelope, the exact expiry, the metadata copy and a clamped expiration", async () => {
  const kv = new FakeKv();
  const expiresAt = NOW + 10_000;
  const text = await putValue(kv, "session:k", "session", session(), { expiresAt, now: NOW });
  assert.equal(kv.text("session:k"), text);
  assert.ok(text.startsWith(`{"kv":1,"type":"session","v":3,"exp":${expiresAt},"data":{"userId":`));
  const { options } = kv.data.get("session:k");
  assert.deepEqual(options.metadata, { t: "session", v: 3, c: "json", e: expiresAt });
  assert.equal(options.expiration, NOW / 1000 + 65);
  assert.deepEqual(parseMetadata(JSON.stringify(options.metadata)), { codec: "json", type: "session", version: 3, expiresAt });
  if (registry.metadata) assert.ok(registry.metadata(options.metadata), "metadata fails metadata.schema.json");
  // Before KV drops it (65 s), the envelope's own expiry makes it a miss.
  assert.equal((await getValue(kv, "session:k", "session", { now: NOW })).data.userId, "user-1");
  assert.equal(await getValue(kv, "session:k", "session", { now: expiresAt }), null);
  assert.deepEqual(kv.calls, ["get session:k", "put session:k", "get session:k", "get session:k"]);
});

test("cacheTtl is off by default and raised to 60 s when asked for", async () => {
  const kv = new FakeKv();
  await getValue(kv, "session:c", "session");
  await getValue(kv, "session:c", "session", { cacheTtl: 30 });
  await getValue(kv, "session:c", "session", { cacheTtl: 300 });
  assert.deepEqual(kv.getOptions, [{ type: "arrayBuffer" }, { type: "arrayBuffer", cacheTtl: 60 }, { type: "arrayBuffer", cacheTtl: 300 }]);
});

test("a value that never expires has no expiration and no `e`", async () => {
  const kv = new FakeKv();
  await putValue(kv, "session:n", "session", session(), { now: NOW });
  const { options } = kv.data.get("session:n");
  assert.equal(options.expiration, undefined);
  assert.deepEqual(options.metadata, { t: "session", v: 3, c: "json" });
  assert.equal((await getValue(kv, "session:n", "session", { now: NOW })).expiresAt, null);
});

test("written values validate under the folder's envelope and whole-value schemas", () => {
  const value = JSON.parse(writeEnvelope("session", session(), { expiresAt: NOW + 1 }));
  assert.ok(registry.envelope, "schemas/ has envelope.schema.json");
  assert.ok(registry.envelope(value), JSON.stringify(registry.envelope.errors));
  for (const [type, validate] of Object.entries(registry.wholeValue)) {
    assert.ok(registry.types[type]);
    if (type === "session") assert.ok(validate(value), JSON.stringify(validate.errors));
  }
});

test("limits are refused before any KV call", async () => {
  const kv = new FakeKv();
  for (const [key, reason] of [
    ["", "key_empty"],
    [".", "key_reserved"],
    ["..", "key_reserved"],
    ["k".repeat(513), "key_too_long"],
    ["é".repeat(257), "key_too_long"],
  ]) {
    for (const call of [() => getValue(kv, key, "session"), () => putValue(kv, key, "session", session(), { now: NOW })]) {
      const got = await outcome(call);
      assert.equal(got.error?.code, "limit");
      assert.equal(got.error.reason, reason);
    }
  }
  const past = await outcome(() => putValue(kv, "session:p", "session", session(), { expiresAt: NOW, now: NOW }));
  assert.equal(past.error?.reason, "already_expired");
  // Past 2^53 - 1 ms no JavaScript reader is exact, and the Workers runtime cannot take it.
  const far = await outcome(() => putValue(kv, "session:f", "session", session(), { expiresAt: 2 ** 53, now: NOW }));
  assert.equal(far.error?.reason, "expiry_out_of_range");
  assert.ok((await outcome(() => writeEnvelope("session", session(), { expiresAt: Number.MAX_SAFE_INTEGER }))).ok);
  const big = await outcome(() =>
    putValue(kv, "session:b", "session", { ...session(), roles: ["x".repeat(26 * 1024 * 1024)] }, { now: NOW }),
  );
  assert.equal(big.error?.reason, "value_too_large");
  assert.deepEqual(kv.calls, []);
  assert.ok(await outcome(() => putValue(kv, "k".repeat(512), "session", session(), { now: NOW })).then((r) => r.ok));
});

test("invalid data is never written", async () => {
  const kv = new FakeKv();
  for (const bad of [{ ...session(), email: "SECRET-not-an-email" }, { ...session(), isAdmin: true }, null, [session()]]) {
    const got = await outcome(() => putValue(kv, "session:i", "session", bad, { now: NOW }));
    assert.equal(got.error?.code, "invalid");
    assert.ok(!got.error.message.includes("SECRET"));
  }
  const unserializable = await outcome(() => putValue(kv, "session:i", "session", { ...session(), createdAt: 1n }, { now: NOW }));
  assert.equal(unserializable.error?.code, "encode");
  assert.equal(kv.data.size, 0);
  assert.deepEqual(kv.calls, []);
});

/** Stored bytes, overwrite policy → expected verdict of a put over them. */
const guardCases = [
  ["future version (JSON)", corpus("envelope/future-version.json"), "future_version", "future_version"],
  ["future version (postcard)", corpus("envelope/future-version.bin"), "future_version", "future_version"],
  ["corrupt JSON", corpus("envelope/unterminated.json"), "malformed", "written"],
  ["schema-violating", corpus("envelope/schema-violating.json"), "invalid", "written"],
  ["another type", corpus("envelope/wrong-type.json"), "wrong_type", "written"],
  ["unknown codec", corpus("envelope/nul-bytes.bin"), "unknown_codec", "written"],
  ["postcard current version", new Uint8Array(fs.readFileSync(path.join(GOLDEN, "session/v3.bin"))), "binary_codec", "written"],
  ["expired", corpus("envelope/expired.json"), "written", "written"],
  ["expired postcard", corpus("envelope/expired.bin"), "written", "written"],
  ["old version", corpus("envelope/valid-v1.json"), "written", "written"],
  ["current version", corpus("envelope/valid-v3.json"), "written", "written"],
];
for (const [name, stored, safe, allowCorrupt] of guardCases) {
  test(`write guard over ${name}: safe → ${safe}, allowCorrupt → ${allowCorrupt}`, async () => {
    for (const [overwrite, want] of [
      ["safe", safe],
      ["allowCorrupt", allowCorrupt],
    ]) {
      const kv = new FakeKv();
      kv.seed("session:g", stored);
      const got = await outcome(() => putValue(kv, "session:g", "session", session(), { now: NOW, overwrite }));
      if (want === "written") {
        assert.ok(got.ok, `${overwrite}: refused with ${got.error?.code}`);
        assert.equal(kv.text("session:g"), got.ok);
      } else {
        assert.equal(got.error?.code, want, `${overwrite}`);
        assert.ok(got.error.protectsStoredValue);
        assert.deepEqual(kv.data.get("session:g").value, stored, "the stored value was replaced");
        assert.deepEqual(kv.calls, ["get session:g"]);
      }
    }
  });
}

test("a reader branches on the stored version", () => {
  const v1 = { userId: "u", email: "u@example.com", createdAt: 1, expiresAt: 2 };
  const read = readEnvelope(encodeEnvelope("session", 1, null, v1), "session");
  assert.equal(read.version, 1);
  assert.deepEqual(read.data, v1);
  // A v1 payload is not a v3 payload: each version has its own validator.
  assert.equal(registry.types.session.versions[3](v1), false);
});

test("the validators run without run-time code generation (as on Workers)", () => {
  // This process runs with --disallow-code-generation-from-strings (see package.json).
  assert.throws(() => new Function("return 1"), EvalError);
  assert.equal(registry.types.session.versions[3](session()), true);
});
