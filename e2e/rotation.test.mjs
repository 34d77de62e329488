// Key rotation end to end, no user logged out (issue 15), following docs/sealing.md "Rotation,
// step by step": scripts/e2e-rotation.sh serves the demo with `wrangler dev` once per phase on ONE
// local KV, each time with another key ring in its secrets file (wrangler --env-file; wrangler
// reads secrets only at start), and runs this file once per phase with ROTATION_PHASE set; users'
// cookies and stored bytes pass between phases in ROTATION_STATE (a JSON file).
//   1. ring k1        users A, B, C log in: sessions, index entries and the cache entry sealed with k1
//   2. ring "k1,k2"   k2 added, not primary: everyone served, new writes still sealed with k1 (E)
//   3. ring "k2,k1"   k2 primary: k1 sessions still served and not rewritten by reads; a new login
//                     (D) is sealed with k2; re-seal: A lazily (a session rotation rewrites it),
//                     B and E in bulk with the ops CLI over a dump (`kv-envelope migrate
//                     --keys-file`, then one binary-safe `wrangler kv key put --local` per value);
//                     C is left out of the dump on purpose; `kv-envelope census` counts it on k1
//   4. ring k2        k1 retired: A, B, D, E still logged in, same sessions; C, still on k1, is
//                     "no session" (reason sealed_unknown_key), its cookie kept, its bytes untouched
//   5. ring "k2,k1"   the retired key restored: C is back, nothing was lost
// Around them: phase 0 a misconfigured ring (a key of the wrong length: a clear 500 naming the
// variable, never its value; /healthz still up) and phase 6 SEAL=off (the benchmarks' clear mode).
// Not in the main e2e run's file list (it needs its own worker restarts): scripts/e2e.sh runs it
// through scripts/e2e-rotation.sh.

import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";

import {
  COOKIE_NAME,
  assertSealed,
  http,
  indexKeysOf,
  kvGet,
  kvList,
  kvMeta,
  kvOpen,
  kvPut,
  login,
  sessionFromSetCookie,
  sessionKey,
  settled,
  stats,
  runTool,
  SECRETS_FILE,
  withSession,
} from "./lib/worker.mjs";

const PHASE = Number(process.env.ROTATION_PHASE);
const STATE_FILE = process.env.ROTATION_STATE;
if (!(PHASE >= 0 && PHASE <= 6) || !STATE_FILE) {
  throw new Error("ROTATION_PHASE / ROTATION_STATE not set: run through scripts/e2e-rotation.sh (scripts/e2e.sh runs it)");
}
const API = { accept: "application/json" };
const CACHE = { binding: "CACHE" };
const RINGS = { 0: ["k1 (bad)"], 1: ["k1"], 2: ["k1", "k2"], 3: ["k2", "k1"], 4: ["k2"], 5: ["k2", "k1"], 6: ["off"] };
/** Phase 0's SEAL_KEY_k1 (scripts/e2e-rotation.sh): valid base64 of 16 bytes, not 32. */
const BAD_KEY = "c2VjcmV0LW5vdC1hLWtleQ==";

const load = () => JSON.parse(readFileSync(STATE_FILE, "utf8"));
const save = (state) => writeFileSync(STATE_FILE, JSON.stringify(state, null, 2));

async function me(user, what) {
  const res = await http("/me", withSession(user.id, API));
  assert.equal(res.status, 200, `${what}: ${user.email} is still logged in: ${res.status} ${res.text}`);
  assert.equal(res.json().email, user.email);
  assert.equal(res.json().userId, user.userId, "the same user");
  assert.equal(res.json().createdAt, user.createdAt, "the same session, not a new login");
  return res;
}

/** The session's record and index entry are sealed with `keyId` and show no email or user id. */
async function assertStoredWith(user, keyId, what) {
  const key = sessionKey(user.id);
  const bytes = await kvGet(key);
  const secrets = [user.email, user.userId];
  assertSealed(bytes, await kvMeta(key), keyId, secrets, `${what}: session of ${user.email}`);
  const index = await indexKeysOf(user.id);
  assert.equal(index.length, 1, `${what}: one index entry`);
  const entry = await kvGet(index[0].name);
  assertSealed(entry, index[0].metadata, keyId, secrets, `${what}: index entry of ${user.email}`);
  return { session: bytes.toString("base64"), index: entry.toString("base64"), indexKey: index[0].name };
}

