// Sealed values (0xC6) with WebCrypto, held to interop/sealed.json (written by the Rust side,
// tests/sealed_interop.rs, with a fixed test key ring and fixed nonces): every case opens here to
// the same header and plaintext and is sealed again byte for byte with the same nonce; every
// negative case, truncation and single-bit flip gives the error kind Rust gives. Then the key
// ring's rules (the variables the Rust side reads, errors that never show a key), fresh nonces,
// and getValue / putValue through a ring: clear values refused (`not_sealed`) unless the ring reads
// them while migrating, sealed ones never overwritten by a writer that cannot open them.
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { describe, test } from "node:test";
import { inspect } from "node:util";

import {
  EnvelopeError,
  KeyRing,
  KeyRingError,
  encodePayload,
  getValue,
  keyRingFromEnv,
  openEnvelope,
  openSealed,
  parseMetadata,
  peekHeader,
  putValue,
  readEnvelope,
  sealEnvelope,
  sealedFrame,
  toMetadata,
  writeEnvelope,
} from "../src/index.js";
import { sealFrameWithNonce } from "../src/seal.js";
import { registry } from "../generated/index.js";
import { FakeKv, REPO } from "./helpers.js";

const golden = JSON.parse(fs.readFileSync(path.join(REPO, "interop", "sealed.json"), "utf8"));
const NOW = golden.now;
const unhex = (/** @type {string} */ h) => Uint8Array.from(Buffer.from(h, "hex"));
const hex = (/** @type {Uint8Array} */ b) => Buffer.from(b).toString("hex");
// Rust `Error::kind()` → this package's code (src/errors.js).
const CODE = { envelope: "malformed", codec: "malformed", type_mismatch: "wrong_type", validation: "invalid" };
const code = (/** @type {string} */ kind) => CODE[/** @type {keyof typeof CODE} */ (kind)] ?? kind;
const ring = await keyRingFromEnv(golden.env, golden.prefix);
/** The golden ring with `ids` as its list (the first seals). @param {string} ids */
const ringWith = (ids) => keyRingFromEnv({ ...golden.env, [`${golden.prefix}_KEYS`]: ids }, golden.prefix);
const SECRET_VALUES = Object.entries(golden.env)
  .filter(([k]) => k.includes("_KEY_"))
  .map(([, v]) => v);

/** The code of what `f` throws (an EnvelopeError), or "ok" / "miss". */
async function outcomeOf(/** @type {() => Promise<unknown>} */ f) {
  try {
    const r = await f();
    return r === null ? "miss" : "ok";
  } catch (e) {
    if (e instanceof EnvelopeError) return e.code;
    throw e;
  }
}

function expand(/** @type {[string, number][]} */ runs) {
  return runs.flatMap(([kind, n]) => Array(n).fill(code(kind)));
}

