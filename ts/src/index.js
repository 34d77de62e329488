// @ts-check
/**
 * kv-envelope values from JavaScript/TypeScript: read and write the JSON envelopes the Rust crate
 * stores in Workers KV, validated by precompiled (Ajv standalone) validators generated from a
 * schemas folder by `kv-envelope-ts generate`.
 *
 * ```js
 * import { createEnvelopes } from "@kv-envelope/ts";
 * import { registry } from "@kv-envelope/ts/generated"; // or your own generated folder
 * const { getValue, putValue } = createEnvelopes(registry);
 * const session = await getValue(env.KV, key, "session"); // { version, data, expiresAt } | null
 * ```
 *
 * @module
 */

import { readEnvelope } from "./envelope.js";
import { getValue, putValue, writeEnvelope } from "./kv.js";

export { EnvelopeError, MAX_ISSUES } from "./errors.js";
export {
  FRAME_MAGIC,
  JSON_FORMAT,
  encodeEnvelope,
  frameHeader,
  parseMetadata,
  peekHeader,
  readEnvelope,
  toMetadata,
} from "./envelope.js";
export {
  EXPIRATION_SKEW_SECS,
  MAX_EXPIRES_AT_MS,
  MAX_KEY_BYTES,
  MAX_METADATA_BYTES,
  MAX_VALUE_BYTES,
  MIN_CACHE_TTL_SECS,
  MIN_EXPIRATION_SECS,
  checkKey,
  clampExpiration,
  getValue,
  putValue,
  writeEnvelope,
} from "./kv.js";

/**
 * The functions bound to one registry (the generated `index.js` of a schemas folder).
 * @param {import("./envelope.js").Registry} registry
 */
export function createEnvelopes(registry) {
  return {
    registry,
    /** @type {(input: Uint8Array | ArrayBuffer | string, type: string, options?: { now?: number }) => ReturnType<typeof readEnvelope>} */
    readEnvelope: (input, type, options) => readEnvelope(registry, input, type, options),
    /** @type {(type: string, data: unknown, options?: { expiresAt?: number | null }) => string} */
    writeEnvelope: (type, data, options) => writeEnvelope(registry, type, data, options),
    /** @type {(kv: import("./kv.js").KvNamespaceLike, key: string, type: string, options?: { now?: number, cacheTtl?: number }) => ReturnType<typeof getValue>} */
    getValue: (kv, key, type, options) => getValue(registry, kv, key, type, options),
    /** @type {(kv: import("./kv.js").KvNamespaceLike, key: string, type: string, data: unknown, options?: Parameters<typeof putValue>[5]) => Promise<string>} */
    putValue: (kv, key, type, data, options) => putValue(registry, kv, key, type, data, options),
  };
}
