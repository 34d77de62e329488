// The hostile corpus (tests/corpus/, manifest.txt): every envelope/ and metadata/ case gives the
// Rust reader's outcome class, as a typed EnvelopeError or a value, never another exception.
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { test } from "node:test";

import { EnvelopeError, parseMetadata, readEnvelope } from "../src/index.js";
import { registry } from "../generated/index.js";
import { CORPUS, NOW, outcome } from "./helpers.js";

// Rust `Error::kind()` (manifest) → this package's code. Rust's `envelope` and `codec` are one
// code here (see src/errors.js).
const CODE = {
  envelope: "malformed",
  codec: "malformed",
  unknown_codec: "unknown_codec",
  type_mismatch: "wrong_type",
  unknown_version: "unknown_version",
  future_version: "future_version",
  validation: "invalid",
  sealed_no_key_ring: "sealed_no_key_ring",
};
// A postcard frame whose Rust outcome depends on its payload: this reader stops at the header.
const PAYLOAD_DEPENDENT = new Set(["ok", "codec", "validation"]);

const manifest = fs
  .readFileSync(path.join(CORPUS, "manifest.txt"), "utf8")
  .split("\n")
  .filter((l) => l.trim() && !l.startsWith("#"))
  .map((l) => {
    const [file, expected] = l.split(" -- ")[0].trim().split(/\s+/);
    return { file, expected };
  });
const envelopeCases = manifest.filter((c) => c.file.startsWith("envelope/"));
const metadataCases = manifest.filter((c) => c.file.startsWith("metadata/"));

test("the manifest lists the envelope and metadata cases (none silently dropped)", () => {
  // Counts of the committed manifest: a new case changes them on purpose.
  assert.equal(envelopeCases.length, 89);
  assert.equal(metadataCases.length, 12);
  for (const c of [...envelopeCases, ...metadataCases]) {
    assert.ok(fs.existsSync(path.join(CORPUS, c.file)), `${c.file} is in the manifest but not on disk`);
  }
});

/** What this reader must give for a case the Rust reader gives `expected` for. */
function expectedHere(bytes, expected) {
  if (bytes[0] === 0xc5 && PAYLOAD_DEPENDENT.has(expected)) return "binary_codec";
  if (expected === "ok" || expected === "miss") return expected;
  const code = CODE[expected];
  assert.ok(code, `manifest outcome ${expected} has no mapping`);
  return code;
}

for (const { file, expected } of envelopeCases) {
  test(`corpus ${file}: Rust ${expected}`, async () => {
    const bytes = new Uint8Array(fs.readFileSync(path.join(CORPUS, file)));
    const want = expectedHere(bytes, expected);
    const got = await outcome(() => readEnvelope(registry, bytes, "session", { now: NOW }));
    if (want === "ok") {
      assert.ok(!got.error, `expected a value, got ${got.error?.code}: ${got.error?.message}`);
      assert.ok(got.ok, "expected a value, got a miss");
      assert.equal(got.ok.type, "session");
      assert.ok(registry.types.session.versions[got.ok.version](got.ok.data));
    } else if (want === "miss") {
      assert.ok(!got.error, `expected a miss, got ${got.error?.code}: ${got.error?.message}`);
      assert.equal(got.ok, null);
    } else {
      assert.ok(got.error, `expected ${want}, got a ${got.ok ? "value" : "miss"}`);
      assert.equal(got.error.code, want, got.error.message);
      assert.ok(got.error instanceof EnvelopeError);
      // Never echo a value: the corpus plants secrets in payloads.
      const shown = `${got.error.message} ${JSON.stringify(got.error)}`;
      assert.ok(!/SECRET|hunter2/.test(shown), `error echoes a value: ${shown.slice(0, 200)}`);
      if (want === "invalid") {
        assert.ok(got.error.issues.length > 0);
        for (const i of got.error.issues) assert.match(i.instancePath, /^(\/[^/]*)*$/);
      }
    }
    // The text form (what `kv.get(key)` returns) reads the same for JSON envelopes.
    if (bytes[0] !== 0xc5 && want !== "binary_codec") {
      // ignoreBOM: keep a BOM as the Rust reader sees it (the WHATWG default strips it).
      const text = new TextDecoder("utf-8", { ignoreBOM: true }).decode(bytes);
      if (!text.includes("\uFFFD")) {
        const again = await outcome(() => readEnvelope(registry, text, "session", { now: NOW }));
        assert.equal(again.error?.code, got.error?.code);
      }
    }
  });
}

for (const { file, expected } of metadataCases) {
  test(`corpus ${file}: ${expected}`, () => {
    const text = fs.readFileSync(path.join(CORPUS, file), "utf8");
    const header = parseMetadata(text);
    if (expected === "some") {
      assert.ok(header, "expected our metadata");
      assert.equal(header.type, "session");
    } else {
      assert.equal(expected, "none");
      assert.equal(header, null);
    }
  });
}

test("corpus values read with the details the manifest describes", () => {
  const read = (f) => readEnvelope(registry, fs.readFileSync(path.join(CORPUS, f)), "session", { now: NOW });
  assert.equal(read("envelope/valid-v1.json").version, 1);
  assert.equal(read("envelope/valid-never-expires.json").expiresAt, null);
  assert.equal(read("envelope/valid-exp-u64-max.json").expiresAt, 2 ** 64);
  assert.equal(read("envelope/valid-v3.json").expiresAt, 4_000_000_000_000);
  assert.deepEqual(Object.keys(read("envelope/valid-extra-keys-after-data.json").data).length, 7);
  assert.equal(parseMetadata(fs.readFileSync(path.join(CORPUS, "metadata/valid.json"), "utf8")).expiresAt, 1764000000000);
  const future = (() => {
    try {
      read("envelope/future-version.json");
    } catch (e) {
      return e;
    }
  })();
  assert.equal(future.version, 4);
  assert.equal(future.known, 3);
});
