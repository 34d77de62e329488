// @ts-check
/**
 * The envelope wire format (docs/wire-format.md, the one definition), JSON codec, with the Rust
 * reader's semantics (`src/envelope.rs`, `src/migrate.rs::decode_value`).
 *
 * Reading checks, in order: codec and frame → type name → version (0 or undefined: error; newer
 * than the schemas: `future_version`) → expiry (expired: a miss, without touching the payload) →
 * payload parse → validation against the stored version's schema. Binary (postcard) frames are
 * recognised by their magic; their header is read (so a future-version or expired frame gets the
 * same verdict as in Rust), their payload is refused with `binary_codec`. Sealed frames (`0xC6`)
 * are recognised the same way; this synchronous reader has no key: past the header checks they are
 * `sealed_no_key_ring` (open them with `openEnvelope` and a `KeyRing`, src/seal.js).
 *
 * @module
 */

import { EnvelopeError, MAX_ISSUES } from "./errors.js";
import { JsonError, parseValue, readString, skipValue, skipWs } from "./json.js";

/** First byte of a binary frame (never the first byte of UTF-8 JSON). */
export const FRAME_MAGIC = 0xc5;
/** Version of the binary frame layout. */
export const FRAME_FORMAT = 0x01;
/** Codec tag of postcard inside a binary frame. */
export const TAG_POSTCARD = 0x01;
/** Version of the JSON envelope layout (the `kv` field). */
export const JSON_FORMAT = 1;
/** First byte of a sealed frame (an encrypted payload under a readable header). */
export const SEALED_MAGIC = 0xc6;
/** Version of the sealed frame layout. */
export const SEALED_FORMAT = 0x01;
/** Inner codec tag of JSON text inside a sealed frame (postcard is {@link TAG_POSTCARD}). */
export const TAG_JSON = 0x00;
/** Length of a sealed frame's nonce (AES-GCM's 96 bits). */
export const NONCE_LEN = 12;
/** Length of a sealed frame's authentication tag. */
export const AUTH_TAG_LEN = 16;
/** The longest key id a sealed frame carries. */
export const MAX_KEY_ID_LEN = 32;
const KEY_ID = /^[A-Za-z0-9_]{1,32}$/;

const U32_MAX = 4294967295n;
const U64_MAX = 18446744073709551615n;
const UINT = /^(?:0|[1-9][0-9]*)$/;
// The layout the Rust writer (and writeEnvelope) produces: the header is read without the payload.
const FAST = /^\{"kv":1,"type":"([^"\\]*)","v":([0-9]+),"exp":(null|[0-9]+),"data":/;

const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
const encoder = new TextEncoder();

/**
 * @typedef {object} Header
 * @property {"json" | "postcard"} codec
 * @property {string} type
 * @property {number} version
 * @property {number | null} expiresAt ms since the epoch; `null` never expires
 * @property {string} [keyId] id of the key a sealed value was sealed with (absent: in clear)
 */

/**
 * @typedef {(data: unknown) => boolean} AjvValidate
 *   An Ajv standalone validator; sets `errors` on itself after a failed call.
 */

/**
 * @typedef {object} TypeEntry
 * @property {number} current newest version the schemas define
 * @property {Record<number, AjvValidate>} versions payload validator per version, 1..current
 */

/**
 * @typedef {object} Registry
 * @property {Record<string, TypeEntry>} types
 */

/** @param {string} reason */
const malformed = (reason) => new EnvelopeError("malformed", `malformed json envelope: ${reason}`);

/**
 * @param {unknown} e
 * @param {string} where
 */
function fromJsonError(e, where) {
  if (e instanceof JsonError) return malformed(`${where}: ${e.message}`);
  throw e;
}

/**
 * Decode stored bytes (or text) as a value of `type`.
 * @param {Registry} registry
 * @param {Uint8Array | ArrayBuffer | string} input
 * @param {string} type
 * @param {{ now?: number }} [options] `now` in ms (default `Date.now()`)
 * @returns {{ type: string, version: number, data: unknown, expiresAt: number | null,
 *   codec: "json" } | null} `null`: expired (a miss)
 */