describe("interop/sealed.json: what the Rust side sealed", () => {
  test("the file has the cases, negatives and sweeps this suite expects", () => {
    assert.equal(golden.cases.length, 5);
    assert.ok(golden.negative.length >= 15);
    assert.deepEqual(ring.keyIds, ["k2", "k1", "K2026_04_rotation_for_interop_32"]);
    assert.equal(ring.primaryId, "k2");
    for (const c of golden.cases) assert.ok(golden.truncations.some((t) => t.case === c.name) && golden.flips.some((t) => t.case === c.name));
  });

  for (const c of golden.cases) {
    test(`${c.name}: opens to the same header and plaintext, and reads as ${c.type} v${c.version}`, async () => {
      const bytes = unhex(c.sealed);
      const header = { codec: c.codec, type: c.type, version: c.version, expiresAt: c.expiresAt, keyId: c.keyId };
      assert.deepEqual(peekHeader(bytes), header, "the header reads without a key");
      assert.equal(JSON.stringify(toMetadata(peekHeader(bytes))), c.metadata, "the same KV metadata as Rust");
      assert.deepEqual(parseMetadata(c.metadata), header);
      const opened = await openSealed(ring, bytes, c.kvKey);
      assert.deepEqual(opened.header, header);
      assert.equal(hex(opened.plaintext), c.plaintext);
      if (c.codec === "json") {
        const read = await openEnvelope(registry, ring, bytes, c.type, c.kvKey, { now: NOW });
        assert.ok(read);
        assert.deepEqual(read.data, c.data);
        assert.equal(read.version, c.version);
        assert.equal(read.expiresAt, c.expiresAt);
        assert.equal(read.keyId, c.keyId);
        assert.equal(read.seal, c.keyId === "k2" ? "primary" : "older_key");
      } else {
        await assert.rejects(openEnvelope(registry, ring, bytes, c.type, c.kvKey, { now: NOW }), (e) => {
          assert.ok(e instanceof EnvelopeError);
          assert.equal(e.code, "binary_codec");
          assert.equal(e.version, c.version);
          return true;
        });
      }
      // Without a key: the header checks still apply, then a typed refusal.
      assert.throws(() => readEnvelope(registry, bytes, c.type, { now: NOW }), { code: "sealed_no_key_ring", keyId: c.keyId });
      assert.equal(await outcomeOf(() => openEnvelope(registry, null, bytes, c.type, c.kvKey, { now: NOW })), "sealed_no_key_ring");
    });

    test(`${c.name}: sealed again here with the same key and nonce, byte for byte`, async () => {
      const plaintext = unhex(c.plaintext);
      const fields = { codec: c.codec, type: c.type, version: c.version, expiresAt: c.expiresAt };
      const sealed = await sealFrameWithNonce(await ringWith(c.keyId), c.kvKey, fields, plaintext, unhex(c.nonce));
      assert.equal(hex(sealed), c.sealed);
      if (c.codec === "json") {
        // The JSON payload this package writes is the plaintext serde_json wrote.
        assert.equal(JSON.stringify(c.data), Buffer.from(plaintext).toString("utf8"));
        if (registry.types[c.type].current === c.version) {
          assert.equal(encodePayload(registry, c.type, c.data, { expiresAt: c.expiresAt }).body, Buffer.from(plaintext).toString("utf8"));
        }
      }
    });
  }

  for (const n of golden.negative) {
    test(`negative ${n.name} (${n.what}): ${n.open ?? "-"} / ${n.read}, as in Rust`, async () => {
      const bytes = unhex(n.sealed);
      const r = n.ring ? ring : null;
      if (n.open !== undefined) assert.equal(await outcomeOf(() => openSealed(ring, bytes, n.kvKey)), code(n.open), "open");
      assert.equal(await outcomeOf(() => openEnvelope(registry, r, bytes, n.type, n.kvKey, { now: NOW })), code(n.read), "read");
    });
  }

  for (const t of golden.truncations) {
    test(`${t.case}: every truncation is the error Rust gives`, async () => {
      const c = golden.cases.find((x) => x.name === t.case);
      const bytes = unhex(c.sealed);
      const want = expand(t.runs);
      assert.equal(want.length, bytes.length);
      const got = [];
      for (let len = 0; len < bytes.length; len++) got.push(await outcomeOf(() => openSealed(ring, bytes.slice(0, len), c.kvKey)));
      assert.deepEqual(got, want);
    });
  }

  for (const t of golden.flips) {
    test(`${t.case}: every flipped bit is the error Rust gives`, async () => {
      const c = golden.cases.find((x) => x.name === t.case);
      const bytes = unhex(c.sealed);
      const want = expand(t.runs);
      assert.equal(want.length, bytes.length * 8);
      const got = [];
      for (let i = 0; i < bytes.length * 8; i++) {
        const b = bytes.slice();
        b[i >> 3] ^= 1 << (i & 7);
        got.push(await outcomeOf(() => openSealed(ring, b, c.kvKey)));
      }
      assert.deepEqual(got, want);
    });
  }
});

