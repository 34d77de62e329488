// The Durable Objects' alarm on workerd: an expired session is deleted from its object's
// storage, not only hidden by the lazy expiry check of every read. scripts/e2e.sh serves the
// demo for this file (beside e2e/durable/races.test.mjs) with SESSION_BACKEND=durable and
// SESSION_IDLE_TIMEOUT_SECS=10. A session's record carries KV's expiration, which `Kv` clamps to
// at least 60 s ahead, and the object sets its alarm for it: the record must leave the storage
// about a minute after login, with no request touching it.
//
// The storage is read where workerd keeps it under `wrangler dev --persist-to`: one SQLite file
// per object under v3/do/<script>-SessionObject/, table _cf_KV (key, value), read-only through
// Python's sqlite3 (the test fails if python3 is missing).

import assert from "node:assert/strict";
import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";

import { http, login, runTool, sessionKey, sleep, stats, withSession } from "../lib/worker.mjs";

const PERSIST = process.env.WRANGLER_PERSIST_DIR;
const JSON_ACCEPT = { accept: "application/json" };

/** Every SQLite file of the SessionObject class's objects. */
function objectFiles() {
  const root = join(PERSIST, "v3", "do");
  if (!existsSync(root)) return [];
  return readdirSync(root)
    .filter((d) => d.endsWith("-SessionObject"))
    .flatMap((d) =>
      readdirSync(join(root, d))
        .filter((f) => f.endsWith(".sqlite"))
        .map((f) => join(root, d, f)),
    );
}

const COUNT = `
import sqlite3, sys
key, paths = sys.argv[1], sys.argv[2:]
found = 0
for path in paths:
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        tables = {r[0] for r in con.execute("select name from sqlite_master where type='table'")}
        if "_cf_KV" in tables:
            found += con.execute("select count(*) from _cf_KV where key = ?", (key,)).fetchone()[0]
    finally:
        con.close()
print(found)
`;

/** How many objects' storage holds `key` (expired or not: the storage itself, not a read). */
async function storedIn(key) {
  const files = objectFiles();
  assert.ok(files.length > 0, `no SessionObject storage under ${PERSIST}/v3/do`);
  const { code, stdout, stderr } = await runTool("python3", ["-c", COUNT, key, ...files], { what: "python3 sqlite3" });
  assert.equal(code, 0, `python3 sqlite3: ${stderr}`);
  return Number(stdout.toString("utf8").trim());
}

describe("the objects' alarm deletes expired sessions on workerd", () => {
  test("a session's record leaves its object's storage about a minute after login", { timeout: 150_000 }, async () => {
    assert.ok(PERSIST, "WRANGLER_PERSIST_DIR is set by scripts/with-worker.sh");
    assert.equal((await stats()).session_backend, "durable");
    const loggedInAt = Date.now();
    const id = await login("alarm@example.com");
    const key = sessionKey(id);
    assert.equal((await http("/me", withSession(id, JSON_ACCEPT))).status, 200);
    // The storage is where this test looks: the record is there, in exactly one object.
    assert.equal(await storedIn(key), 1, "the session's record is in its object's storage");
    // Expired for every read after 10 s (lazy), yet still stored: nothing but the alarm
    // deletes it, and the alarm is set for KV's expiration, 60 s after login.
    await sleep(12_000);
    assert.equal(await storedIn(key), 1, "an expired record stays until the alarm");
    let goneAfter = null;
    while (Date.now() - loggedInAt < 120_000) {
      await sleep(3_000);
      if ((await storedIn(key)) === 0) {
        goneAfter = Date.now() - loggedInAt;
        break;
      }
    }
    assert.ok(goneAfter !== null, "the alarm never deleted the expired record (waited 120 s)");
    assert.ok(goneAfter >= 59_000, `deleted after ${goneAfter} ms: before KV's expiration, not by the alarm`);
    console.log(`# the record left the storage ${goneAfter} ms after login`);
    assert.equal((await http("/me", withSession(id, JSON_ACCEPT))).status, 401);
  });
});