export function readEnvelope(registry, input, type, options = {}) {
  const now = options.now ?? Date.now();
  const entry = registry.types[type];
  if (!entry) throw new TypeError(`type ${JSON.stringify(type)} is not in the registry`);
  const text = toText(input, (header) => checkHeader(entry, type, header, now));
  if (text === null) return null;

  let fast = fastHeader(text);
  let header, payload;
  if (fast) {
    ({ header, payload } = fast);
  } else {
    ({ header, payload } = slowFrame(text));
  }
  if (!checkHeader(entry, type, header, now)) return null;
  try {
    return decoded(entry, type, header, text, payload);
  } catch (e) {
    // The fast path cut the payload at the last `}`; a writer that put other keys after `data`
    // needs the tolerant parser (as Rust's decode_value).
    if (!fast || !(e instanceof EnvelopeError) || (e.code !== "malformed" && e.code !== "invalid")) {
      throw e;
    }
    const tolerant = slowFrame(text);
    if (tolerant.payload[0] === payload[0] && tolerant.payload[1] === payload[1]) throw e;
    if (!checkHeader(entry, type, tolerant.header, now)) return null;
    return decoded(entry, type, tolerant.header, text, tolerant.payload);
  }
}

/**
 * @param {TypeEntry} entry
 * @param {string} type
 * @param {Header} header
 * @param {string} text
 * @param {[number, number]} payload
 */
export function decoded(entry, type, header, text, [start, end]) {
  let data;
  try {
    data = parseValue(text, start, end);
  } catch (e) {
    throw fromJsonError(e, `payload of ${type} v${header.version}`);
  }
  validatePayload(entry, type, header.version, data);
  return { type, version: header.version, data, expiresAt: header.expiresAt, codec: /** @type {const} */ ("json") };
}

/**
 * Validate `data` against the schema of `type` version `version`; throws `invalid`.
 * @param {TypeEntry} entry
 * @param {string} type
 * @param {number} version
 * @param {unknown} data
 */
export function validatePayload(entry, type, version, data) {
  const validate = entry.versions[version];
  if (!validate) {
    throw new EnvelopeError("unknown_version", `${type} has no schema version ${version}`, { type, version });
  }
  if (validate(data)) return;
  /** @type {any[]} */
  const errors = /** @type {any} */ (validate).errors ?? [];
  // Only schema-side facts are kept: Ajv's `params` and `data` can carry instance keys/values.
  const issues = errors.slice(0, MAX_ISSUES).map((e) => ({
    instancePath: String(e.instancePath ?? ""),
    schemaPath: String(e.schemaPath ?? ""),
    keyword: String(e.keyword ?? ""),
    message: String(e.message ?? "fails the schema"),
  }));
  const summary = issues.map((i) => `at ${i.instancePath || "/"}: ${i.message}`).join("; ");
  throw new EnvelopeError("invalid", `${type} v${version} fails its schema: ${summary}`, {
    type,
    version,
    issues,
  });
}

/**
 * The header of stored bytes (or text), whatever their type and version, without parsing the
 * payload of a canonical value: for reports on values this registry has no schema for.
 * Throws `unknown_codec` / `malformed` as `readEnvelope` does.
 * @param {Uint8Array | ArrayBuffer | string} input
 * @returns {Header}
 */
export function peekHeader(input) {
  /** @type {Header | null} */
  let frame = null;
  const text = toText(input, (h) => {
    frame = h;
    return false;
  });
  if (frame !== null) return frame;
  const t = /** @type {string} */ (text);
  return (fastHeader(t) ?? slowFrame(t)).header;
}

/**
 * Type, version and expiry checks (Rust's `check_header`). `false`: expired.
 * @param {TypeEntry} entry
 * @param {string} type
 * @param {Header} header
 * @param {number} now
 */
