// The JSDoc-typed sources, the declarations (hand-written and generated) and a typed usage
// example compile with tsc: TypeScript callers get what src/index.d.ts promises.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { test } from "node:test";

import { TS_DIR } from "./helpers.js";

test("tsc -p ts type-checks sources, declarations and test/types-usage.ts", () => {
  const require = createRequire(import.meta.url);
  const pkg = require.resolve("typescript/package.json");
  const bin = require("typescript/package.json").bin.tsc;
  const tsc = path.join(path.dirname(pkg), bin);
  assert.ok(fs.existsSync(tsc), `tsc not found at ${tsc}: npm ci installs it`);
  const r = spawnSync(process.execPath, [tsc, "-p", path.join(TS_DIR, "tsconfig.json")], { encoding: "utf8" });
  assert.equal(r.status, 0, `${r.stdout}${r.stderr}`);
});
