#!/usr/bin/env node
// @ts-check
// kv-envelope-ts generate --schemas DIR --out DIR [--check]
// One command from a schemas folder to precompiled validators and TypeScript types.
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

const PACKAGE_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");

/** @type {typeof import("../src/generate.js") | undefined} */
let generator;

/** The generator, or exit 1 naming the fix when its dependencies are not installed. */
async function loadGenerator() {
  try {
    return await import("../src/generate.js");
  } catch (e) {
    if (/** @type {{ code?: string }} */ (e).code !== "ERR_MODULE_NOT_FOUND") throw e;
    // npm links a folder (`npm i <checkout>/ts`) without installing its dependencies: they are
    // resolved from the folder's real path, that is from the checkout.
    console.error(
      `kv-envelope-ts: ${/** @type {Error} */ (e).message}\n` +
        `@kv-envelope/ts in ${PACKAGE_DIR} has no dependencies installed. For a linked checkout run ` +
        `\`npm ci --workspace ts --omit=dev\` at the checkout's root, or install with ` +
        "`npm i --install-links <checkout>/ts` (see ts/README.md, Install).",
    );
    process.exit(1);
  }
}

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
  generator = await loadGenerator();
  const files = await generator.generate({ schemas: values.schemas, out: values.out, check: values.check });
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
    if (generator && e instanceof generator.GenerateError) {
      console.error(`kv-envelope-ts: ${e.message}`);
      process.exit(1);
    }
    throw e;
  },
);
