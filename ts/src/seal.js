// @ts-check
/**
 * Sealed values (`0xC6` frames, Rust's `src/seal.rs`) with WebCrypto (`crypto.subtle`: Workers,
 * Node >= 20, browsers, Deno): AES-256-GCM under a header that stays readable. The frame is
 * defined in docs/wire-format.md ("Sealed frame"): a value copied to another key, or a header
 * edited in place, does not open. A {@link KeyRing}
 * holds keys with ids (the first is the primary, which seals; any opens what names it), built
 * from the variables the Rust side reads: `<PREFIX>_KEYS` = `"k2,k1"` and `<PREFIX>_KEY_<id>` =
 * base64 of 32 bytes (`openssl rand -base64 32`).
 *
 * Key material never leaves the ring: keys are imported non-extractable and the decoded bytes
 * zeroed; errors, `JSON.stringify` and `util.inspect` show key ids and variable names only.
 *
 * @module
 */

import {
  AUTH_TAG_LEN,
  NONCE_LEN,
  SEALED_MAGIC,
  SEALED_FORMAT,
  TAG_JSON,
  TAG_POSTCARD,
  FRAME_MAGIC,
  checkHeader,
  decoded,
  frameHeader,
  peekHeader,
  readEnvelope,
  sealedFrame,
  validKeyId,
} from "./envelope.js";
import { EnvelopeError } from "./errors.js";
import { encodePayload } from "./kv.js";

/** @typedef {import("node:crypto").webcrypto.CryptoKey} CryptoKey WebCrypto's key (the same class in Workers). */

/** Length of a key: 32 bytes (AES-256). */
export const KEY_LEN = 32;

const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
const encoder = new TextEncoder();
const B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/**
 * @typedef {"invalid_id" | "missing" | "bad_base64" | "bad_length" | "duplicate_id" | "empty"}
 *   KeyRingErrorCode
 */

/** A key ring could not be built (Rust's `KeyError`). Names variables and key ids, never a key. */
export class KeyRingError extends Error {
  /**
   * @param {KeyRingErrorCode} code
   * @param {string} message
   * @param {{ sourceName?: string, id?: string, len?: number }} [details]
   */
  constructor(code, message, details = {}) {
    super(message);
    this.name = "KeyRingError";
    /** @type {KeyRingErrorCode} */
    this.code = code;
    /** Name of the variable or secret at fault. */
    this.sourceName = details.sourceName;
    /** The key id at fault (at most 40 characters). */
    this.id = details.id;
    /** Decoded length (for `bad_length`). */
    this.len = details.len;
  }
}

/** @param {string} id */
const invalidId = (id) => {
  const shown = [...id].slice(0, 40).join("");
  return new KeyRingError("invalid_id", `key id ${JSON.stringify(shown)} is not 1 to 32 of [A-Za-z0-9_]`, { id: shown });
};

/**
 * Standard base64 (padding optional, non-zero trailing bits refused), as the Rust ring decodes.
 * @param {string} text
 * @returns {Uint8Array | null}
 */
function decodeBase64(text) {
  let body = text;
  let pad = 0;
  while (body.endsWith("=")) {
    body = body.slice(0, -1);
    pad++;
  }
  const rem = body.length % 4;
  if (rem === 1 || pad > (rem === 0 ? 0 : 4 - rem)) return null;
  const out = new Uint8Array(Math.floor((body.length * 3) / 4));
  let acc = 0;
  let bits = 0;
  let o = 0;
  for (let i = 0; i < body.length; i++) {
    const v = B64.indexOf(body[i]);
    if (v < 0) return null;
    acc = (acc << 6) | v;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[o++] = (acc >> bits) & 0xff;
      acc &= (1 << bits) - 1;
    }
  }
  if (acc !== 0) return null;
  return out;
}

/** @type {WeakMap<KeyRing, { keys: Map<string, CryptoKey>, ids: string[] }>} */
const SECRETS = new WeakMap();

/**
 * The keys values are sealed and opened with: the first is the primary (writes seal with it), the
 * others open values sealed before a rotation. Build it with {@link keyRingFromEnv} or
 * {@link KeyRing.fromKeys}; it holds non-extractable `CryptoKey`s, out of reach of callers.
 */
