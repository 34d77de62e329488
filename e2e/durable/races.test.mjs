// A due refresh racing a logout or a rotation, on Durable Objects under wrangler dev: the race of
// e2e/sessions-hardening.test.mjs, which on KV needs planted day-old sessions, here with real
// sessions. scripts/e2e.sh serves the demo for this file with SESSION_BACKEND=durable,
// SESSION_IDLE_TIMEOUT_SECS=10 (a refresh falls due 1.5 s after login: less than 6/7 of the
// idle window left, the last write over a second old) and SESSION_WRITE_DELAY_MS=200 (every
// session write is held back 200 ms before it reaches the objects). The refresh runs in
// waitUntil right after /me's response: it reads, then its conditional write waits 200 ms; the
// logout or rotation goes out 0-3 ms after that response arrives, so its deletes land while the
// refresh is between its read and its write, on every trial. On the objects the write is
// refused (the logout race), or the rotation's conditional delete of the old session meets the
// refresh's write and is retried (the rotation race): the killed id must answer 401 at once and
// ever after, and /_stats counts the refused conditional operations (kv.KV.kv_conditional_refused:
// at least one per due refresh). Without the delay the straddle was rare and the harness passed
// with the conditional write disabled too (mutation run, 2026-12-02); with it, the refused count
// is what a build without the conditional write fails. tests/sim_races.rs forces the same
// interleavings step by step on the object code.

import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { delta, http, login, sessionFromSetCookie, sleep, stats, withSession } from "../lib/worker.mjs";

const JSON_ACCEPT = { accept: "application/json" };
const TRIALS = 12; // two races: 24 logins, under the demo's 30 per 10 s

describe("a due refresh racing logout or rotation, on Durable Objects", () => {
  test("the demo runs with sessions on the objects and a 10 s idle timeout", async () => {
    assert.equal((await stats()).session_backend, "durable");
    const id = await login("race-setup@example.com");
    const me = (await http("/me", withSession(id, JSON_ACCEPT))).json();
    assert.equal(me.expiresAt - me.createdAt, 10_000, "SESSION_IDLE_TIMEOUT_SECS=10 reached the store");
  });

  for (const race of ["logout", "rotation"]) {
    test(`${race}: the killed id is dead at once and stays dead (${TRIALS} trials)`, async () => {
      await sleep(10_000); // the login rate limit's window
      const ids = [];
      for (let i = 0; i < TRIALS; i++) ids.push(await login(`race.${race}.${i}@example.com`));
      await sleep(1_600); // every refresh is due now
      const before = await stats();
      let refreshed = 0;
      let immediate = 0;
      const rotatedTo = [];
      for (const [i, id] of ids.entries()) {
        const meRes = await http("/me", withSession(id, JSON_ACCEPT));
        assert.equal(meRes.status, 200, `${race} ${i}: /me ${meRes.status}`);
        if (meRes.setCookies.length > 0) refreshed += 1;
        await sleep(i % 4);
        const killRes =
          race === "logout"
            ? await http("/logout", { method: "POST", ...withSession(id) })
            : await http("/sessions/rotate", { method: "POST", ...withSession(id) });
        assert.ok([303, 200].includes(killRes.status), `${race} ${i}: ${killRes.status} ${killRes.text}`);
        if (race === "rotation") rotatedTo.push(sessionFromSetCookie(killRes));
        // At once: no window at all on the objects.
        if ((await http("/me", withSession(id, JSON_ACCEPT))).status === 401) immediate += 1;
      }
      await sleep(1_500); // every waitUntil refresh (its write held back 200 ms) has finished
      const refused = delta(before, await stats())("kv.KV.kv_conditional_refused");
      let resurrected = 0;
      for (const id of ids) {
        if ((await http("/me", withSession(id, JSON_ACCEPT))).status !== 401) resurrected += 1;
      }
      for (const id of rotatedTo) {
        assert.equal((await http("/me", withSession(id, JSON_ACCEPT))).status, 200, "the rotated-to id works");
      }
      console.log(
        `# durable race ${race}: ${TRIALS} trials, ${refreshed} refreshes due, ${refused} conditional operations refused, ${immediate} dead at once, ${resurrected} resurrected`,
      );
      assert.ok(refreshed > 0, "some trials really raced a due refresh");
      assert.ok(
        refused >= refreshed,
        `${refused} conditional writes or deletes refused for ${refreshed} straddled refreshes: the objects' compare-and-set did not decide them`,
      );
      assert.equal(immediate, TRIALS, "every killed id answered 401 on the next request");
      assert.equal(resurrected, 0, `${resurrected} of ${TRIALS} killed ids came back`);
    });
  }
});
