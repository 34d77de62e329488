// The JSDoc-typed sources, the declarations (hand-written and generated) and a typed usage
// example compile with tsc: TypeScript callers get what src/index.d.ts promises.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { test } from "node:test";

import { TS_DIR } from "./helpers.js";

function tsc(project) {
  const require = createRequire(import.meta.url);
  const pkg = require.resolve("typescript/package.json");
  const bin = path.join(path.dirname(pkg), require("typescript/package.json").bin.tsc);
  assert.ok(fs.existsSync(bin), `tsc not found at ${bin}: npm ci installs it`);
  const r = spawnSync(process.execPath, [bin, "-p", project], { encoding: "utf8" });
  assert.equal(r.status, 0, `${r.stdout}${r.stderr}`);
}

test("tsc -p ts type-checks sources, declarations and test/types-usage.ts", () => {
  tsc(path.join(TS_DIR, "tsconfig.json"));
});

test("tsc -p examples/ts-worker type-checks the TypeScript worker against the package", () => {
  tsc(path.join(TS_DIR, "..", "examples", "ts-worker", "tsconfig.json"));
});
