// The per-user session cap and "log out everywhere" on workerd (issue 26, review 2 item 6), on
// KV and on Durable Objects: scripts/e2e.sh runs this file twice, on a demo with its sessions in
// KV and on one with them in the objects, both with CONFORMANCE=on for the e2e-only
// `POST /_conformance/sessions`, which creates a user's sessions through the store past the
// login limits (and past the cap: sessions written before it existed). Nothing is planted from
// outside: sealed frames cannot go through `wrangler kv bulk put`, and the objects have no
// outside door at all.
//
// What is measured (the KV operations each call made, from /_stats) is written in RELIABILITY.md.

import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { delta, http, login, newSessionId, sessionBackend, stats, withSession, COOKIE_NAME } from "./lib/worker.mjs";

const JSON_ACCEPT = { accept: "application/json" };
const CAP = 32; // the library's default (SessionStore::with_max_sessions_per_user)

/** `count` sessions of `email` created through the store; their ids, oldest first. */
async function plant(email, count, capped = false) {
  const ids = [];
  for (let left = count; left > 0; left -= 100) {
    const res = await http("/_conformance/sessions", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ email, count: Math.min(left, 100), capped }),
    });
    assert.equal(res.status, 200, `plant: ${res.status} ${res.text}`);
    ids.push(...res.json().ids);
  }
  return ids;
}

async function alive(ids) {
  const out = [];
  for (const id of ids) out.push((await http("/me", withSession(id, JSON_ACCEPT))).status === 200);
  return out;
}

async function logoutEverywhere(id) {
  const before = await stats();
  const res = await http("/sessions/logout-all", { method: "POST", ...withSession(id) });
  assert.equal(res.status, 200, res.text);
  const d = delta(before, await stats());
  const ops = {
    reads: d("kv.KV.kv_reads"),
    lists: d("kv.KV.kv_lists"),
    deletes: d("kv.KV.kv_deletes"),
    writes: d("kv.KV.kv_writes"),
  };
  const cleared = res.setCookies.some((c) => c.startsWith(`${COOKIE_NAME}=; Max-Age=0`));
  return { ...res.json(), cleared, ops };
}

describe("the session cap and log out everywhere", () => {
  test(`a login past the cap (${CAP}) revokes the oldest; one call then revokes every session`, async () => {
    const backend = await sessionBackend();
    const email = `capped.${newSessionId().slice(0, 8)}@example.com`;
    const planted = await plant(email, CAP + 3);
    const before = await stats();
    const mine = await login(email);
    const loginOps = delta(before, await stats());
    const live = await alive(planted);
    assert.deepEqual(
      live.map((l, i) => (l ? i : -1)).filter((i) => i >= 0),
      [...Array(CAP + 3).keys()].slice(4),
      `${backend}: the 4 oldest went at the login (at most 4 per login)`,
    );
    assert.equal(live.filter(Boolean).length + 1, CAP, `${backend}: exactly the cap is left`);
    console.log(
      `# ${backend}: login over the cap: reads ${loginOps("kv.KV.kv_reads")}, lists ${loginOps("kv.KV.kv_lists")}, ` +
        `writes ${loginOps("kv.KV.kv_writes")}, deletes ${loginOps("kv.KV.kv_deletes")}`,
    );
    assert.equal(loginOps("kv.KV.kv_deletes"), 8, "4 sessions revoked: entry and session each");

    const out = await logoutEverywhere(mine);
    console.log(`# ${backend}: logout everywhere of ${CAP} sessions: ${JSON.stringify(out.ops)}`);
    assert.equal(out.complete, true, JSON.stringify(out));
    assert.equal(out.deleted, CAP);
    assert.ok(out.cleared, "the caller's cookie is cleared at the end");
    assert.deepEqual(await alive([...planted, mine]), Array(CAP + 4).fill(false), `${backend}: every session is dead at once`);
    assert.equal(out.ops.deletes, 2 * CAP, "two deletes per session");
  });

  test("450 sessions from before the cap: repeated calls revoke them all, the caller's last", async () => {
    const backend = await sessionBackend();
    const email = `many.${newSessionId().slice(0, 8)}@example.com`;
    const planted = await plant(email, 450);
    const mine = await login(email); // revokes the 4 oldest on its way in
    const first = await logoutEverywhere(mine);
    console.log(`# ${backend}: logout everywhere, call 1 of 451: ${JSON.stringify(first)}`);
    assert.deepEqual([first.deleted, first.complete, first.cleared], [400, false, false], JSON.stringify(first));
    assert.equal((await http("/me", withSession(mine, JSON_ACCEPT))).status, 200, "the caller keeps its session");
    assert.ok(first.ops.deletes <= 800 && first.ops.reads + first.ops.lists + first.ops.deletes < 1000, "within one invocation's 1000 operations");
    const second = await logoutEverywhere(mine);
    console.log(`# ${backend}: logout everywhere, call 2: ${JSON.stringify(second)}`);
    assert.deepEqual([second.deleted, second.complete, second.cleared], [450 - 4 - 400 + 1, true, true], JSON.stringify(second));
    const still = (await alive([...planted, mine])).filter(Boolean).length;
    assert.equal(still, 0, `${backend}: ${still} sessions still alive`);
  });

  test("an anonymous logout carrying made-up ids costs a read each and at most one delete", async () => {
    const backend = await sessionBackend();
    const cookie = Array.from({ length: 8 }, () => `${COOKIE_NAME}=${newSessionId()}`).join("; ");
    const before = await stats();
    const res = await http("/logout", { method: "POST", headers: { cookie } });
    assert.equal(res.status, 303, res.text);
    const d = delta(before, await stats());
    assert.equal(d("kv.KV.kv_reads"), 8, "one read per carried id");
    // KV's reads may be stale (a session created elsewhere in the last minute): the first id's
    // key is deleted anyway; on the objects a miss is the truth.
    assert.equal(d("kv.KV.kv_deletes"), backend === "durable" ? 0 : 1, backend);
    assert.equal(d("kv.KV.kv_writes"), 0);
  });
});