export class KeyRing {
  /** @param {symbol} token @param {{ keys: Map<string, CryptoKey>, ids: string[] }} secrets @param {boolean} requireSealed */
  constructor(token, secrets, requireSealed) {
    if (token !== CONSTRUCT) throw new TypeError("use keyRingFromEnv or KeyRing.fromKeys");
    SECRETS.set(this, secrets);
    /** Whether clear values are refused (`not_sealed`). */
    this.requireSealed = requireSealed;
    Object.freeze(this);
  }

  /**
   * A ring of `keys`, the primary first: each a key id and the key as 32 bytes or base64 of them.
   * `sourceName` names where a key came from, for errors. Refuses an empty list, duplicate ids,
   * bad ids, bad base64 and wrong lengths.
   * @param {Array<{ id: string, key: Uint8Array | string, sourceName?: string }>} keys
   * @param {{ requireSealed?: boolean }} [options]
   */
  static async fromKeys(keys, options = {}) {
    if (keys.length === 0) throw new KeyRingError("empty", "the key ring holds no key (the list lists none)", { sourceName: "the list" });
    /** @type {Map<string, CryptoKey>} */
    const map = new Map();
    for (const { id, key, sourceName = `key ${id}` } of keys) {
      if (!validKeyId(id)) throw invalidId(String(id));
      if (map.has(id)) throw new KeyRingError("duplicate_id", `key id ${JSON.stringify(id)} appears twice in the key ring`, { id });
      let bytes;
      if (typeof key === "string") {
        bytes = decodeBase64(key.trim());
        if (bytes === null) {
          throw new KeyRingError("bad_base64", `${sourceName} is not base64 of ${KEY_LEN} bytes (not valid base64)`, { sourceName });
        }
      } else {
        bytes = Uint8Array.from(key);
      }
      if (bytes.length !== KEY_LEN) {
        const len = bytes.length;
        bytes.fill(0);
        throw new KeyRingError("bad_length", `${sourceName} is not base64 of ${KEY_LEN} bytes (it decodes to ${len} bytes)`, {
          sourceName,
          len,
        });
      }
      try {
        map.set(id, await crypto.subtle.importKey("raw", bytes, { name: "AES-GCM" }, false, ["encrypt", "decrypt"]));
      } finally {
        bytes.fill(0);
      }
    }
    // Clear values are refused by default, as by Rust's `KeyRing`: a store that seals trusts
    // nothing it did not seal. `{ requireSealed: false }` is the migration path from clear.
    return new KeyRing(CONSTRUCT, { keys: map, ids: [...map.keys()] }, options.requireSealed ?? true);
  }

  /** The id writes seal with. */
  get primaryId() {
    return secrets(this).ids[0];
  }

  /** Every id, the primary first. */
  get keyIds() {
    return [...secrets(this).ids];
  }

  /** Whether the ring holds a key with this id. @param {string} id */
  has(id) {
    return secrets(this).keys.has(id);
  }

  /**
   * The same keys, refusing clear values (`not_sealed`) when `on` (the default): `false` while
   * clear values written before sealing remain, `true` again once none is left, so a value
   * planted without the key is refused, not trusted.
   * @param {boolean} on
   */
  requiringSealed(on) {
    return new KeyRing(CONSTRUCT, secrets(this), on);
  }

  toJSON() {
    return { keyIds: this.keyIds, requireSealed: this.requireSealed };
  }

  toString() {
    return `KeyRing(${this.keyIds.join(",")})`;
  }

  [Symbol.for("nodejs.util.inspect.custom")]() {
    return `KeyRing { keyIds: ${JSON.stringify(this.keyIds)}, requireSealed: ${this.requireSealed} }`;
  }
}

const CONSTRUCT = Symbol("KeyRing");

/** @param {KeyRing} ring */
function secrets(ring) {
  const s = SECRETS.get(ring);
  if (!s) throw new TypeError("not a KeyRing");
  return s;
}

