// The generator: its committed output for schemas/ is current (as the Rust side drift-checks
// schemas/), and it fails loudly, naming the file, on what it cannot turn into validators.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { test } from "node:test";

import { REPO, TS_DIR } from "./helpers.js";

const BIN = path.join(TS_DIR, "bin", "kv-envelope-ts.js");

/** Run the CLI in a child process (this one forbids code generation, which Ajv's compiler needs). */
function cli(...args) {
  const r = spawnSync(process.execPath, [BIN, ...args], { cwd: TS_DIR, encoding: "utf8" });
  assert.equal(r.error, undefined);
  return r;
}

/** A schemas folder holding `files` (name → JSON value). */
function folder(files) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "kv-envelope-ts-"));
  for (const [name, value] of Object.entries(files)) fs.writeFileSync(path.join(dir, name), JSON.stringify(value));
  return dir;
}

const note = {
  $schema: "https://json-schema.org/draft/2020-12/schema",
  type: "object",
  properties: { text: { type: "string", maxLength: 10 } },
  required: ["text"],
  additionalProperties: false,
};

test("ts/generated is what schemas/ generates (regenerate: npm run generate --workspace ts)", () => {
  const r = cli("generate", "--schemas", path.join(REPO, "schemas"), "--out", path.join(TS_DIR, "generated"), "--check");
  assert.equal(r.status, 0, r.stderr);
});