export function checkHeader(entry, type, header, now) {
  if (header.type !== type) {
    const found = [...header.type].slice(0, 64).join("");
    throw new EnvelopeError("wrong_type", `envelope holds type ${JSON.stringify(found)}, expected ${JSON.stringify(type)}`, {
      type,
      found,
    });
  }
  if (header.version === 0) {
    throw new EnvelopeError("unknown_version", `${type} has no schema version 0`, { type, version: 0 });
  }
  if (header.version > entry.current) {
    throw new EnvelopeError(
      "future_version",
      `${type} value has schema version ${header.version}, newer than these schemas' ${entry.current}`,
      { type, version: header.version, known: entry.current },
    );
  }
  return !(header.expiresAt !== null && header.expiresAt <= now);
}

/**
 * The text of a JSON envelope, after the codec checks on the first byte. A binary frame is
 * checked up to its header (`onFrame` decides: `false` means expired, and `null` is returned),
 * then refused with `binary_codec`.
 * @param {Uint8Array | ArrayBuffer | string} input
 * @param {(header: Header) => boolean} onFrame
 * @returns {string | null}
 */
function toText(input, onFrame) {
  if (typeof input === "string") {
    const i = skipWs(input, 0, input.length);
    if (i === input.length) throw malformed(input.length === 0 ? "empty value" : "value is only whitespace");
    if (input.charCodeAt(i) !== 0x7b) throw unknownCodec(input.charCodeAt(i));
    return input;
  }
  const bytes = input instanceof Uint8Array ? input : new Uint8Array(input);
  let i = 0;
  while (i < bytes.length && (bytes[i] === 0x20 || bytes[i] === 0x0a || bytes[i] === 0x0d || bytes[i] === 0x09)) i++;
  if (i === bytes.length) throw malformed(bytes.length === 0 ? "empty value" : "value is only whitespace");
  if (i === 0 && bytes[0] === SEALED_MAGIC) {
    const { header } = sealedFrame(bytes);
    if (!onFrame(header)) return null;
    throw new EnvelopeError(
      "sealed_no_key_ring",
      `${header.type} v${header.version} is sealed (key id ${JSON.stringify(header.keyId)}): open it with a KeyRing (openEnvelope, or getValue with keyRing)`,
      { type: header.type, version: header.version, keyId: header.keyId },
    );
  }
  if (i === 0 && bytes[0] === FRAME_MAGIC) {
    const header = frameHeader(bytes);
    if (!onFrame(header)) return null;
    throw new EnvelopeError(
      "binary_codec",
      `${header.type} v${header.version} is a postcard frame: this reader decodes JSON envelopes only`,
      { type: header.type, version: header.version },
    );
  }
  if (bytes[i] !== 0x7b) throw unknownCodec(bytes[i]);
  try {
    return utf8.decode(bytes);
  } catch {
    throw malformed("value is not valid UTF-8");
  }
}

/** @param {number} tag */
function unknownCodec(tag) {
  const hex = tag < 256 ? `0x${tag.toString(16).padStart(2, "0")}` : `U+${tag.toString(16).toUpperCase()}`;
  return new EnvelopeError("unknown_codec", `unknown codec: first byte ${hex} is not a known envelope marker`);
}

/**
 * Header of a binary frame: `C5 01 01`, then postcard `(type: str, version: varint u32,
 * expires_at: Option<varint u64>)`, with postcard's own rules for varints.
 * @param {Uint8Array} b
 * @returns {Header}
 */
export function frameHeader(b) {
  const bad = (/** @type {string} */ r) => new EnvelopeError("malformed", `malformed postcard envelope: ${r}`);
  if (b.length < 3) throw bad("frame shorter than its 3-byte preamble");
  if (b[1] !== FRAME_FORMAT) throw bad(`unsupported frame format ${b[1]}`);
  if (b[2] !== TAG_POSTCARD) throw unknownCodec(b[2]);
  const r = postcardReader(b, 3, (m) => bad(`header: ${m}`));
  const type = r.str("type name");
  const version = r.u32();
  const expiresAt = r.optionU64();
  return { codec: "postcard", type, version, expiresAt };
}