/**
 * The ring from named variables, as Rust's `KeyRing::from_env` / `from_lookup`: `<prefix>_KEYS`
 * lists the ids, primary first, separated by commas or spaces (`"k2,k1"`); each key is
 * `<prefix>_KEY_<id>`, base64 of 32 bytes. `env` is a Worker's env (vars and secrets alike),
 * `process.env`, or any object of strings. Every error names the variable, never its value.
 * @param {Record<string, unknown>} env
 * @param {string} prefix
 * @param {{ requireSealed?: boolean }} [options]
 * @returns {Promise<KeyRing>}
 */
export async function keyRingFromEnv(env, prefix, options = {}) {
  const lookup = (/** @type {string} */ name) => {
    const v = Object.hasOwn(env, name) ? env[name] : undefined;
    return typeof v === "string" ? v : undefined;
  };
  const idsName = `${prefix}_KEYS`;
  const ids = lookup(idsName);
  if (ids === undefined) throw new KeyRingError("missing", `${idsName} is not set`, { sourceName: idsName });
  const keys = [];
  for (const id of ids.split(/[, ]/).map((s) => s.trim()).filter((s) => s !== "")) {
    if (!validKeyId(id)) throw invalidId(id);
    const name = `${prefix}_KEY_${id}`;
    const value = lookup(name);
    if (value === undefined) throw new KeyRingError("missing", `${name} is not set`, { sourceName: name });
    keys.push({ id, key: value, sourceName: name });
  }
  if (keys.length === 0) {
    throw new KeyRingError("empty", `the key ring holds no key (${idsName} lists none)`, { sourceName: idsName });
  }
  return KeyRing.fromKeys(keys, options);
}

/**
 * @typedef {object} FrameFields The readable fields of a frame being sealed.
 * @property {"json" | "postcard"} codec codec of the plaintext
 * @property {string} type
 * @property {number} version
 * @property {number | null} expiresAt ms since the epoch; `null` never expires
 */

/**
 * The readable part of a sealed frame: preamble and postcard header (Rust's `sealed_header`).
 * @param {FrameFields} fields
 * @param {string} keyId
 */
export function sealedHeader(fields, keyId) {
  const { codec, type, version, expiresAt } = fields;
  if (codec !== "json" && codec !== "postcard") throw new TypeError('codec must be "json" or "postcard"');
  if (!Number.isInteger(version) || version < 0 || version > 0xffffffff) throw new TypeError("version must be a u32");
  if (expiresAt !== null && (!Number.isSafeInteger(expiresAt) || expiresAt < 0)) {
    throw new TypeError("expiresAt must be a non-negative safe integer (ms since the epoch) or null");
  }
  if (!validKeyId(keyId)) throw new TypeError("key id is not 1 to 32 of [A-Za-z0-9_]");
  /** @type {number[]} */
  const out = [SEALED_MAGIC, SEALED_FORMAT, codec === "json" ? TAG_JSON : TAG_POSTCARD];
  const varint = (/** @type {number} */ n) => {
    while (n >= 0x80) {
      out.push((n % 0x80) | 0x80);
      n = Math.floor(n / 0x80);
    }
    out.push(n);
  };
  const str = (/** @type {string} */ s) => {
    const b = encoder.encode(s);
    varint(b.length);
    out.push(...b);
  };
  str(type);
  varint(version);
  if (expiresAt === null) out.push(0);
  else {
    out.push(1);
    varint(expiresAt);
  }
  str(keyId);
  return Uint8Array.from(out);
}

/** The frame up to the nonce, then the KV key. @param {Uint8Array} headerBytes @param {string} kvKey */
function associatedData(headerBytes, kvKey) {
  const key = encoder.encode(kvKey);
  const aad = new Uint8Array(headerBytes.length + key.length);
  aad.set(headerBytes, 0);
  aad.set(key, headerBytes.length);
  return aad;
}

/**
 * Seal `plaintext` (the payload in `fields.codec`) for `kvKey` with the ring's primary key and a
 * fresh random nonce (`crypto.getRandomValues`). The frame exactly as Rust's `KeyRing::seal`.
 * @param {KeyRing} ring
 * @param {string} kvKey
 * @param {FrameFields} fields
 * @param {Uint8Array} plaintext
 * @returns {Promise<Uint8Array>}
 */
