// interop/cases.json holds stored values with the verdict the Rust side's validator (the
// jsonschema crate) gives under one schema of schemas/; the generated Ajv validators must give the
// same verdict on the value as JSON.parse reads it — the second validator of the differential.
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { test } from "node:test";

import { registry } from "../generated/index.js";
import { REPO } from "./helpers.js";

const cases = JSON.parse(fs.readFileSync(path.join(REPO, "interop", "cases.json"), "utf8"));

/** The generated validator of a schema file name. */
function validatorOf(file) {
  if (file === "envelope.schema.json") return registry.envelope;
  if (file === "metadata.schema.json") return registry.metadata;
  const whole = /^(.+)\.envelope\.schema\.json$/.exec(file);
  if (whole) return registry.wholeValue[whole[1]];
  const payload = /^(.+)\.v([0-9]+)\.schema\.json$/.exec(file);
  if (payload) return registry.types[payload[1]]?.versions[payload[2]];
  return undefined;
}

test("interop/cases.json has cases for the whole-value, envelope and metadata schemas", () => {
  assert.ok(cases.length >= 80, `only ${cases.length} cases`);
  for (const s of ["session.envelope.schema.json", "envelope.schema.json", "metadata.schema.json"]) {
    assert.ok(cases.some((c) => c.schema === s), `no case for ${s}`);
  }
});

/** True when the text has an integer literal beyond 2^53, which JSON.parse rounds. */
function hasUnsafeInteger(text) {
  return (text.match(/-?[0-9]{16,}/g) ?? []).some((n) => BigInt(n) > BigInt(Number.MAX_SAFE_INTEGER) || BigInt(n) < -BigInt(Number.MAX_SAFE_INTEGER));
}

test("the precision-limited refusals are the ones past a u64 bound (exactly two today)", () => {
  const limited = cases.filter((c) => !c.valid && (c.exact_integers || hasUnsafeInteger(c.text ?? fs.readFileSync(path.join(REPO, c.file), "utf8"))));
  assert.deepEqual(limited.map((c) => c.text ? "inline" : c.file).sort(), ["inline", "tests/corpus/envelope/exp-overflow.json"]);
});

for (const [i, c] of cases.entries()) {
  test(`schema verdict ${i}: ${c.schema} ${c.valid ? "accepts" : "refuses"} ${c.what.slice(0, 80)}`, () => {
    const validate = validatorOf(c.schema);
    assert.ok(validate, `no generated validator for ${c.schema}`);
    const text = c.text ?? fs.readFileSync(path.join(REPO, c.file), "utf8");
    const verdict = validate(JSON.parse(text));
    if (!c.valid && (c.exact_integers || hasUnsafeInteger(text))) {
      // The documented precision limit: above 2^53, JSON.parse rounds (2^64 and u64::MAX are
      // the same double), so a JavaScript validator cannot refuse one past a u64 bound.
      assert.equal(verdict, true, "the precision limit no longer applies: update the docs");
    } else {
      assert.equal(verdict, c.valid, JSON.stringify(validate.errors?.slice(0, 3)));
    }
  });
}
