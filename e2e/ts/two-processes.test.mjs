// Two `wrangler dev` processes given the same --persist-to share one local KV: each sees the
// other's writes at once, in both directions (run by scripts/e2e-ts.sh with two TS workers).
import assert from "node:assert/strict";
import { test } from "node:test";

import { call, fresh, kvGet, required, session, ts, tsPut } from "./lib.mjs";

const SECOND = required("SECOND_TS_WORKER_URL");

test("the two workers are separate processes on separate ports", () => {
  assert.notEqual(new URL(SECOND).port, new URL(required("TS_WORKER_URL")).port);
});

test("a write through one wrangler dev process is read by the other, both ways, and by wrangler's CLI", async () => {
  const a = `session:pa-${fresh()}`;
  const b = `session:pb-${fresh()}`;
  assert.equal((await tsPut(`/kv/${a}`, { data: session(Date.now(), "a@example.com") })).status, 201);
  assert.equal((await tsPut(`/kv/${b}`, { data: session(Date.now(), "b@example.com") }, SECOND)).status, 201);
  assert.equal((await call(SECOND, `/kv/${a}`)).json?.data.email, "a@example.com");
  assert.equal((await ts(`/kv/${b}`)).json?.data.email, "b@example.com");
  assert.ok(await kvGet(a));
  assert.ok(await kvGet(b));
});
