// Sessions on Durable Objects (SESSION_BACKEND=durable): the demo served by `wrangler dev` on
// workerd with its SessionObject class, run by scripts/e2e.sh after the KV runs, together with
// e2e/http.test.mjs and e2e/browser.test.mjs (the same session contract, now on the objects).
// Here: the sessions really live in the objects (nothing in the KV namespace), every change is
// seen at once by every later request, and the KV operation counters of /_stats count the
// objects' subrequests the same way.

import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { delta, http, kvList, login, stats, withSession } from "../lib/worker.mjs";

const JSON_ACCEPT = { accept: "application/json" };

async function me(id) {
  return http("/me", withSession(id, JSON_ACCEPT));
}

async function post(path, id) {
  return http(path, { method: "POST", ...withSession(id) });
}

describe("the backend conformance cases on workerd (POST /_conformance, CONFORMANCE=on)", () => {
  test("every case passes on the Durable Objects and on KV; put_if is refused on KV", async () => {
    const res = await http("/_conformance", { method: "POST" });
    assert.equal(res.status, 200, res.text);
    const reports = res.json();
    for (const backend of ["durable", "kv"]) {
      const cases = reports[backend];
      assert.equal(cases.length, 12, `${backend}: every case reported`);
      for (const c of cases) assert.ok(c.passed, `${backend}: ${c.name}: ${c.failure}`);
    }
    const inKv = await kvList({ prefix: "conformance:" });
    assert.deepEqual(inKv, [], "the KV run cleaned up after itself");
  });
});

describe("sessions on Durable Objects", () => {
  test("the demo runs its sessions on the objects, and the KV namespace holds none of them", async () => {
    const s = await stats();
    assert.equal(s.session_backend, "durable", "SESSION_BACKEND=durable reached the worker");
    const id = await login("durable-where@example.com");
    const res = await me(id);
    assert.equal(res.status, 200, res.text);
    assert.equal(res.json().email, "durable-where@example.com");
    const inKv = await kvList({ prefix: "session" });
    assert.deepEqual(inKv, [], "no session or index key in the KV namespace");
  });

  test("a login costs two writes and a read, a /me one read, each one subrequest", async () => {
    const before = await stats();
    const id = await login("durable-cost@example.com");
    const mid = await stats();
    const d = delta(before, mid);
    assert.equal(d("kv.KV.kv_writes"), 2, "index entry and session");
    assert.equal(d("kv.KV.kv_reads"), 1, "the index entry read back (a log out everywhere may have raced the login)");
    for (let i = 0; i < 5; i++) assert.equal((await me(id)).status, 200);
    const after = await stats();
    const r = delta(mid, after);
    assert.equal(r("kv.KV.kv_reads"), 5, "one read per /me");
    assert.equal(r("kv.KV.kv_writes"), 0, "no refresh is due in the first minutes");
  });

  test("logout ends the session at once; the cookie is dead on the next request", async () => {
    const id = await login("durable-logout@example.com");
    assert.equal((await me(id)).status, 200);
    const out = await post("/logout", id);
    assert.equal(out.status, 303, out.text);
    assert.equal((await me(id)).status, 401);
  });

  test("rotation: the old id is dead and the new one lives, at once", async () => {
    const id = await login("durable-rotate@example.com");
    const res = await post("/sessions/rotate", id);
    assert.equal(res.status, 200, res.text);
    const cookie = res.headers.get("set-cookie") ?? "";
    const fresh = /__Host-session=([0-9a-f]{64})/.exec(cookie)?.[1];
    assert.ok(fresh && fresh !== id, "a new id in the cookie");
    assert.equal((await me(id)).status, 401, "old id");
    assert.equal((await me(fresh)).status, 200, "new id");
  });

  test("log out everywhere ends every session of the user, created a moment ago or not", async () => {
    const email = "durable-everywhere@example.com";
    const ids = [];
    for (let i = 0; i < 4; i++) ids.push(await login(email));
    const other = await login("durable-bystander@example.com");
    const res = await post("/sessions/logout-all", ids[0]);
    assert.equal(res.status, 200, res.text);
    for (const id of ids) assert.equal((await me(id)).status, 401);
    assert.equal((await me(other)).status, 200, "another user's session is untouched");
  });
});
