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
 *
 * // Sealed values (0xC6, AES-256-GCM): the ring from SEAL_KEYS / SEAL_KEY_<id>, as the Rust side.
 * const keyRing = await keyRingFromEnv(env, "SEAL");
 * const sealed = await getValue(env.KV, key, "session", { keyRing }); // sealed or clear
 * ```
 *
 * @module
 */

import { readEnvelope } from "./envelope.js";
import { getValue, putValue, writeEnvelope } from "./kv.js";
import { openEnvelope, sealEnvelope } from "./seal.js";

export { EnvelopeError, MAX_ISSUES } from "./errors.js";
export {
  AUTH_TAG_LEN,
  FRAME_MAGIC,
  JSON_FORMAT,
  MAX_KEY_ID_LEN,
  NONCE_LEN,
  SEALED_MAGIC,
  encodeEnvelope,
  frameHeader,
  parseMetadata,
  peekHeader,
  readEnvelope,
  sealedFrame,
  toMetadata,
  validKeyId,
} from "./envelope.js";
export { KEY_LEN, KeyRing, KeyRingError, keyRingFromEnv, openEnvelope, openSealed, sealEnvelope, sealFrame, sealedHeader } from "./seal.js";
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
  encodePayload,
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
    /** @type {(ring: import("./seal.js").KeyRing | null | undefined, input: Uint8Array | ArrayBuffer | string, type: string, kvKey: string, options?: { now?: number }) => ReturnType<typeof openEnvelope>} */
    openEnvelope: (ring, input, type, kvKey, options) => openEnvelope(registry, ring, input, type, kvKey, options),
    /** @type {(ring: import("./seal.js").KeyRing, kvKey: string, type: string, data: unknown, options?: { expiresAt?: number | null }) => Promise<Uint8Array>} */
    sealEnvelope: (ring, kvKey, type, data, options) => sealEnvelope(registry, ring, kvKey, type, data, options),
  };
}
