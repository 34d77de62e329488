// The ops CLI (`kv-envelope`, docs/cli.md) end to end against the demo worker's local KV, the
// round trip of issue 7: real sessions (POST /login) are overwritten with OLDER versions of the
// same user (v1 and v2, JSON codec), sealed with the demo's ring (which refuses clear sessions),
// built by `kv-envelope encode` and planted with `wrangler kv key put --local`; `census` sees the
// old versions from the key listing alone; a dump made as docs/cli.md "Making a dump" says goes
// through `migrate --codec json` with the ring, and back into KV; `census` then sees only the
// current version (`--fail-on-old` exits 0), and the worker serves every session, the same user,
// from the migrated values.
//
// Only the keys this file planted are dumped and counted exactly: the worker's KV is shared by all
// e2e files of a run, and other files leave sessions (some deliberately corrupt) behind.

import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";

import {
  REPO_ROOT,
  SEALED_MAGIC,
  SECRETS_FILE,
  http,
  kvBulkPut,
  kvGet,
  kvList,
  kvOpen,
  login,
  runTool,
  sessionKey,
  withSession,
} from "./lib/worker.mjs";

function required(name) {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: run the e2e tests through scripts/e2e.sh`);
  return value;
}

const CLI = required("KV_ENVELOPE_BIN");
const DAY = 86400 * 1000;
const TTL = 86400;
const JSON_ACCEPT = { accept: "application/json" };
/** The demo's key ring, as the CLI reads it from a `.dev.vars` file. */
const KEYS = ["--keys-file", SECRETS_FILE, "--keys-prefix", "SEAL"];

const dir = mkdtempSync(join(tmpdir(), "kv-cli-roundtrip-"));
after(() => rmSync(dir, { recursive: true, force: true }));
const file = (name) => join(dir, name);

/** Run the CLI; asserts the exit status, returns { stdout (text), stderr }. */
async function cli(args, expectCode = 0) {
  const res = await runTool(CLI, ["--no-progress", ...args], { what: `kv-envelope ${args[0]}` });
  const out = res.stdout.toString("utf8");
  assert.equal(res.code, expectCode, `kv-envelope ${args.join(" ")} exited ${res.code}\n${out}\n${res.stderr}`);
  return { stdout: out, stderr: res.stderr };
}

/** `census --json` of a key listing: versions of the `session` group (and the whole report). */
async function census(listing, name) {
  writeFileSync(file(name), JSON.stringify(listing));
  const report = JSON.parse((await cli(["census", "--json", file(name)])).stdout);
  const sessions = report.groups.filter((g) => g.type === "session");
  assert.equal(sessions.length, 1, `one session group: ${JSON.stringify(report.groups)}`);
  return { report, session: sessions[0] };
}

const users = [
  { email: "roundtrip.one@example.com", version: 1 },
  { email: "roundtrip.two@example.com", version: 2 },
  { email: "roundtrip.three@example.com", version: 1 },
];
let plantedListing = [];
const mine = (listing) => {
  const keys = new Set(users.map((u) => u.key));
  return listing.filter((k) => keys.has(k.name));
};

describe("ops CLI round trip against the worker's local KV", () => {
  test("log in, and replace each session with an older version of the same user (kv-envelope encode)", async () => {
    for (const u of users) {
      u.id = await login(u.email);
      u.key = sessionKey(u.id);
      const res = await http("/me", withSession(u.id, JSON_ACCEPT));
      assert.equal(res.status, 200, `GET /me after login: ${res.text}`);
      u.me = res.json();
      assert.equal(u.me.email, u.email);
      const stored = await kvGet(u.key);
      assert.ok(stored, `the login stored ${u.key}`);

      const { userId, email, createdAt, expiresAt, absoluteExpiresAt } = u.me;
      const payload = u.version === 1 ? { userId, email, createdAt, expiresAt } : { userId, email, createdAt, expiresAt, absoluteExpiresAt };
      writeFileSync(file(`payload-${u.id}.json`), JSON.stringify(payload));
      const out = file(`old-${u.id}.json`);
      // Sealed for its key with the demo's ring, as the demo would have written it (its ring
      // refuses sessions stored in clear).
      const meta = (
        await cli([
          "encode", "--type", "session", "--version", String(u.version), "--ttl", String(TTL),
          ...KEYS, "--key", u.key, "-o", out, file(`payload-${u.id}.json`),
        ])
      ).stdout.trim();
      const metadata = JSON.parse(meta);
      assert.equal(metadata.t, "session");
      assert.equal(metadata.v, u.version);
      assert.equal(metadata.c, "json");
      u.oldBytes = readFileSync(out);
      assert.equal(u.oldBytes[0], SEALED_MAGIC, "encode sealed it");
      assert.equal((await kvOpen(u.key, u.oldBytes)).version, u.version, "encode wrote the old version");

      const put = await runTool(
        join(REPO_ROOT, "scripts/worker-kv.sh"),
        ["put", u.key, "--path", out, "--metadata", meta, "--ttl", String(TTL)],
        { what: `worker-kv.sh put ${u.key}` },
      );
      assert.equal(put.code, 0, `worker-kv.sh put: ${put.stderr}`);
      assert.deepEqual(await kvGet(u.key), u.oldBytes, "the old-version value is in KV");
    }
  });

  test("census of the key listing shows the old versions", async () => {
    const listing = await kvList({ prefix: "session:" });
    const planted = mine(listing);
    assert.equal(planted.length, users.length, "every planted key is listed");
    for (const k of planted) {
      const u = users.find((x) => x.key === k.name);
      assert.equal(k.metadata?.v, u.version, `${k.name}: listed metadata`);
      assert.ok(k.expiration > Date.now() / 1000, `${k.name}: has a KV expiration`);
    }
    const { session } = await census(planted, "keys-before.json");
    assert.deepEqual(session.tally.versions, { 1: 2, 2: 1 }, "v1: 2, v2: 1");
    assert.deepEqual(session.tally.codecs, { json: 3 });
    assert.equal(session.tally.needs_migration, 3);
    assert.equal(session.current_version, 3);
    // The whole listing (other files' sessions included) shows at least these.
    const all = await census(listing, "keys-all-before.json");
    assert.ok(all.session.tally.versions[1] >= 2 && all.session.tally.versions[2] >= 1, "full listing counts them too");
    await cli(["census", "--fail-on-old", file("keys-before.json")], 1);
    plantedListing = planted;
  });

  test("dump → migrate --codec json (with the ring) → bulk put", async () => {
    // docs/cli.md "Making a dump": the key listing plus one binary-safe get per key, as base64.
    const dump = [];
    for (const k of plantedListing) {
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
    writeFileSync(file("dump.json"), JSON.stringify(dump));

    const { stdout, stderr } = await cli(["migrate", file("dump.json"), "--codec", "json", ...KEYS, "-o", file("migrated.json")]);
    const report = stdout + stderr;
    assert.match(report, new RegExp(`to write\\s+${users.length} -> `), report);
    assert.match(report, /session v1 json sealed k1 -> v3 json sealed k1: 2/, report);
    assert.match(report, /session v2 json sealed k1 -> v3 json sealed k1: 1/, report);
    // The CLI says what the test works around below.
    assert.match(report, /`wrangler kv bulk put --local` corrupts binary values/, report);
    const migrated = JSON.parse(readFileSync(file("migrated.json"), "utf8"));
    assert.equal(migrated.length, users.length, "one entry per planted key");
    for (const e of migrated) {
      assert.ok(e.base64, `${e.key}: sealed, so binary: base64 in the file`);
      const opened = await kvOpen(e.key, Buffer.from(e.value, "base64"));
      assert.equal(opened.version, 3);
      assert.equal(opened.key_id, e.metadata.k, "resealed with the ring's primary key");
      assert.deepEqual(Object.keys(e.metadata).slice(0, 3), ["t", "v", "c"]);
      assert.equal(e.metadata.v, 3);
    }

    // The file is what `wrangler kv bulk put` takes (docs/cli.md); on Cloudflare it writes base64
    // values as bytes. Locally wrangler 4.86 turns "base64" values into UTF-8 text (a sealed
    // frame is no text), so this test writes the same entries through wrangler's local platform
    // proxy on the worker's state instead.
    await kvBulkPut(
      migrated.map((e) => ({ key: e.key, bytes: Buffer.from(e.value, "base64"), metadata: JSON.stringify(e.metadata) })),
    );

    for (const u of users) {
      const bytes = await kvGet(u.key);
      assert.equal(bytes[0], SEALED_MAGIC, `${u.key}: sealed in KV`);
      const stored = await kvOpen(u.key, bytes);
      assert.equal(stored.type, "session");
      assert.equal(stored.version, 3, `${u.key}: v3 in KV`);
      assert.equal(stored.data.userId, u.me.userId);
      assert.equal(stored.expires_at, (await kvOpen(u.key, u.oldBytes)).expires_at, "envelope expiry kept");
    }
  });

  test("census afterwards: only the current version, --fail-on-old passes", async () => {
    const planted = mine(await kvList({ prefix: "session:" }));
    assert.equal(planted.length, users.length, "every key is still listed");
    const { session } = await census(planted, "keys-after.json");
    assert.deepEqual(session.tally.versions, { 3: 3 }, "v3 only");
    assert.deepEqual(session.tally.codecs, { json: 3 });
    assert.equal(session.tally.needs_migration, 0);
    const ok = await cli(["census", "--fail-on-old", file("keys-after.json")]);
    assert.match(ok.stdout, /v3: 3/, ok.stdout);
  });

  test("the worker reads the migrated sessions: same user, no rewrite", async () => {
    for (const u of users) {
      const before = await kvGet(u.key);
      const res = await http("/me", withSession(u.id, JSON_ACCEPT));
      assert.equal(res.status, 200, `GET /me (${u.email}): ${res.status} ${res.text}`);
      const me = res.json();
      assert.equal(me.userId, u.me.userId);
      assert.equal(me.email, u.email);
      assert.equal(me.createdAt, u.me.createdAt);
      assert.equal(me.expiresAt, u.me.expiresAt);
      // What the migration steps filled in: v1 → v2 the 30-day cap, v2 → v3 refreshedAt and roles.
      assert.equal(me.absoluteExpiresAt, u.version === 1 ? u.me.createdAt + 30 * DAY : u.me.absoluteExpiresAt);
      assert.equal(me.refreshedAt, u.me.createdAt);
      assert.deepEqual(me.roles, []);
      assert.deepEqual(await kvGet(u.key), before, "a fresh v3 value is read as is, not rewritten");
    }
  });
});
