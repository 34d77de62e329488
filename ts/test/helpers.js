// Shared by the tests: paths into the repository and the registry generated from its schemas.
import path from "node:path";
import { fileURLToPath } from "node:url";

export const TS_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
export const REPO = path.resolve(TS_DIR, "..");
export const CORPUS = path.join(REPO, "tests", "corpus");
export const GOLDEN = path.join(REPO, "tests", "golden");

/** A fixed clock: after the corpus' "expired" values (exp 1000), before its FAR (2096). */
export const NOW = 1_800_000_000_000;

/**
 * Run `f`, returning `{ ok: value }` or `{ error }` for an EnvelopeError; anything else thrown
 * (TypeError, RangeError, a JsonError that escaped) is re-thrown and fails the test.
 * @template T
 * @param {() => T} f
 */
export async function outcome(f) {
  const { EnvelopeError } = await import("../src/index.js");
  try {
    return { ok: await f() };
  } catch (e) {
    if (e instanceof EnvelopeError) return { error: e };
    throw e;
  }
}

/**
 * An in-memory stand-in for a Workers KV namespace that records every call.
 */
export class FakeKv {
  constructor() {
    /** @type {Map<string, { value: Uint8Array, options: any }>} */
    this.data = new Map();
    /** @type {string[]} */
    this.calls = [];
    /** @type {any[]} options of every read */
    this.getOptions = [];
  }
  /** @param {string} key @param {Uint8Array | string} value @param {any} [options] */
  seed(key, value, options = {}) {
    const bytes = typeof value === "string" ? new TextEncoder().encode(value) : value;
    this.data.set(key, { value: bytes, options });
  }
  /** @param {string} key @param {{ type: string }} options */
  async getWithMetadata(key, options) {
    this.calls.push(`get ${key}`);
    this.getOptions.push(options);
    if (options.type !== "arrayBuffer") throw new Error("FakeKv serves arrayBuffer only");
    const e = this.data.get(key);
    if (!e) return { value: null, metadata: null };
    return { value: e.value.slice().buffer, metadata: e.options.metadata ?? null };
  }
  /** @param {string} key @param {string | Uint8Array} value @param {any} [options] */
  async put(key, value, options = {}) {
    this.calls.push(`put ${key}`);
    // The package writes envelope text, or the bytes of a sealed frame.
    if (typeof value !== "string" && !(value instanceof Uint8Array)) throw new Error("FakeKv: text or bytes");
    if (options.expiration !== undefined && !Number.isInteger(options.expiration)) {
      throw new Error("KV expiration must be an integer number of seconds");
    }
    this.data.set(key, { value: typeof value === "string" ? new TextEncoder().encode(value) : value.slice(), options });
  }
  /** @param {string} key */
  bytes(key) {
    return this.data.get(key)?.value;
  }
  /** @param {string} key */
  text(key) {
    const e = this.data.get(key);
    return e ? new TextDecoder().decode(e.value) : undefined;
  }
}
