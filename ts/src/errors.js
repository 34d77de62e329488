// @ts-check
/**
 * The one error type of the package. `code` names what a caller can act on; messages are built
 * from offsets, lengths, JSON pointers, schema keywords and type names, never from payload values.
 *
 * Codes and their Rust counterparts (`Error::kind()`):
 *
 * | code | Rust kind | meaning |
 * |---|---|---|
 * | `unknown_codec` | `unknown_codec` | first byte is none of `{`, the frame magic `0xC5`, the sealed magic `0xC6` |
 * | `malformed` | `envelope`, `codec` | the envelope or its JSON payload does not parse |
 * | `binary_codec` | — | a postcard frame of a readable type and version: this package reads JSON only |
 * | `wrong_type` | `type_mismatch` | the envelope holds another type |
 * | `unknown_version` | `unknown_version` | version 0, or one the schemas folder does not define |
 * | `future_version` | `future_version` | written by newer code; never overwritten |
 * | `invalid` | `validation` | the payload fails the schema of its version (`issues`) |
 * | `limit` | `limit` | a KV limit, refused before any KV call (`reason`) |
 * | `encode` | `encode` | the value cannot be written as JSON |
 * | `sealed_no_key_ring` | `sealed_no_key_ring` | a sealed value (`0xC6`) read without a key ring; never overwritten |
 * | `sealed_unknown_key` | `sealed_unknown_key` | sealed with a key id the ring does not hold (`keyId`); never overwritten |
 * | `sealed_unopenable` | `sealed_unopenable` | does not open: changed, moved to another key, or another key under that id; never overwritten |
 * | `not_sealed` | `not_sealed` | a clear value read with a ring that requires sealed values |
 *
 * Sealed frames are opened by src/seal.js; its errors name key ids (public labels), never key
 * material.
 *
 * `malformed` joins Rust's `envelope` and `codec` on purpose: which of the two Rust reports
 * depends on its fast-path parser, and both mean the same to a caller (corrupt, do not overwrite).
 *
 * @module
 */

/**
 * @typedef {"unknown_codec" | "malformed" | "binary_codec" | "wrong_type" | "unknown_version"
 *   | "future_version" | "invalid" | "limit" | "encode" | "sealed_no_key_ring" | "sealed_unknown_key"
 *   | "sealed_unopenable" | "not_sealed"} ErrorCode
 */

/**
 * @typedef {object} ValidationIssue
 * @property {string} instancePath JSON Pointer into the payload (`/email`)
 * @property {string} schemaPath JSON Pointer into the schema (`#/properties/email/format`)
 * @property {string} keyword the schema keyword that failed
 * @property {string} message Ajv's message, which names schema facts, never the value
 */

/** Most issues kept on one error (as the Rust reader). */
export const MAX_ISSUES = 16;

export class EnvelopeError extends Error {
  /**
   * @param {ErrorCode} code
   * @param {string} message
   * @param {{ type?: string, version?: number, known?: number, found?: string,
   *   issues?: ValidationIssue[], reason?: string, keyId?: string }} [details]
   */
  constructor(code, message, details = {}) {
    super(message);
    this.name = "EnvelopeError";
    /** @type {ErrorCode} */
    this.code = code;
    /** Type name the caller asked for, when known. */
    this.type = details.type;
    /** Version found in the envelope, when known. */
    this.version = details.version;
    /** Newest version the schemas define (for `future_version`). */
    this.known = details.known;
    /** Type name found in the envelope (for `wrong_type`), at most 64 characters. */
    this.found = details.found;
    /** Schema violations (for `invalid`), at most {@link MAX_ISSUES}. */
    this.issues = details.issues;
    /** Which limit (for `limit`): `key_empty`, `key_reserved`, `key_too_long`,
     * `value_too_large`, `metadata_too_large`, `already_expired`, `expiry_out_of_range`. */
    this.reason = details.reason;
    /** Key id from a sealed value's header (for the `sealed_*` codes). */
    this.keyId = details.keyId;
  }

  /**
   * True when the stored value must not be overwritten by a safe write: it is newer, or it
   * could not be read (a human should look at it), as Rust's `Error::protects_stored_value`.
   */
  get protectsStoredValue() {
    return this.code !== "limit" && this.code !== "encode";
  }
}
