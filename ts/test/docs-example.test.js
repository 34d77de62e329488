// The TypeScript example of docs/interop.md, run as written: the first ```js block is copied
// into a module inside this package (so `@kv-envelope/ts` resolves as it would for a user) and
// its Worker `fetch` handler is driven against an in-memory KV: a miss, a stored session, and
// a future-version value it must refuse without touching.
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { after, test } from "node:test";
import { pathToFileURL } from "node:url";

import { createEnvelopes } from "../src/index.js";
import { registry } from "../generated/index.js";
import { FakeKv, REPO, TS_DIR } from "./helpers.js";

const doc = fs.readFileSync(path.join(REPO, "docs", "interop.md"), "utf8");
const block = /```js\n([\s\S]*?)```/.exec(doc);
const file = path.join(TS_DIR, "test", `.docs-example-${process.pid}.mjs`);
after(() => fs.rmSync(file, { force: true }));

test("docs/interop.md has a TypeScript example, and it runs as written", async () => {
  assert.ok(block, "docs/interop.md lost its ```js example");
  fs.writeFileSync(file, block[1]);
  const worker = (await import(pathToFileURL(file).href)).default;
  const env = { KV: new FakeKv() };
  const ask = (key) => worker.fetch(new Request(`https://svc.example/?key=${encodeURIComponent(key)}`), env);

  const missing = await ask("session:none");
  assert.equal(missing.status, 404);

  const now = Date.now();
  const { putValue } = createEnvelopes(registry);
  const session = {
    userId: "u1", email: "ada@example.com", createdAt: now, expiresAt: now + 3_600_000,
    absoluteExpiresAt: now + 7_200_000, refreshedAt: now, roles: [],
  };
  await putValue(env.KV, "session:a", "session", session, { expiresAt: now + 3_600_000 });
  const found = await ask("session:a");
  assert.equal(found.status, 200);
  assert.deepEqual(await found.json(), { version: 3, email: "ada@example.com" });

  const future = `{"kv":1,"type":"session","v":4,"exp":${now + 3_600_000},"data":{"userId":"u2"}}`;
  env.KV.seed("session:f", future);
  const refused = await ask("session:f");
  assert.equal(refused.status, 409);
  assert.deepEqual(await refused.json(), { error: "future_version" });
  assert.equal(env.KV.text("session:f"), future, "the value stays as it is");
});

// The sealed-values example of docs/interop.md (the ```js block of its "Sealed values from
// TypeScript" section), with the public TEST ring of interop/sealed.json as its SEAL_* secrets.
const sealedBlock = /## Sealed values from TypeScript[\s\S]*?```js\n([\s\S]*?)```/.exec(doc);
const sealedFile = path.join(TS_DIR, "test", `.docs-example-sealed-${process.pid}.mjs`);
after(() => fs.rmSync(sealedFile, { force: true }));

test("docs/interop.md's sealed-values example runs as written", async () => {
  assert.ok(sealedBlock, "docs/interop.md lost its sealed-values ```js example");
  fs.writeFileSync(sealedFile, sealedBlock[1]);
  const worker = (await import(pathToFileURL(sealedFile).href)).default;
  const golden = JSON.parse(fs.readFileSync(path.join(REPO, "interop", "sealed.json"), "utf8"));
  const env = { KV: new FakeKv(), ...golden.env };
  const ask = (key, init) => worker.fetch(new Request(`https://svc.example/?key=${encodeURIComponent(key)}`, init), env);

  // A session the Rust side sealed (k2), at the KV key it was sealed for.
  const rust = golden.cases.find((c) => c.name === "session-json-no-expiry");
  const bytes = (hex) => Uint8Array.from(Buffer.from(hex, "hex"));
  env.KV.seed(rust.kvKey, bytes(rust.sealed));
  const served = await ask(rust.kvKey);
  assert.equal(served.status, 200);
  assert.deepEqual(await served.json(), { email: "ada@example.com", keyId: "k2" });

  // What it stores is sealed: no plaintext in KV, and it reads back.
  const now = Date.now();
  const session = {
    userId: "u1", email: "docs@example.com", createdAt: now, expiresAt: now + 3_600_000,
    absoluteExpiresAt: now + 7_200_000, refreshedAt: now, roles: [],
  };
  const put = await ask("session:new", { method: "PUT", body: JSON.stringify(session) });
  assert.equal(put.status, 204);
  const stored = Buffer.from(env.KV.bytes("session:new"));
  assert.equal(stored[0], 0xc6);
  assert.ok(!stored.includes("docs@example.com"));
  assert.equal(env.KV.data.get("session:new").options.metadata.k, "k2");
  assert.deepEqual(await (await ask("session:new")).json(), { email: "docs@example.com", keyId: "k2" });

  // A clear session (planted without the key) is refused, and left as it is.
  const { putValue } = createEnvelopes(registry);
  await putValue(env.KV, "session:clear", "session", session);
  const clear = Buffer.from(env.KV.bytes("session:clear"));
  const notSealed = await ask("session:clear");
  assert.equal(notSealed.status, 409);
  assert.deepEqual(await notSealed.json(), { error: "not_sealed" });
  assert.deepEqual(Buffer.from(env.KV.bytes("session:clear")), clear);

  // Sealed with a key id the ring lacks: refused, on read and on write, and left as it is.
  const unknown = golden.negative.find((n) => n.name === "unknown-key-id");
  env.KV.seed(unknown.kvKey, bytes(unknown.sealed));
  const refused = await ask(unknown.kvKey);
  assert.equal(refused.status, 409);
  assert.deepEqual(await refused.json(), { error: "sealed_unknown_key", keyId: "k9" });
  const overwrite = await ask(unknown.kvKey, { method: "PUT", body: JSON.stringify(session) });
  assert.equal(overwrite.status, 409);
  assert.equal(Buffer.from(env.KV.bytes(unknown.kvKey)).toString("hex"), unknown.sealed, "the value stays as it is");
});