async function newUser(name) {
  const email = `rotation.${name.toLowerCase()}@example.com`;
  const id = await login(email);
  const body = (await http("/me", withSession(id, API))).json();
  return { email, id, userId: body.userId, createdAt: body.createdAt };
}

/** Run the ops CLI; asserts exit status 0, returns stdout. */
async function cli(args) {
  const bin = process.env.KV_ENVELOPE_BIN;
  assert.ok(bin, "KV_ENVELOPE_BIN is not set: run through scripts/e2e.sh");
  const res = await runTool(bin, ["--no-progress", ...args], { what: `kv-envelope ${args[0]}` });
  const out = res.stdout.toString("utf8");
  assert.equal(res.code, 0, `kv-envelope ${args.join(" ")} exited ${res.code}\n${out}\n${res.stderr}`);
  return out;
}

const scratch = mkdtempSync(join(tmpdir(), "kv-rotation-"));
after(() => rmSync(scratch, { recursive: true, force: true }));

/** The /popular entry in CACHE (generation 0: the demo invalidates by key). */
async function cacheEntry() {
  await settled();
  const key = "cache:popular:g0:top";
  const bytes = await kvGet(key, CACHE);
  assert.ok(bytes, "the /popular entry is in CACHE");
  return { bytes, metadata: await kvMeta(key, CACHE) };
}

async function popular(expected) {
  const res = await http("/popular");
  assert.equal(res.status, 200, res.text);
  assert.equal(res.headers.get("x-cache"), expected, `/popular: x-cache ${expected}`);
  return res.json();
}

