// @ts-check
/**
 * Workers KV I/O with the Rust backend's rules (`src/backend/mod.rs`): keys and sizes checked
 * before any call, the exact expiry kept in the envelope while KV's `expiration` is raised to its
 * 60-second floor plus the same skew margin, the metadata copy on every write, and the write
 * guard of `TypedStore::put` (never replace a future-version or unreadable value).
 *
 * @module
 */

import { encodeEnvelope, readEnvelope, toMetadata, validatePayload, byteLength } from "./envelope.js";
import { EnvelopeError } from "./errors.js";
import { openEnvelope, sealEnvelope } from "./seal.js";

/** Longest key KV accepts, in bytes. */
export const MAX_KEY_BYTES = 512;
/** Largest value KV accepts, in bytes (25 MiB). */
export const MAX_VALUE_BYTES = 25 * 1024 * 1024;
/** Largest serialized metadata KV accepts, in bytes. */
export const MAX_METADATA_BYTES = 1024;
/** KV rejects expirations less than 60 s in the future. */
export const MIN_EXPIRATION_SECS = 60;
/** Margin added to the floor so clock skew between us and KV never turns into a 400. */
export const EXPIRATION_SKEW_SECS = 5;
/** Latest expiry (ms) written into an envelope or handed to KV: JavaScript's largest exact
 * integer (main's `MAX_EXPIRES_AT_MS`, issue 12); beyond it no JavaScript reader is exact. */
export const MAX_EXPIRES_AT_MS = Number.MAX_SAFE_INTEGER;
/** Smallest `cacheTtl` used on reads (the Rust backend raises to 60 s, KV's older floor). */
export const MIN_CACHE_TTL_SECS = 60;

/**
 * @param {string} reason
 * @param {string} message
 */
const limit = (reason, message) => new EnvelopeError("limit", `kv limit exceeded: ${message}`, { reason });

/**
 * Check a key against KV's rules (Rust's `check_key`); throws `limit`.
 * @param {string} key
 */
export function checkKey(key) {
  if (typeof key !== "string" || key.length === 0) throw limit("key_empty", "empty key");
  if (key === "." || key === "..") throw limit("key_reserved", "key `.` and `..` are reserved");
  const len = byteLength(key);
  if (len > MAX_KEY_BYTES) throw limit("key_too_long", `key is ${len} bytes, at most ${MAX_KEY_BYTES}`);
}

/**
 * KV's `expiration` (seconds) for an envelope expiring at `expiresAt` ms: raised to now + 60 s
 * + skew (Rust's `clamp_expiration`). The envelope keeps the exact time and readers enforce it,
 * so a value KV keeps a little longer is still never served late.
 * @param {number} expiresAt
 * @param {number} now
 */
export function clampExpiration(expiresAt, now) {
  if (expiresAt <= now) throw limit("already_expired", "expiry is not in the future");
  if (expiresAt > MAX_EXPIRES_AT_MS) throw limit("expiry_out_of_range", `expiry is past ${MAX_EXPIRES_AT_MS} ms`);
  const wanted = Math.ceil(expiresAt / 1000);
  const floor = Math.ceil(now / 1000) + MIN_EXPIRATION_SECS + EXPIRATION_SKEW_SECS;
  return Math.max(wanted, floor);
}

/**
 * @typedef {object} KvNamespaceLike The part of Workers' `KVNamespace` used here.
 * @property {(key: string, options: { type: "arrayBuffer", cacheTtl?: number }) => Promise<{ value: ArrayBuffer | null,
 *   metadata: unknown }>} getWithMetadata
 * @property {(key: string, value: string | Uint8Array, options?: { expiration?: number,
 *   metadata?: unknown }) => Promise<void>} put
 */

/**
 * Read `key` as a value of `type`. Missing or expired: `null`. `cacheTtl` (seconds, raised to
 * {@link MIN_CACHE_TTL_SECS}) lets the edge cache the read; off by default, because a cached read
 * can serve a value for that long after it was replaced or deleted. With `keyRing`, sealed values
 * are opened (and clear ones still read, unless the ring requires sealing); the result then also
 * has `keyId` (`null` in clear) and `seal` (`clear`, `primary`, `older_key`). Without it a sealed
 * value is `sealed_no_key_ring`.
 * @param {import("./envelope.js").Registry} registry
 * @param {KvNamespaceLike} kv
 * @param {string} key
 * @param {string} type
 * @param {{ now?: number, cacheTtl?: number, keyRing?: import("./seal.js").KeyRing | null }} [options]
 */
export async function getValue(registry, kv, key, type, options = {}) {
  checkKey(key);
  /** @type {{ type: "arrayBuffer", cacheTtl?: number }} */
  const getOptions = { type: "arrayBuffer" };
  if (options.cacheTtl !== undefined) getOptions.cacheTtl = Math.max(MIN_CACHE_TTL_SECS, Math.ceil(options.cacheTtl));
  const { value } = await kv.getWithMetadata(key, getOptions);
  if (value === null) return null;
  if (options.keyRing) return openEnvelope(registry, options.keyRing, value, type, key, options);
  return readEnvelope(registry, value, type, options);
}