export function sealFrame(ring, kvKey, fields, plaintext) {
  return sealFrameWithNonce(ring, kvKey, fields, plaintext, crypto.getRandomValues(new Uint8Array(NONCE_LEN)));
}

/**
 * {@link sealFrame} with a given nonce: only for golden bytes (interop/sealed.json). Not exported
 * by the package (`@kv-envelope/ts` has no path to this module). Never reuse a nonce with a key.
 * @param {KeyRing} ring
 * @param {string} kvKey
 * @param {FrameFields} fields
 * @param {Uint8Array} plaintext
 * @param {Uint8Array} nonce
 * @returns {Promise<Uint8Array>}
 */
export async function sealFrameWithNonce(ring, kvKey, fields, plaintext, nonce) {
  if (!(nonce instanceof Uint8Array) || nonce.length !== NONCE_LEN) throw new TypeError(`the nonce is ${NONCE_LEN} bytes`);
  const s = secrets(ring);
  const keyId = s.ids[0];
  const header = sealedHeader(fields, keyId);
  const sealed = new Uint8Array(
    await crypto.subtle.encrypt(
      { name: "AES-GCM", iv: nonce, additionalData: associatedData(header, kvKey), tagLength: AUTH_TAG_LEN * 8 },
      /** @type {CryptoKey} */ (s.keys.get(keyId)),
      plaintext,
    ),
  );
  const out = new Uint8Array(header.length + NONCE_LEN + sealed.length);
  out.set(header, 0);
  out.set(nonce, header.length);
  out.set(sealed, header.length + NONCE_LEN);
  return out;
}

/** @param {Uint8Array | ArrayBuffer | string} input */
function toBytes(input) {
  if (typeof input === "string") return encoder.encode(input);
  return input instanceof Uint8Array ? input : new Uint8Array(input);
}

/**
 * Open a sealed frame read from `kvKey`, without the type, version and expiry checks of
 * {@link openEnvelope}: its header and the plaintext in `header.codec` (JSON text or postcard
 * bytes). Throws `malformed` / `unknown_codec` (not a frame), `not_sealed` (a clear value),
 * `sealed_unknown_key`, `sealed_unopenable`.
 * @param {KeyRing} ring
 * @param {Uint8Array | ArrayBuffer | string} input
 * @param {string} kvKey
 * @returns {Promise<{ header: import("./envelope.js").Header & { keyId: string }, plaintext: Uint8Array }>}
 */
export async function openSealed(ring, input, kvKey) {
  const bytes = toBytes(input);
  if (bytes[0] !== SEALED_MAGIC) {
    // What Rust's decoder says of it first; a readable clear value is `not_sealed` here.
    const header = bytes[0] === FRAME_MAGIC ? frameHeader(bytes) : peekHeader(bytes);
    throw new EnvelopeError("not_sealed", `${header.type} v${header.version} is in clear, not sealed`, {
      type: header.type,
      version: header.version,
    });
  }
  const frame = sealedFrame(bytes);
  return { header: frame.header, plaintext: await openFrame(ring, frame, kvKey) };
}

/**
 * @param {KeyRing | null | undefined} ring
 * @param {import("./envelope.js").SealedFrame} frame
 * @param {string} kvKey
 */
async function openFrame(ring, frame, kvKey) {
  const { type, version, keyId } = frame.header;
  const details = { type, version, keyId };
  if (!ring) {
    throw new EnvelopeError("sealed_no_key_ring", `${type}: value is sealed and this reader has no key ring`, details);
  }
  const key = secrets(ring).keys.get(keyId);
  if (!key) {
    throw new EnvelopeError(
      "sealed_unknown_key",
      `${type}: value is sealed with key id ${JSON.stringify(keyId)}, which the key ring does not hold`,
      details,
    );
  }
  try {
    return new Uint8Array(
      await crypto.subtle.decrypt(
        { name: "AES-GCM", iv: frame.nonce, additionalData: associatedData(frame.headerBytes, kvKey), tagLength: AUTH_TAG_LEN * 8 },
        key,
        frame.ciphertext,
      ),
    );
  } catch (e) {
    if (e instanceof Error && e.name === "OperationError") {
      throw new EnvelopeError(
        "sealed_unopenable",
        `${type}: sealed value with key id ${JSON.stringify(keyId)} does not open (changed, moved, or another key under that id)`,
        details,
      );
    }
    throw e;
  }
}

