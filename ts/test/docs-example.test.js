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