describe("the key ring", () => {
  const key = Buffer.alloc(32, 7).toString("base64");
  /** @param {Record<string, string>} env @param {string} code @param {string} name */
  async function refused(env, code, name) {
    await assert.rejects(keyRingFromEnv(env, "SEAL"), (e) => {
      assert.ok(e instanceof KeyRingError, String(e));
      assert.equal(e.code, code);
      assert.ok(e.message.includes(name), e.message);
      for (const [k, v] of Object.entries(env)) {
        if (k.includes("_KEY_")) assert.ok(!e.message.includes(v.trim()), "a key's value in the message");
      }
      return true;
    });
  }

  test("the variables of the Rust side: ids by comma or space, primary first, padding optional, whitespace trimmed", async () => {
    const r = await keyRingFromEnv(
      { SEAL_KEYS: " k2, k1 k0", SEAL_KEY_k2: ` ${key}\n`, SEAL_KEY_k1: key.replace(/=+$/, ""), SEAL_KEY_k0: key },
      "SEAL",
    );
    assert.deepEqual(r.keyIds, ["k2", "k1", "k0"]);
    assert.equal(r.primaryId, "k2");
    assert.ok(r.has("k1") && !r.has("k9"));
  });

  test("each mistake is a typed error naming the variable, never its value", async () => {
    await refused({}, "missing", "SEAL_KEYS");
    await refused({ SEAL_KEYS: "k1" }, "missing", "SEAL_KEY_k1");
    await refused({ SEAL_KEYS: " , " }, "empty", "SEAL_KEYS");
    await refused({ SEAL_KEYS: "k-1" }, "invalid_id", "k-1");
    await refused({ SEAL_KEYS: "x".repeat(33) }, "invalid_id", "x".repeat(33));
    await refused({ SEAL_KEYS: "k1,k1", SEAL_KEY_k1: key }, "duplicate_id", "k1");
    await refused({ SEAL_KEYS: "k1", SEAL_KEY_k1: "hunter2-not-base64!!" }, "bad_base64", "SEAL_KEY_k1");
    // The URL-safe alphabet, a nonzero trailing bit, too much padding: refused as the Rust ring does.
    await refused({ SEAL_KEYS: "k1", SEAL_KEY_k1: Buffer.alloc(32, 0xfb).toString("base64url") }, "bad_base64", "SEAL_KEY_k1");
    await refused({ SEAL_KEYS: "k1", SEAL_KEY_k1: key.replace(/.=$/, "B=") }, "bad_base64", "SEAL_KEY_k1");
    await refused({ SEAL_KEYS: "k1", SEAL_KEY_k1: `${key}=` }, "bad_base64", "SEAL_KEY_k1");
    await refused({ SEAL_KEYS: "k1", SEAL_KEY_k1: Buffer.alloc(16, 9).toString("base64") }, "bad_length", "SEAL_KEY_k1");
    await assert.rejects(keyRingFromEnv({ SEAL_KEYS: "k1", SEAL_KEY_k1: Buffer.alloc(31).toString("base64") }, "SEAL"), { len: 31 });
    await assert.rejects(KeyRing.fromKeys([]), { code: "empty" });
    assert.throws(() => new /** @type {any} */ (KeyRing)(Symbol("KeyRing"), {}, false), TypeError);
  });

  test("key material is in no inspect, JSON, string or error output", async () => {
    const shown = [inspect(ring, { depth: 10, showHidden: true }), JSON.stringify(ring), String(ring)];
    shown.push(inspect(Object.entries(ring)), inspect(Object.getOwnPropertyNames(ring).map((p) => /** @type {any} */ (ring)[p])));
    for (const [i, s] of shown.entries()) {
      if (i < 3) assert.ok(s.includes("k2"), s);
      for (const v of SECRET_VALUES) assert.ok(!s.includes(v) && !s.includes(Buffer.from(v, "base64").toString("hex")), s);
    }
    const c = golden.cases[0];
    const errors = [];
    for (const n of golden.negative) {
      try {
        await openEnvelope(registry, n.ring ? ring : null, unhex(n.sealed), n.type, n.kvKey, { now: NOW });
      } catch (e) {
        errors.push(e);
      }
    }
    assert.ok(errors.length >= 14);
    for (const e of errors) {
      const text = `${e.message} ${inspect(e, { depth: 10 })} ${JSON.stringify(e)}`;
      for (const v of SECRET_VALUES) assert.ok(!text.includes(v), text);
      assert.ok(!text.includes("ada@example.com"), "nor the payload");
    }
    assert.equal(c.name, "session-json");
  });
});

describe("sealing here", () => {
  const data = JSON.parse(JSON.stringify(golden.cases[0].data));

  test("every seal draws a fresh nonce; each frame opens only under its own KV key", async () => {
    const a = await sealEnvelope(registry, ring, "session:a", "session", data, { expiresAt: NOW + 1000 });
    const b = await sealEnvelope(registry, ring, "session:a", "session", data, { expiresAt: NOW + 1000 });
    assert.notEqual(hex(sealedFrame(a).nonce), hex(sealedFrame(b).nonce));
    assert.notEqual(hex(a), hex(b));
    for (const f of [a, b]) {
      assert.deepEqual((await openEnvelope(registry, ring, f, "session", "session:a", { now: NOW }))?.data, data);
      assert.equal(await outcomeOf(() => openEnvelope(registry, ring, f, "session", "session:b", { now: NOW })), "sealed_unopenable");
    }
    assert.ok(!Buffer.from(a).includes("ada@example.com"), "no plaintext in the frame");
  });

  test("what fails its schema is not sealed", async () => {
    await assert.rejects(sealEnvelope(registry, ring, "session:x", "session", { ...data, email: "SECRET" }), (e) => {
      assert.ok(e instanceof EnvelopeError && e.code === "invalid" && !e.message.includes("SECRET"));
      return true;
    });
  });

  test("a ring refuses clear values by default (expired ones are still a miss); requiringSealed(false) reads them", async () => {
    const strict = ring;
    assert.equal(strict.requireSealed, true, "the default, as in Rust");
    const migrating = ring.requiringSealed(false);
    assert.equal(migrating.requireSealed, false);
    const clear = writeEnvelope(registry, "session", data, { expiresAt: NOW + 1000 });
    assert.equal((await openEnvelope(registry, migrating, clear, "session", "k", { now: NOW }))?.seal, "clear");
    assert.equal(await outcomeOf(() => openEnvelope(registry, strict, clear, "session", "k", { now: NOW })), "not_sealed");
    assert.equal(await outcomeOf(() => openEnvelope(registry, strict, clear, "session", "k", { now: NOW + 1000 })), "miss");
  });
});