/**
 * Write `data` as the current version of `type`. Refuses (with the reader's error) to replace a
 * stored value that is future-version or sealed and not openable by this writer (`sealed_*`:
 * never, whatever `overwrite` says: a rotation mistake must lose nothing), or, unless
 * `overwrite: "allowCorrupt"`, one that cannot be read (which includes postcard frames: this
 * package cannot tell a good one from a corrupt one). With `keyRing`, the value is sealed with its
 * primary key for this KV key (the metadata gets `k`), and the bytes are returned; without, the
 * envelope text. KV has no compare-and-swap: the guard narrows the race, as in Rust, it cannot
 * close it.
 * @param {import("./envelope.js").Registry} registry
 * @param {KvNamespaceLike} kv
 * @param {string} key
 * @param {string} type
 * @param {unknown} data
 * @param {{ expiresAt?: number | null, now?: number, overwrite?: "safe" | "allowCorrupt",
 *   keyRing?: import("./seal.js").KeyRing | null }} [options]
 * @returns {Promise<string | Uint8Array>} the envelope written
 */
export async function putValue(registry, kv, key, type, data, options = {}) {
  const now = options.now ?? Date.now();
  const expiresAt = options.expiresAt ?? null;
  const ring = options.keyRing ?? null;
  checkKey(key);
  const value = ring ? await sealEnvelope(registry, ring, key, type, data, { expiresAt }) : writeEnvelope(registry, type, data, { expiresAt });
  const entry = registry.types[type];
  /** @type {import("./envelope.js").Header} */
  const header = { codec: "json", type, version: entry.current, expiresAt };
  if (ring) header.keyId = ring.primaryId;
  const metadata = toMetadata(header);
  const size = typeof value === "string" ? byteLength(value) : value.length;
  if (size > MAX_VALUE_BYTES) throw limit("value_too_large", `value is ${size} bytes, at most ${MAX_VALUE_BYTES}`);
  const metaSize = byteLength(JSON.stringify(metadata));
  if (metaSize > MAX_METADATA_BYTES) {
    throw limit("metadata_too_large", `metadata is ${metaSize} bytes, at most ${MAX_METADATA_BYTES}`);
  }
  const expiration = expiresAt === null ? undefined : clampExpiration(expiresAt, now);

  const stored = await kv.getWithMetadata(key, { type: "arrayBuffer" });
  if (stored.value !== null) {
    try {
      if (ring) await openEnvelope(registry, ring, stored.value, type, key, { now });
      else readEnvelope(registry, stored.value, type, { now });
    } catch (e) {
      if (!(e instanceof EnvelopeError)) throw e;
      if (e.code === "future_version" || e.code.startsWith("sealed_") || options.overwrite !== "allowCorrupt") throw e;
    }
  }
  /** @type {{ expiration?: number, metadata: unknown }} */
  const putOptions = { metadata };
  if (expiration !== undefined) putOptions.expiration = expiration;
  await kv.put(key, value, putOptions);
  return value;
}

/**
 * The payload of `data` as the current version of `type`: JSON text, validated against that
 * version's schema (what `writeEnvelope` puts in `data`, and `sealEnvelope` seals).
 * @param {import("./envelope.js").Registry} registry
 * @param {string} type
 * @param {unknown} data
 * @param {{ expiresAt?: number | null }} [options]
 * @returns {{ version: number, expiresAt: number | null, body: string }}
 */
export function encodePayload(registry, type, data, options = {}) {
  const entry = registry.types[type];
  if (!entry) throw new TypeError(`type ${JSON.stringify(type)} is not in the registry`);
  const expiresAt = options.expiresAt ?? null;
  if (expiresAt !== null && (!Number.isInteger(expiresAt) || expiresAt < 0)) {
    throw new TypeError("expiresAt must be a non-negative integer (ms since the epoch) or null");
  }
  if (expiresAt !== null && expiresAt > MAX_EXPIRES_AT_MS) {
    throw limit("expiry_out_of_range", `expiry is past ${MAX_EXPIRES_AT_MS} ms`);
  }
  let body;
  try {
    body = JSON.stringify(data);
  } catch (e) {
    throw new EnvelopeError("encode", `encoding ${type} failed: ${e instanceof Error ? e.name : "error"}`, { type });
  }
  if (body === undefined) throw new EnvelopeError("encode", `encoding ${type} failed: no JSON value`, { type });
  // Validate what is written (after toJSON, dropped undefined members...), not the input object.
  validatePayload(entry, type, entry.current, JSON.parse(body));
  return { version: entry.current, expiresAt, body };
}

/**
 * Encode `data` as the current version of `type`, after validating it against that version's
 * schema (a TypeScript caller has no struct to guarantee the shape, so the writer checks it:
 * nothing the Rust reader would refuse is written).
 * @param {import("./envelope.js").Registry} registry
 * @param {string} type
 * @param {unknown} data
 * @param {{ expiresAt?: number | null }} [options]
 */
export function writeEnvelope(registry, type, data, options = {}) {
  const { version, expiresAt } = encodePayload(registry, type, data, options);
  return encodeEnvelope(type, version, expiresAt, data);
}