test("every schema in schemas/ has a validator and types in ts/generated", () => {
  for (const f of fs.readdirSync(path.join(REPO, "schemas"))) {
    const stem = f.replace(/\.schema\.json$/, "");
    const js = fs.readFileSync(path.join(TS_DIR, "generated", `${stem}.js`), "utf8");
    assert.ok(fs.existsSync(path.join(TS_DIR, "generated", `${stem}.d.ts`)));
    // ES modules with imports only: nothing a Worker refuses.
    assert.doesNotMatch(js, /\brequire\(|\beval\(|new Function/);
    // Imports only of this package, never of ajv: a project has @kv-envelope/ts as a dependency,
    // ajv at best as a transitive one (none beside a linked package, or another major version).
    for (const [, spec] of js.matchAll(/^import [^"]* from "([^"]+)";$/gm)) {
      assert.match(spec, /^@kv-envelope\/ts\/runtime\/[a-z0-9_]+$/, `${stem}.js imports ${spec}`);
    }
  }
  // The folder loads as ES modules whatever the enclosing project's "type".
  assert.equal(JSON.parse(fs.readFileSync(path.join(TS_DIR, "generated", "package.json"), "utf8")).type, "module");
});

test("a schema Ajv strict refuses fails the generator, naming the file", () => {
  const dir = folder({
    "note.v1.schema.json": note,
    "note.v2.schema.json": { ...note, properties: { text: { type: "integer", format: "uint64" } } },
  });
  const r = cli("generate", "--schemas", dir, "--out", path.join(dir, "out"));
  assert.equal(r.status, 1);
  assert.match(r.stderr, /note\.v2\.schema\.json: refused by Ajv 2020 strict: unknown format "uint64"/);
  assert.equal(fs.existsSync(path.join(dir, "out")), false, "nothing is written on failure");
});

test("unknown file names, version gaps and unreadable JSON fail the generator", () => {
  for (const [files, message] of [
    [{ "note.schema.json": note }, /note\.schema\.json: not a kv-envelope schema file name/],
    [{ "note.v1.schema.json": note, "note.v3.schema.json": note }, /note\.v2\.schema\.json is missing/],
    [{ "note.envelope.schema.json": note }, /no note\.v<N>\.schema\.json beside it/],
  ]) {
    const dir = folder(files);
    const r = cli("generate", "--schemas", dir, "--out", path.join(dir, "out"));
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stderr, message);
  }
  const dir = folder({});
  fs.writeFileSync(path.join(dir, "note.v1.schema.json"), "{not json");
  assert.match(cli("generate", "--schemas", dir, "--out", path.join(dir, "out")).stderr, /note\.v1\.schema\.json: not readable JSON/);
  assert.equal(cli("generate", "--schemas", path.join(dir, "missing"), "--out", dir).status, 1);
  assert.equal(cli("frobnicate").status, 2);
});

test("a user's folder generates a registry that reads its own values", async () => {
  // Inside ts/ so the generated modules resolve @kv-envelope/ts/runtime/* (node_modules).
  const out = fs.mkdtempSync(path.join(TS_DIR, "test", ".gen-"));
  try {
    const dir = folder({ "note.v1.schema.json": note, "note.v2.schema.json": { ...note, required: [] } });
    const r = cli("generate", "--schemas", dir, "--out", out);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(cli("generate", "--schemas", dir, "--out", out, "--check").status, 0);
    fs.appendFileSync(path.join(out, "index.js"), "\n");
    assert.match(cli("generate", "--schemas", dir, "--out", out, "--check").stderr, /differing: index\.js/);
    const { registry } = await import(path.join(out, "index.js") + "?fresh");
    assert.equal(registry.types.note.current, 2);
    const { createEnvelopes } = await import("../src/index.js");
    const { readEnvelope, writeEnvelope } = createEnvelopes(registry);
    const text = writeEnvelope("note", { text: "hi" });
    assert.equal(text, '{"kv":1,"type":"note","v":2,"exp":null,"data":{"text":"hi"}}');
    assert.deepEqual(readEnvelope(text, "note"), { type: "note", version: 2, data: { text: "hi" }, expiresAt: null, codec: "json" });
    assert.throws(() => writeEnvelope("note", { text: "x".repeat(11) }), { code: "invalid" });
    // A stray file that is not ours stops the generator from writing into the folder.
    fs.writeFileSync(path.join(out, "mine.txt"), "user file");
    assert.match(cli("generate", "--schemas", dir, "--out", out).stderr, /mine\.txt: not generated by kv-envelope-ts/);
    fs.rmSync(path.join(out, "mine.txt"));
    assert.equal(cli("generate", "--schemas", dir, "--out", out).status, 0);
    // So does a package.json or a module of the same name that is not ours: never overwritten.
    for (const [name, text] of [["package.json", '{"name":"app"}\n'], ["index.js", "export {};\n"]]) {
      const before = fs.readFileSync(path.join(out, name), "utf8");
      fs.writeFileSync(path.join(out, name), text);
      const r = cli("generate", "--schemas", dir, "--out", out);
      assert.equal(r.status, 1);
      assert.match(r.stderr, new RegExp(`${name.replace(".", "\\.")}: not generated by kv-envelope-ts`));
      assert.equal(fs.readFileSync(path.join(out, name), "utf8"), text);
      fs.writeFileSync(path.join(out, name), before);
    }
    assert.equal(cli("generate", "--schemas", dir, "--out", out, "--check").status, 0);
  } finally {
    fs.rmSync(out, { recursive: true, force: true });
  }
});

test("validators needing ajv's run-time helpers (formats, deep equality) load and check", async () => {
  const out = fs.mkdtempSync(path.join(TS_DIR, "test", ".gen-"));
  try {
    const event = {
      $schema: "https://json-schema.org/draft/2020-12/schema",
      type: "object",
      properties: {
        at: { type: "string", format: "date-time" },
        link: { type: "string", format: "uri" },
        tags: { type: "array", items: { type: "object" }, uniqueItems: true },
        kind: { enum: [{ a: 1 }, "plain"] },
      },
      required: ["at"],
      additionalProperties: false,
    };
    const dir = folder({ "event.v1.schema.json": event });
    const r = cli("generate", "--schemas", dir, "--out", out);
    assert.equal(r.status, 0, r.stderr);
    const js = fs.readFileSync(path.join(out, "event.v1.js"), "utf8");
    for (const m of ["formats", "equal"]) assert.match(js, new RegExp(`from "@kv-envelope/ts/runtime/${m}"`));
    const { default: validate } = await import(path.join(out, "event.v1.js"));
    assert.equal(validate({ at: "2024-01-01T00:00:00Z", link: "https://x.example/a", tags: [{ a: 1 }, { a: 2 }], kind: { a: 1 } }), true);
    assert.equal(validate({ at: "2024-13-01T00:00:00Z" }), false);
    assert.equal(validate({ at: "2024-01-01T00:00:00Z", link: "not a uri" }), false);
    assert.equal(validate({ at: "2024-01-01T00:00:00Z", tags: [{ a: 1 }, { a: 1 }] }), false);
    assert.equal(validate({ at: "2024-01-01T00:00:00Z", kind: { a: 2 } }), false);
  } finally {
    fs.rmSync(out, { recursive: true, force: true });
  }
});
