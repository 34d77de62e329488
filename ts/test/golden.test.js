// The committed golden values (tests/golden/<type>/): JSON ones read at their version and are
// written back byte for byte; postcard ones are recognised and refused with their header.
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { test } from "node:test";

import { EnvelopeError, encodeEnvelope, frameHeader, readEnvelope, writeEnvelope } from "../src/index.js";
import { registry } from "../generated/index.js";
import { GOLDEN, NOW } from "./helpers.js";

const cases = fs.readdirSync(GOLDEN).flatMap((type) =>
  fs
    .readdirSync(path.join(GOLDEN, type))
    .map((f) => /^v([0-9]+)\.(json|bin)$/.exec(f))
    .filter((m) => m !== null)
    .map((m) => ({ type, version: Number(m[1]), ext: m[2], file: path.join(GOLDEN, type, m[0]) })),
);

test("every golden type is in the registry, and the golden folder is not empty", () => {
  assert.equal(cases.filter((c) => c.ext === "json").length, 3);
  assert.equal(cases.filter((c) => c.ext === "bin").length, 3);
  for (const c of cases) assert.ok(registry.types[c.type], `${c.type} has no schemas`);
});

for (const c of cases.filter((c) => c.ext === "json")) {
  test(`golden ${c.type} v${c.version}.json reads at v${c.version} and is rewritten byte for byte`, () => {
    const text = fs.readFileSync(c.file, "utf8");
    const read = readEnvelope(registry, fs.readFileSync(c.file), c.type, { now: NOW });
    assert.ok(read);
    assert.equal(read.version, c.version);
    assert.equal(read.expiresAt, null);
    // JSON.parse is the reference here: the strict reader must agree with it on valid input.
    assert.deepEqual(read.data, JSON.parse(text).data);
    // Same header layout and payload serialization as the Rust writer.
    assert.equal(encodeEnvelope(c.type, c.version, null, read.data), text);
    const current = registry.types[c.type].current;
    if (c.version === current) {
      // The current version is what writers write: through the validating writer too.
      assert.equal(writeEnvelope(registry, c.type, read.data), text);
      const expected = JSON.parse(fs.readFileSync(path.join(GOLDEN, c.type, `v${c.version}.expected.json`), "utf8"));
      assert.deepEqual(read.data, expected);
    }
  });
}

for (const c of cases.filter((c) => c.ext === "bin")) {
  test(`golden ${c.type} v${c.version}.bin is a postcard frame: header read, payload refused`, () => {
    const bytes = new Uint8Array(fs.readFileSync(c.file));
    assert.deepEqual(frameHeader(bytes), { codec: "postcard", type: c.type, version: c.version, expiresAt: null });
    assert.throws(
      () => readEnvelope(registry, bytes, c.type, { now: NOW }),
      (e) => e instanceof EnvelopeError && e.code === "binary_codec" && e.version === c.version && /postcard/.test(e.message),
    );
  });
}

test("peekHeader reads any value's header without its payload or a schema", async () => {
  const { peekHeader } = await import("../src/index.js");
  const { CORPUS } = await import("./helpers.js");
  const at = (f) => fs.readFileSync(path.join(CORPUS, f));
  assert.deepEqual(peekHeader(at("envelope/wrong-type.json")), { codec: "json", type: "cart", version: 3, expiresAt: 4_000_000_000_000 });
  assert.deepEqual(peekHeader(at("envelope/future-version.bin")), { codec: "postcard", type: "session", version: 4, expiresAt: 4_000_000_000_000 });
  assert.equal(peekHeader(at("envelope/valid-data-first-key-order.json")).version, 3);
  assert.equal(peekHeader(at("envelope/expired-with-garbage-payload.json")).expiresAt, 1000);
  assert.throws(() => peekHeader(at("envelope/nul-bytes.bin")), { code: "unknown_codec" });
  assert.throws(() => peekHeader(at("envelope/missing-data.json")), { code: "malformed" });
});