describe(`key rotation, phase ${PHASE}: ring ${RINGS[PHASE].join(",")}`, () => {
  if (PHASE === 0) {
    test("a key of the wrong length: every session or cache route is a 500 naming the variable, never its value", async () => {
      assert.equal((await http("/healthz")).status, 200, "the worker itself is up");
      for (const [path, init] of [
        ["/me", withSession("0".repeat(64), API)],
        ["/login", { method: "POST", headers: { "content-type": "application/json" }, body: '{"email":"x@example.com"}' }],
        ["/popular", {}],
      ]) {
        const res = await http(path, init);
        assert.equal(res.status, 500, `${path}: ${res.status} ${res.text}`);
        const body = res.json();
        assert.equal(body.error, "sealing_misconfigured", `${path}: error code`);
        assert.match(body.message, /SEAL_KEY_k1 is not base64 of 32 bytes \(it decodes to 16 bytes\)/, body.message);
        assert.ok(!res.text.includes(BAD_KEY) && !res.text.includes("secret-not-a-key"), `${path}: the value is not echoed`);
      }
      const s = (await stats()).sealing;
      assert.match(s.error, /SEAL_KEY_k1/);
      assert.ok(!JSON.stringify(s).includes(BAD_KEY), "/_stats does not echo it either");
      assert.deepEqual(await kvList({ prefix: "session" }), [], "nothing written");
    });
    return;
  }

  if (PHASE === 6) {
    test("SEAL=off: sessions (and the cache) in clear", async () => {
      assert.deepEqual((await stats()).sealing, { sessions: false, cache: false, key_ids: null });
      const id = await login("rotation.clear@example.com");
      assert.equal((await http("/me", withSession(id, API))).status, 200);
      const bytes = await kvGet(sessionKey(id));
      assert.equal(bytes[0], 0x7b, "a clear JSON envelope");
      assert.equal(JSON.parse(bytes.toString("utf8")).data.email, "rotation.clear@example.com");
      assert.equal((await kvMeta(sessionKey(id)))?.k, undefined, "no key id");
    });
    return;
  }

  test("the worker serves with the phase's key ring", async () => {
    const s = (await stats()).sealing;
    assert.equal(s.error, undefined, `key ring: ${s.error}`);
    assert.deepEqual(s, { sessions: true, cache: true, key_ids: RINGS[PHASE] });
  });

  if (PHASE === 1) {
    test("logins are sealed with k1: sessions, index entries, the cache entry", async () => {
      const state = { users: {} };
      for (const name of ["A", "B", "C"]) {
        const user = await newUser(name);
        user.k1 = await assertStoredWith(user, "k1", "phase 1");
        state.users[name] = user;
      }
      const first = await popular("miss");
      const entry = await cacheEntry();
      assert.equal(entry.bytes[0], 0xc6, "the cache entry is sealed");
      assert.equal(entry.metadata?.k, "k1");
      assert.equal(typeof entry.metadata?.cf, "number", "the cache's own metadata stays readable");
      assert.ok(!entry.bytes.toString("latin1").includes("sampledViews"), "no payload text in the entry");
      state.popular = first.computedAt;
      save(state);
    });
  }

  if (PHASE === 2) {
    test("k2 added, not primary: everyone is served, and writes are still sealed with k1", async () => {
      const state = load();
      for (const u of Object.values(state.users)) {
        await me(u, "phase 2");
        assert.equal((await kvGet(sessionKey(u.id))).toString("base64"), u.k1.session, "a read writes nothing back");
      }
      const user = await newUser("E");
      user.k1 = await assertStoredWith(user, "k1", "phase 2, new login");
      state.users.E = user;
      assert.equal((await popular("hit")).computedAt, state.popular, "the k1 cache entry is served");
      save(state);
    });
  }

  if (PHASE === 3) {
    test("k2 primary: every k1 session is still served, and not rewritten by reads", async () => {
      const { users } = load();
      for (const u of Object.values(users)) {
        await me(u, "phase 3");
        assert.equal((await kvGet(sessionKey(u.id))).toString("base64"), u.k1.session, "a read writes nothing back");
      }
      const hit = await popular("hit");
      assert.equal(hit.computedAt, load().popular, "the k1 cache entry is served");
    });

    test("a new login is sealed with k2", async () => {
      const state = load();
      const user = await newUser("D");
      await assertStoredWith(user, "k2", "phase 3, new login");
      state.users.D = user;
      save(state);
    });

    test("lazy re-seal: a session rotation rewrites A with k2 (new cookie, same session)", async () => {
      const state = load();
      const u = state.users.A;
      const res = await http("/sessions/rotate", { method: "POST", ...withSession(u.id, API) });
      assert.equal(res.status, 200, `rotate ${u.email}: ${res.text}`);
      const fresh = sessionFromSetCookie(res);
      assert.match(fresh ?? "", /^[0-9a-f]{64}$/, "the rotation sets the new cookie");
      assert.equal(await kvGet(sessionKey(u.id)), null, "the old k1 value is gone");
      u.id = fresh;
      await me(u, "after the re-seal");
      await assertStoredWith(u, "k2", "phase 3, re-sealed A");
      // Cache entries re-seal when recomputed.
      assert.equal((await http("/popular/invalidate", { method: "POST" })).status, 200);
      const miss = await popular("miss");
      const entry = await cacheEntry();
      assert.equal(entry.metadata?.k, "k2", "the recomputed cache entry is sealed with k2");
      state.popular = miss.computedAt;
      save(state);
    });

    test("bulk re-seal with the ops CLI: dump, kv-envelope migrate --keys-file, put back (C left out)", async () => {
      const state = load();
      const { B, C, E } = state.users;
      const listing = [...(await kvList({ prefix: "session:" })), ...(await kvList({ prefix: "session-user:" }))];
      // C's session and index entry stand for values the dump missed: they stay on k1.
      const cKeys = new Set([sessionKey(C.id), C.k1.indexKey]);
      const dump = [];
      for (const k of listing.filter((x) => !cKeys.has(x.name))) {
        const value = await kvGet(k.name);
        assert.ok(value, `${k.name} readable`);
        dump.push({
          key: k.name,
          value: value.toString("base64"),
          base64: true,
          ...(k.expiration ? { expiration: k.expiration } : {}),
          ...(k.metadata ? { metadata: k.metadata } : {}),
        });
      }
      const f = (name) => join(scratch, name);
      writeFileSync(f("dump.json"), JSON.stringify(dump));
      writeFileSync(f("fresh.json"), JSON.stringify(listing));
      // The ring from the worker's own secrets file, never from the command line.
      const keys = ["--keys-file", SECRETS_FILE, "--keys-prefix", "SEAL"];
      const report = JSON.parse(
        await cli(["migrate", f("dump.json"), ...keys, "--recheck", f("fresh.json"), "--json", "-o", f("resealed.json")]),
      );
      assert.deepEqual(report.key_ring, { primary: "k2", key_ids: ["k2", "k1"] });
      const s = report.summary;
      assert.equal(s.resealed, 4, `B and E, session and index entry each: ${JSON.stringify(s)}`);
      assert.equal(s.written, 4);
      assert.equal(s.written_sealed, 4);
      assert.deepEqual(s.unknown_key, []);
      assert.deepEqual(s.invalid, []);
      const resealed = JSON.parse(readFileSync(f("resealed.json"), "utf8"));
      const expected = [B, E].flatMap((u) => [sessionKey(u.id), u.k1.indexKey]).sort();
      assert.deepEqual(resealed.map((e) => e.key).sort(), expected, "exactly B's and E's values");
      // `wrangler kv bulk put --local` is not binary safe (scripts/worker-kv.sh): one put per value,
      // keeping the metadata (k becomes k2) and the exact expiration the CLI wrote.
      for (const e of resealed) {
        assert.equal(e.base64, true, `${e.key}: sealed values are binary`);
        assert.equal(e.metadata.k, "k2");
        await kvPut(e.key, Buffer.from(e.value, "base64"), { metadata: JSON.stringify(e.metadata), expiration: e.expiration });
      }
      for (const name of ["B", "E"]) {
        const u = state.users[name];
        await me(u, `after the bulk re-seal (${name}, same cookie)`);
        await assertStoredWith(u, "k2", `phase 3, bulk re-sealed ${name}`);
        const listed = (await kvList({ prefix: sessionKey(u.id) }))[0];
        const before = dump.find((d) => d.key === sessionKey(u.id));
        assert.equal(listed.expiration, before.expiration, "KV expiration kept");
      }
      save(state);
    });

    test("census before retiring k1: only C's values are left on it (KV metadata, no key needed)", async () => {
      const { users } = load();
      const listing = [...(await kvList({ prefix: "session:" })), ...(await kvList({ prefix: "session-user:" }))];
      const f = join(scratch, "keys.json");
      writeFileSync(f, JSON.stringify(listing));
      const census = JSON.parse(await cli(["census", "--json", f]));
      assert.deepEqual(census.key_ids, { k1: 2, k2: 8 }, `C's session and index entry on k1; A, B, D, E on k2: ${JSON.stringify(census.key_ids)}`);
      assert.deepEqual(
        listing.filter((k) => k.metadata?.k === "k1").map((k) => k.name).sort(),
        [sessionKey(users.C.id), users.C.k1.indexKey].sort(),
      );
    });
  }

  if (PHASE === 4) {
    test("k1 retired: re-sealed users and the new login are still logged in", async () => {
      const { users, popular: computedAt } = load();
      for (const name of ["A", "B", "D", "E"]) await me(users[name], "phase 4");
      assert.equal((await popular("hit")).computedAt, computedAt, "the k2 cache entry is served");
    });

    test("a session still sealed with the retired key: no session (sealed_unknown_key), cookie kept, bytes untouched", async () => {
      const { users } = load();
      const c = users.C;
      const before = await stats();
      const api = await http("/me", withSession(c.id, API));
      assert.equal(api.status, 401, api.text);
      assert.equal(api.json().error, "unauthenticated");
      assert.ok(
        !api.setCookies.some((x) => x.startsWith(`${COOKIE_NAME}=;`)),
        `the cookie is kept (the session comes back with its key): ${api.setCookies}`,
      );
      const page = await http("/me", withSession(c.id));
      assert.equal(page.status, 302, "a page request goes to /login");
      const after = await stats();
      assert.equal(
        (after.session_rejections.sealed_unknown_key ?? 0) - (before.session_rejections.sealed_unknown_key ?? 0),
        2,
        `reason sealed_unknown_key: ${JSON.stringify(after.session_rejections)}`,
      );
      assert.equal(after.kv.KV.kv_writes - before.kv.KV.kv_writes, 0, "nothing written");
      assert.equal(after.kv.KV.kv_deletes - before.kv.KV.kv_deletes, 0, "nothing deleted");
      assert.equal((await kvGet(sessionKey(c.id))).toString("base64"), c.k1.session, "the session's bytes are untouched");
      assert.equal((await kvGet(c.k1.indexKey)).toString("base64"), c.k1.index, "its index entry too");
      assert.equal((await kvMeta(sessionKey(c.id)))?.k, "k1");
      // What the store cannot open it must not overwrite: a login with that cookie deletes it
      // (the login replaces whatever session the browser carries), so none is tried here.
    });
  }

  if (PHASE === 5) {
    test("the retired key restored: the k1 session is back, nothing was lost", async () => {
      const { users } = load();
      for (const u of Object.values(users)) await me(u, "phase 5");
      const c = await kvOpen(sessionKey(users.C.id), await kvGet(sessionKey(users.C.id)));
      assert.equal(c.key_id, "k1");
      assert.equal(c.data.email, users.C.email);
    });
  }
});
