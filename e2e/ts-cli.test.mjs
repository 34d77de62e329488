// The TypeScript package against the Rust reader and writer themselves, through the crate's ops
// CLI (`kv-envelope inspect` decodes, validates and migrates exactly as a worker reads;
// `kv-envelope encode` writes as the crate writes). No worker needed: KV_ENVELOPE_BIN is built by
// scripts/e2e.sh (cargo build -p kv-envelope-cli).
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";

import { EnvelopeError, createEnvelopes, encodeEnvelope, toMetadata } from "@kv-envelope/ts";
import { registry } from "@kv-envelope/ts/generated";

const CLI = process.env.KV_ENVELOPE_BIN;
if (!CLI) throw new Error("KV_ENVELOPE_BIN is not set: run through scripts/e2e.sh (it builds the CLI)");
const REPO_ROOT = process.env.REPO_ROOT;
if (!REPO_ROOT) throw new Error("REPO_ROOT is not set: run through scripts/e2e.sh");

const { readEnvelope, writeEnvelope } = createEnvelopes(registry);
const scratch = mkdtempSync(join(tmpdir(), "kv-e2e-ts-cli-"));
process.on("exit", () => rmSync(scratch, { recursive: true, force: true }));
let n = 0;
const DAY = 86_400_000;
const FAR = 4_000_000_000_000;

/** Run the CLI on `input` (written to a file); `{ code, stdout, stderr }`. */
function cli(args, input) {
  n += 1;
  const file = join(scratch, `in-${n}`);
  if (input !== undefined) writeFileSync(file, input);
  return new Promise((resolve, reject) => {
    const child = spawn(CLI, [...args, ...(input !== undefined ? [file] : [])], { stdio: ["ignore", "pipe", "pipe"] });
    const out = [];
    const err = [];
    child.stdout.on("data", (c) => out.push(c));
    child.stderr.on("data", (c) => err.push(c));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stdout: Buffer.concat(out).toString("utf8"), stderr: Buffer.concat(err).toString("utf8") }));
  });
}

async function inspect(bytes) {
  const r = await cli(["inspect", "--json"], bytes);
  assert.ok(r.stdout.trim().startsWith("{"), `inspect printed no report: ${r.stderr}`);
  return { code: r.code, report: JSON.parse(r.stdout) };
}

const golden = (v) => JSON.parse(readFileSync(join(REPO_ROOT, `tests/golden/session/v${v}.json`), "utf8")).data;

describe("the Rust reader reads what the TypeScript writer wrote", () => {
  const values = {
    session: golden(3),
    "session-index": { createdAt: 1764000000000, absoluteExpiresAt: 1766592000000 },
    "kv-envelope.cache-generation": { generation: 7 },
  };
  for (const [type, data] of Object.entries(values)) {
    test(`${type}: writeEnvelope → kv-envelope inspect: valid, same payload`, async () => {
      const { code, report } = await inspect(writeEnvelope(type, data, { expiresAt: FAR }));
      assert.equal(code, 0, JSON.stringify(report));
      assert.equal(report.status, "valid");
      // In clear: no key id (the CLI reports key_id / key_status for sealed values).
      assert.deepEqual(report.header, { codec: "json", expired: false, expires: report.header.expires, expires_at: FAR, type, version: registry.types[type].current, key_id: null, key_status: null });
      assert.deepEqual(report.value, data);
    });
  }

  test("a v1 envelope from the TS package is migrated by the Rust reader", async () => {
    const v1 = golden(1);
    const { code, report } = await inspect(encodeEnvelope("session", 1, null, v1));
    assert.equal(code, 0, JSON.stringify(report));
    assert.equal(report.header.version, 1);
    assert.deepEqual(report.value, { ...v1, absoluteExpiresAt: v1.createdAt + 30 * DAY, refreshedAt: v1.createdAt, roles: [] });
  });

  test("a future-version envelope from the TS package is future_version to the Rust reader", async () => {
    const { code, report } = await inspect(encodeEnvelope("session", 4, FAR, { ...golden(3), newField: 1 }));
    assert.equal(code, 3);
    assert.equal(report.status, "future_version");
  });
});

describe("the TypeScript reader reads what the Rust writer wrote", () => {
  for (const v of [1, 2, 3]) {
    test(`kv-envelope encode --version ${v} → readEnvelope at v${v}; same metadata line`, async () => {
      const out = join(scratch, `enc-${v}.json`);
      const r = await cli(["encode", "--type", "session", "--version", String(v), "--expires-at", String(FAR), "-o", out], JSON.stringify(golden(v)));
      assert.equal(r.code, 0, r.stderr);
      const bytes = readFileSync(out);
      const read = readEnvelope(bytes, "session", { now: Date.now() });
      assert.equal(read.version, v);
      assert.deepEqual(read.data, golden(v));
      assert.deepEqual(JSON.parse(r.stdout), toMetadata({ codec: "json", type: "session", version: v, expiresAt: FAR }));
      assert.ok(registry.wholeValue.session(JSON.parse(bytes.toString("utf8"))));
    });
  }

  test("kv-envelope encode --codec postcard → recognised and refused with its header", async () => {
    const out = join(scratch, "enc.bin");
    const r = await cli(["encode", "--type", "session", "--codec", "postcard", "-o", out], JSON.stringify(golden(3)));
    assert.equal(r.code, 0, r.stderr);
    assert.throws(
      () => readEnvelope(readFileSync(out), "session"),
      (e) => e instanceof EnvelopeError && e.code === "binary_codec" && e.version === 3,
    );
    assert.equal(JSON.parse(r.stdout).c, "postcard");
  });

  test("both writers produce the same bytes for the same payload and header", async () => {
    const out = join(scratch, "enc-same.json");
    const r = await cli(["encode", "--type", "session", "--expires-at", String(FAR), "-o", out], JSON.stringify(golden(3)));
    assert.equal(r.code, 0, r.stderr);
    assert.equal(readFileSync(out, "utf8"), writeEnvelope("session", golden(3), { expiresAt: FAR }));
  });
});