describe("getValue / putValue with a key ring", () => {
  const data = JSON.parse(JSON.stringify(golden.cases[0].data));
  const exp = NOW + 3_600_000;

  test("putValue seals (metadata k) and getValue opens; clear values read only while migrating", async () => {
    const kv = new FakeKv();
    const written = await putValue(registry, kv, "session:s", "session", data, { keyRing: ring, expiresAt: exp, now: NOW });
    assert.ok(written instanceof Uint8Array && written[0] === 0xc6);
    assert.deepEqual(kv.data.get("session:s")?.options.metadata, { t: "session", v: 3, c: "json", e: exp, k: "k2" });
    const read = await getValue(registry, kv, "session:s", "session", { keyRing: ring, now: NOW });
    assert.deepEqual(read?.data, data);
    assert.equal(read?.seal, "primary");
    await assert.rejects(getValue(registry, kv, "session:s", "session", { now: NOW }), { code: "sealed_no_key_ring" });

    await putValue(registry, kv, "session:c", "session", data, { expiresAt: exp, now: NOW });
    await assert.rejects(getValue(registry, kv, "session:c", "session", { keyRing: ring, now: NOW }), { code: "not_sealed" });
    const migrating = ring.requiringSealed(false);
    assert.equal((await getValue(registry, kv, "session:c", "session", { keyRing: migrating, now: NOW }))?.seal, "clear");
    // A writer with a strict ring does not replace what it cannot trust; one migrating from
    // clear rewrites it sealed.
    await assert.rejects(putValue(registry, kv, "session:c", "session", data, { keyRing: ring, expiresAt: exp, now: NOW }), { code: "not_sealed" });
    await putValue(registry, kv, "session:c", "session", data, { keyRing: migrating, expiresAt: exp, now: NOW });
    assert.equal(kv.bytes("session:c")?.[0], 0xc6);
  });

  test("an older key's value opens and is re-sealed with the primary on write", async () => {
    const kv = new FakeKv();
    const old = await ringWith("k1");
    await putValue(registry, kv, "session:o", "session", data, { keyRing: old, expiresAt: exp, now: NOW });
    assert.equal((await getValue(registry, kv, "session:o", "session", { keyRing: ring, now: NOW }))?.seal, "older_key");
    await putValue(registry, kv, "session:o", "session", data, { keyRing: ring, expiresAt: exp, now: NOW });
    assert.equal(peekHeader(/** @type {Uint8Array} */ (kv.bytes("session:o"))).keyId, "k2");
  });

  test("a sealed value this writer cannot open is never overwritten, even as a cache", async () => {
    const kv = new FakeKv();
    const unknown = golden.negative.find((n) => n.name === "unknown-key-id");
    const planted = unhex(unknown.sealed);
    kv.seed(unknown.kvKey, planted);
    for (const options of [
      { keyRing: ring },
      { keyRing: ring, overwrite: /** @type {const} */ ("allowCorrupt") },
      {},
      { overwrite: /** @type {const} */ ("allowCorrupt") },
    ]) {
      await assert.rejects(putValue(registry, kv, unknown.kvKey, "session", data, { ...options, expiresAt: exp, now: NOW }), (e) => {
        assert.ok(e instanceof EnvelopeError && e.code.startsWith("sealed_") && e.protectsStoredValue, String(e));
        return true;
      });
    }
    assert.deepEqual(kv.bytes(unknown.kvKey), planted, "bytes unchanged");
    // A tampered one neither.
    const flipped = golden.negative.find((n) => n.name === "flipped-bit-tag");
    kv.seed(flipped.kvKey, unhex(flipped.sealed));
    await assert.rejects(
      putValue(registry, kv, flipped.kvKey, "session", data, { keyRing: ring, overwrite: "allowCorrupt", expiresAt: exp, now: NOW }),
      { code: "sealed_unopenable" },
    );
    assert.equal(hex(/** @type {Uint8Array} */ (kv.bytes(flipped.kvKey))), flipped.sealed);
  });
});