/**
 * postcard's rules for the header fields: varints (the last allowed byte may only carry the bits
 * left in the integer), length-prefixed UTF-8 strings, options tagged 0/1.
 * @param {Uint8Array} b
 * @param {number} start
 * @param {(message: string) => Error} bad
 */
function postcardReader(b, start, bad) {
  let pos = start;
  /** @param {number} maxBytes @returns {bigint} */
  const varint = (maxBytes) => {
    let out = 0n;
    for (let i = 0; i < maxBytes; i++) {
      if (pos >= b.length) throw bad("unexpected end of input");
      const byte = b[pos++];
      out |= BigInt(byte & 0x7f) << BigInt(7 * i);
      if ((byte & 0x80) === 0) {
        const maxLast = maxBytes === 5 ? 0x0f : 0x01;
        if (i === maxBytes - 1 && byte > maxLast) throw bad("bad varint");
        return out;
      }
    }
    throw bad("bad varint");
  };
  return {
    get pos() {
      return pos;
    },
    /** @param {string} what */
    str(what) {
      const len = varint(10);
      if (len > BigInt(b.length - pos)) throw bad("unexpected end of input");
      const bytes = b.subarray(pos, pos + Number(len));
      pos += Number(len);
      try {
        return utf8.decode(bytes);
      } catch {
        throw bad(`${what} is not UTF-8`);
      }
    },
    u32: () => Number(varint(5)),
    optionU64() {
      if (pos >= b.length) throw bad("unexpected end of input");
      const tag = b[pos++];
      if (tag === 1) return Number(varint(10));
      if (tag !== 0) throw bad("bad option tag");
      return null;
    },
  };
}

/**
 * @typedef {object} SealedFrame
 * @property {Header & { keyId: string }} header
 * @property {Uint8Array} headerBytes the frame up to the nonce (authenticated with the payload)
 * @property {Uint8Array} nonce 12 bytes
 * @property {Uint8Array} ciphertext the encrypted payload, its 16-byte tag at the end
 */

/**
 * Split a sealed frame (Rust's `decode_sealed`): `C6 01 <inner codec tag>`, then postcard
 * `(type: str, version: varint u32, expires_at: Option<varint u64>, key_id: str)`, a 12-byte
 * nonce and the AES-256-GCM ciphertext with its tag. Nothing is decrypted here.
 * Throws `malformed` or `unknown_codec`.
 * @param {Uint8Array} b
 * @returns {SealedFrame}
 */
export function sealedFrame(b) {
  const bad = (/** @type {string} */ r) => new EnvelopeError("malformed", `malformed sealed frame: ${r}`);
  if (b.length < 3) throw bad("shorter than its 3-byte preamble");
  if (b[1] !== SEALED_FORMAT) throw bad(`unsupported format ${b[1]}`);
  /** @type {"json" | "postcard"} */
  let codec;
  if (b[2] === TAG_JSON) codec = "json";
  else if (b[2] === TAG_POSTCARD) codec = "postcard";
  else throw unknownCodec(b[2]);
  const r = postcardReader(b, 3, (m) => bad(`header: ${m}`));
  const type = r.str("type name");
  const version = r.u32();
  const expiresAt = r.optionU64();
  const keyId = r.str("key id");
  if (!validKeyId(keyId)) throw bad("key id is not 1 to 32 of [A-Za-z0-9_]");
  const headerLen = r.pos;
  if (b.length - headerLen < NONCE_LEN) throw bad("truncated nonce");
  if (b.length - headerLen - NONCE_LEN < AUTH_TAG_LEN) throw bad("shorter than its authentication tag");
  return {
    header: { codec, type, version, expiresAt, keyId },
    headerBytes: b.subarray(0, headerLen),
    nonce: b.subarray(headerLen, headerLen + NONCE_LEN),
    ciphertext: b.subarray(headerLen + NONCE_LEN),
  };
}

