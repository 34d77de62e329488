// The committed schemas as another service's JavaScript sees them: every file in schemas/
// compiles under Ajv 2020 in its default (strict) mode with ajv-formats, and the stored values of
// interop/cases.json (written by the Rust code, the golden files, the hostile corpus) get the
// verdicts tests/schemas.rs asserts in Rust. Run by `make interop-schemas` (`node --test`).
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { test } from "node:test";

import Ajv2020 from "ajv/dist/2020.js";
import addFormats from "ajv-formats";

const root = new URL("../", import.meta.url);
const read = (path) => readFileSync(new URL(path, root), "utf8");

const schemaFiles = readdirSync(new URL("schemas/", root))
  .filter((name) => name.endsWith(".json"))
  .sort();

/// A fresh Ajv per schema, as a service loading one file would make it. Strict mode is Ajv's
/// default; the logger only collects what strict mode would print (`strictTypes` warnings), so a
/// warning fails the test too.
function compile(name) {
  const warnings = [];
  const logger = {
    log: () => {},
    warn: (...args) => warnings.push(args.join(" ")),
    error: (...args) => warnings.push(args.join(" ")),
  };
  const ajv = new Ajv2020({ logger });
  addFormats(ajv);
  const validate = ajv.compile(JSON.parse(read(`schemas/${name}`)));
  return { validate, warnings };
}

const cases = JSON.parse(read("interop/cases.json"));
const compiled = new Map();

test("every schema in schemas/ compiles under Ajv 2020 strict with ajv-formats", () => {
  assert.ok(schemaFiles.length >= 10, `only ${schemaFiles.length} schema files`);
  for (const name of schemaFiles) {
    const { validate, warnings } = compile(name);
    assert.deepEqual(warnings, [], `${name}: Ajv warnings`);
    compiled.set(name, validate);
  }
  console.log(`ajv: ${schemaFiles.length} schemas compiled in strict mode`);
});

test("stored values get the Rust verdicts under the whole-value schemas", () => {
  let checked = 0;
  let exactOnly = 0;
  const wrong = [];
  for (const c of cases) {
    // JavaScript numbers round integers past 2^53: 2^64 and u64::MAX are the same number here.
    if (c.exact_integers) {
      exactOnly += 1;
      continue;
    }
    const validate = compiled.get(c.schema) ?? compile(c.schema).validate;
    const text = c.text ?? read(c.file);
    const valid = validate(JSON.parse(text));
    if (valid !== c.valid) {
      wrong.push(`${c.what}: Ajv says ${valid}, Rust ${c.valid} ${JSON.stringify(validate.errors)}`);
    }
    checked += 1;
  }
  assert.deepEqual(wrong, []);
  const valid = cases.filter((c) => c.valid && !c.exact_integers).length;
  assert.ok(valid >= 10 && checked - valid >= 10, "too few cases either way");
  console.log(
    `ajv: ${checked} stored values checked (${valid} valid, ${checked - valid} refused);` +
      ` ${exactOnly} left to validators with exact integers`,
  );
});

test("the golden values are among the cases", () => {
  const golden = readdirSync(new URL("tests/golden/session/", root)).filter((f) =>
    /^v\d+\.json$/.test(f),
  );
  for (const f of golden) {
    assert.ok(
      cases.some((c) => c.file === `tests/golden/session/${f}` && c.valid),
      `tests/golden/session/${f} is not checked`,
    );
  }
});
