#!/usr/bin/env node
// @ts-check
// kv-envelope-ts generate --schemas DIR --out DIR [--check]
// One command from a schemas folder to precompiled validators and TypeScript types.
import { parseArgs } from "node:util";

import { GenerateError, generate } from "../src/generate.js";

const usage = "usage: kv-envelope-ts generate --schemas DIR --out DIR [--check]";

async function main() {
  const { positionals, values } = parseArgs({
    allowPositionals: true,
    options: {
      schemas: { type: "string" },
      out: { type: "string" },
      check: { type: "boolean", default: false },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  if (values.help) {
    console.log(usage);
    return 0;
  }
  if (positionals[0] !== "generate" || positionals.length !== 1 || !values.schemas || !values.out) {
    console.error(usage);
    return 2;
  }
  const files = await generate({ schemas: values.schemas, out: values.out, check: values.check });
  if (values.check) {
    if (files.length > 0) {
      console.error(
        `kv-envelope-ts: ${values.out} is not what ${values.schemas} generates; differing: ${files.join(", ")}\n` +
          `regenerate with: kv-envelope-ts generate --schemas ${values.schemas} --out ${values.out}`,
      );
      return 1;
    }
    console.log(`kv-envelope-ts: ${values.out} is current`);
    return 0;
  }
  console.log(`kv-envelope-ts: wrote ${files.length} files to ${values.out}`);
  return 0;
}

main().then(
  (code) => process.exit(code),
  (e) => {
    if (e instanceof GenerateError) {
      console.error(`kv-envelope-ts: ${e.message}`);
      process.exit(1);
    }
    throw e;
  },
);