/** A key id a sealed frame may carry: 1 to 32 of `[A-Za-z0-9_]` (it can name a secret). */
export function validKeyId(/** @type {unknown} */ id) {
  return typeof id === "string" && KEY_ID.test(id);
}

/**
 * The canonical layout: header from a regular expression, payload up to the last `}`.
 * `null` when the text is not canonical (the slow path then decides, with the precise error).
 * @param {string} text
 * @returns {{ header: Header, payload: [number, number] } | null}
 */
function fastHeader(text) {
  const m = FAST.exec(text);
  if (!m) return null;
  const [all, type, v, exp] = m;
  if (!isUint(v, U32_MAX) || (exp !== "null" && !isUint(exp, U64_MAX))) return null;
  let end = text.length;
  // Rust trims ASCII whitespace (including form feed) after the closing brace.
  while (end > all.length && " \t\n\r\f".includes(text[end - 1])) end--;
  if (text.charCodeAt(end - 1) !== 0x7d) return null;
  end--;
  if (end <= all.length) return null;
  return {
    header: { codec: "json", type, version: Number(v), expiresAt: exp === "null" ? null : Number(exp) },
    payload: [all.length, end],
  };
}

/** @param {string} s @param {bigint} max */
function isUint(s, max) {
  return UINT.test(s) && BigInt(s) <= max;
}

/**
 * Any key order, unknown keys ignored, each known key at most once (serde's rules for the Rust
 * `JsonFrame`). `data` is only delimited here; it is parsed as a payload later.
 * @param {string} text
 * @returns {{ header: Header, payload: [number, number] }}
 */
function slowFrame(text) {
  try {
    const end = text.length;
    let pos = skipWs(text, 0, end);
    if (text.charCodeAt(pos) !== 0x7b) throw malformed("expected an object");
    /** @type {Map<string, [number, number]>} */
    const fields = new Map();
    pos = skipWs(text, pos + 1, end);
    if (text.charCodeAt(pos) !== 0x7d) {
      for (;;) {
        if (text.charCodeAt(pos) !== 0x22) throw new JsonError("syntax", pos, "expected a key");
        const [key, afterKey] = readString(text, pos, end);
        if (!key.isWellFormed()) throw new JsonError("lone_surrogate", pos, "lone surrogate in key");
        pos = skipWs(text, afterKey, end);
        if (text.charCodeAt(pos) !== 0x3a) throw new JsonError("syntax", pos, "expected :");
        const start = skipWs(text, pos + 1, end);
        pos = skipValue(text, start, end);
        if (key === "kv" || key === "type" || key === "v" || key === "exp" || key === "data") {
          if (fields.has(key)) throw malformed(`duplicate field \`${key}\``);
          fields.set(key, [start, pos]);
        }
        pos = skipWs(text, pos, end);
        const c = text.charCodeAt(pos);
        if (c === 0x7d) break;
        if (c !== 0x2c) throw new JsonError("syntax", pos, "expected , or }");
        pos = skipWs(text, pos + 1, end);
      }
    }
    pos = skipWs(text, pos + 1, end);
    if (pos !== end) throw new JsonError("syntax", pos, "trailing characters");
    for (const f of ["kv", "type", "v", "data"]) {
      if (!fields.has(f)) throw malformed(`missing field \`${f}\``);
    }
    const lexeme = (/** @type {string} */ f) => {
      const r = /** @type {[number, number]} */ (fields.get(f));
      return text.slice(r[0], r[1]);
    };
    const kv = lexeme("kv");
    if (!isUint(kv, U64_MAX)) throw malformed("field `kv` is not an unsigned integer");
    if (kv !== String(JSON_FORMAT)) throw malformed(`unsupported envelope format kv=${kv}`);
    const typeLex = lexeme("type");
    if (typeLex[0] !== '"') throw malformed("field `type` is not a string");
    const type = readString(typeLex, 0, typeLex.length)[0];
    if (!type.isWellFormed()) throw malformed("field `type` has a lone surrogate");
    const v = lexeme("v");
    if (!isUint(v, U32_MAX)) throw malformed("field `v` is not a u32");
    let expiresAt = null;
    if (fields.has("exp") && lexeme("exp") !== "null") {
      const e = lexeme("exp");
      if (!isUint(e, U64_MAX)) throw malformed("field `exp` is not a u64 or null");
      expiresAt = Number(e);
    }
    return {
      header: { codec: "json", type, version: Number(v), expiresAt },
      payload: /** @type {[number, number]} */ (fields.get("data")),
    };
  } catch (e) {
    if (e instanceof EnvelopeError) throw e;
    throw fromJsonError(e, "envelope");
  }
}