/**
 * @typedef {"clear" | "primary" | "older_key"} StoredSeal How a value was stored, as seen by the
 *   ring that read it (Rust's `StoredSeal`): `older_key` values re-seal on their next write.
 */

/**
 * Read a value of `type` stored under `kvKey`, sealed or in clear (Rust's `decode_value_in`):
 * frame → type → version → expiry (expired: `null`, without opening) → open (a sealed value:
 * `sealed_no_key_ring` / `sealed_unknown_key` / `sealed_unopenable`; a clear one: `not_sealed`
 * when the ring requires sealing) → payload parse → validation. A sealed postcard payload is
 * opened (authenticated), then refused with `binary_codec`, as clear postcard frames are.
 * @param {import("./envelope.js").Registry} registry
 * @param {KeyRing | null | undefined} ring
 * @param {Uint8Array | ArrayBuffer | string} input
 * @param {string} type
 * @param {string} kvKey the key the value was read from (part of what is authenticated)
 * @param {{ now?: number }} [options]
 */
export async function openEnvelope(registry, ring, input, type, kvKey, options = {}) {
  const now = options.now ?? Date.now();
  const entry = registry.types[type];
  if (!entry) throw new TypeError(`type ${JSON.stringify(type)} is not in the registry`);
  const bytes = toBytes(input);
  if (bytes[0] !== SEALED_MAGIC) {
    if (ring?.requireSealed) {
      const header = peekHeader(bytes);
      if (!checkHeader(entry, type, header, now)) return null;
      throw new EnvelopeError("not_sealed", `${type}: value is in clear and this key ring requires sealed values`, {
        type,
        version: header.version,
      });
    }
    const read = readEnvelope(registry, bytes, type, { now });
    return read === null ? null : { ...read, keyId: null, seal: /** @type {StoredSeal} */ ("clear") };
  }
  const frame = sealedFrame(bytes);
  const { header } = frame;
  if (!checkHeader(entry, type, header, now)) return null;
  const plaintext = await openFrame(ring, frame, kvKey);
  if (header.codec === "postcard") {
    throw new EnvelopeError(
      "binary_codec",
      `${type} v${header.version} is a sealed postcard payload: opened, but this reader decodes JSON only`,
      { type, version: header.version, keyId: header.keyId },
    );
  }
  let text;
  try {
    text = utf8.decode(plaintext);
  } catch {
    throw new EnvelopeError("malformed", `malformed json envelope: sealed payload of ${type} v${header.version} is not valid UTF-8`, {
      type,
      version: header.version,
    });
  }
  const read = decoded(entry, type, header, text, [0, text.length]);
  /** @type {StoredSeal} */
  const seal = ring && header.keyId === ring.primaryId ? "primary" : "older_key";
  return { ...read, keyId: header.keyId, seal };
}

/**
 * Encode `data` as the current version of `type`, validated as `writeEnvelope` does, and seal it
 * for `kvKey` with the ring's primary key (JSON inner codec, fresh random nonce). The bytes to
 * store; their KV metadata is `toMetadata(peekHeader(bytes))`.
 * @param {import("./envelope.js").Registry} registry
 * @param {KeyRing} ring
 * @param {string} kvKey
 * @param {string} type
 * @param {unknown} data
 * @param {{ expiresAt?: number | null }} [options]
 * @returns {Promise<Uint8Array>}
 */
export async function sealEnvelope(registry, ring, kvKey, type, data, options = {}) {
  const { version, expiresAt, body } = encodePayload(registry, type, data, options);
  return sealFrame(ring, kvKey, { codec: "json", type, version, expiresAt }, encoder.encode(body));
}