/**
 * Encode `data` as the envelope the Rust writer produces: header keys first, in the order
 * `kv, type, v, exp, data`, no whitespace. `data` is serialized by `JSON.stringify` (keys in
 * the object's own order, as serde_json writes a struct's fields in declaration order).
 * @param {string} type
 * @param {number} version
 * @param {number | null} expiresAt
 * @param {unknown} data
 * @returns {string}
 */
export function encodeEnvelope(type, version, expiresAt, data) {
  let body;
  try {
    body = JSON.stringify(data);
  } catch (e) {
    throw new EnvelopeError("encode", `encoding ${type} failed: ${e instanceof Error ? e.name : "error"}`, { type });
  }
  if (body === undefined) throw new EnvelopeError("encode", `encoding ${type} failed: no JSON value`, { type });
  const exp = expiresAt === null ? "null" : String(expiresAt);
  return `{"kv":1,"type":${JSON.stringify(type)},"v":${version},"exp":${exp},"data":${body}}`;
}

/**
 * The compact header copy stored as KV metadata: `{"t","v","c","e","k"}` (`e` omitted when the
 * value never expires, `k` for a sealed value only), as Rust's `Header::to_metadata`.
 * @param {Header} header
 * @returns {{ t: string, v: number, c: "json" | "postcard", e?: number, k?: string }}
 */
export function toMetadata(header) {
  /** @type {{ t: string, v: number, c: "json" | "postcard", e?: number, k?: string }} */
  const m = { t: header.type, v: header.version, c: header.codec };
  if (header.expiresAt !== null) m.e = header.expiresAt;
  if (header.keyId !== undefined) m.k = header.keyId;
  return m;
}

/**
 * Read KV metadata written by either side (`Header::from_metadata`): serialized JSON (as
 * `list` results and the corpus hold it) or the object KV's JavaScript API returns. `null`
 * when it is not ours. Never throws. A sealed value's key id comes back as `keyId`.
 * @param {unknown} meta
 * @returns {Header | null}
 */
export function parseMetadata(meta) {
  let m = meta;
  if (typeof meta === "string") {
    try {
      m = parseValue(meta, 0, meta.length);
    } catch (e) {
      if (e instanceof JsonError) return null;
      throw e;
    }
  }
  if (m === null || typeof m !== "object" || Array.isArray(m)) return null;
  const o = /** @type {Record<string, unknown>} */ (m);
  const { t, v, c, e, k } = o;
  if (typeof t !== "string" || !t.isWellFormed()) return null;
  if (typeof v !== "number" || !Number.isInteger(v) || v < 0 || v > Number(U32_MAX)) return null;
  if (c !== "json" && c !== "postcard") return null;
  if (e !== undefined && e !== null && (typeof e !== "number" || !Number.isInteger(e) || e < 0 || e > Number(U64_MAX))) {
    return null;
  }
  if (k !== undefined && k !== null && (typeof k !== "string" || !k.isWellFormed())) return null;
  /** @type {Header} */
  const header = { codec: c, type: t, version: v, expiresAt: typeof e === "number" ? e : null };
  if (typeof k === "string") header.keyId = k;
  return header;
}

/** UTF-8 length of a string. */
export function byteLength(/** @type {string} */ s) {
  return encoder.encode(s).length;
}
