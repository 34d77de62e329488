// Types of @kv-envelope/ts. The implementation is plain ES modules (src/*.js, checked by tsc
// with checkJs); these declarations add the generics a generated registry brings.

/** Payload types per type name and version, as a generated `index.d.ts` declares them. */
export type TypeMap = { [type: string]: { [version: number]: unknown } };
/** Payload type of each type's current version. */
export type CurrentMap<T extends TypeMap> = { [K in keyof T]: unknown };

/** An Ajv standalone validator: a type guard that sets `errors` after a failed call. */
export interface Validator<T = unknown> {
  (data: unknown): data is T;
  errors?: null | Array<{ instancePath: string; schemaPath: string; keyword: string; message?: string }>;
}

/** What a generated `index.js` exports as `registry`. */
export interface Registry<T extends TypeMap = TypeMap, C extends CurrentMap<T> = CurrentMap<T>> {
  types: { [K in keyof T]: { current: number; versions: { [V in keyof T[K]]: Validator<T[K][V]> } } };
  /** `<type>.envelope.schema.json` validators (whole stored values), when the folder has them. */
  wholeValue: { [K in keyof T]?: Validator };
  /** `envelope.schema.json`, when present. */
  envelope: Validator | null;
  /** `metadata.schema.json`, when present. */
  metadata: Validator | null;
  /** Phantom: ties the current-version types to the registry. */
  readonly __current?: C;
}

export type ErrorCode =
  | "unknown_codec"
  | "malformed"
  | "binary_codec"
  | "wrong_type"
  | "unknown_version"
  | "future_version"
  | "invalid"
  | "limit"
  | "encode"
  | "sealed_no_key_ring"
  | "sealed_unknown_key"
  | "sealed_unopenable"
  | "not_sealed";

export interface ValidationIssue {
  /** JSON Pointer into the payload (`/email`). */
  instancePath: string;
  /** JSON Pointer into the schema (`#/properties/email/format`). */
  schemaPath: string;
  /** The schema keyword that failed. */
  keyword: string;
  /** Ajv's message: schema facts only, never the value. */
  message: string;
}

export declare class EnvelopeError extends Error {
  constructor(
    code: ErrorCode,
    message: string,
    details?: { type?: string; version?: number; known?: number; found?: string; issues?: ValidationIssue[]; reason?: string; keyId?: string },
  );
  readonly code: ErrorCode;
  readonly type?: string;
  readonly version?: number;
  readonly known?: number;
  readonly found?: string;
  readonly issues?: ValidationIssue[];
  readonly reason?:
    | "key_empty"
    | "key_reserved"
    | "key_too_long"
    | "value_too_large"
    | "metadata_too_large"
    | "already_expired"
    | "expiry_out_of_range"
    | string;
  /** Key id from a sealed value's header (the `sealed_*` codes). */
  readonly keyId?: string;
  /** The stored value must not be overwritten by a safe write (future version or unreadable). */
  readonly protectsStoredValue: boolean;
}

/** A value read at its stored version: branch on `version` to get the matching `data` type. */
export type Read<T extends TypeMap, K extends keyof T> = {
  [V in keyof T[K]]: { type: K; version: V; data: T[K][V]; expiresAt: number | null; codec: "json" };
}[keyof T[K]];

export interface Header {
  codec: "json" | "postcard";
  type: string;
  version: number;
  /** ms since the epoch; `null` never expires. */
  expiresAt: number | null;
  /** Id of the key a sealed value was sealed with; absent for a value in clear. */
  keyId?: string;
}

/** KV metadata copy of the header. */
export interface Metadata {
  t: string;
  v: number;
  c: "json" | "postcard";
  e?: number;
  /** Key id of a sealed value. */
  k?: string;
}

/** The part of Workers' `KVNamespace` this package uses. */
export interface KvNamespaceLike {
  getWithMetadata(key: string, options: { type: "arrayBuffer"; cacheTtl?: number }): Promise<{ value: ArrayBuffer | null; metadata: unknown }>;
  put(key: string, value: string | Uint8Array, options?: { expiration?: number; metadata?: unknown }): Promise<void>;
}

export interface ReadOptions {
  /** Current time in ms (default `Date.now()`). */
  now?: number;
}

export interface GetOptions extends ReadOptions {
  /** Let the edge cache this read for that many seconds (raised to 60). Off by default: a cached
   * read can serve a value that long after it was replaced or deleted. */
  cacheTtl?: number;
}

export interface SealedGetOptions extends GetOptions {
  /** Open sealed values with this ring (clear values still read, unless it requires sealing). */
  keyRing: KeyRing;
}

export interface WriteOptions {
  /** Exact expiry in ms since the epoch; `null`/absent: never expires. */
  expiresAt?: number | null;
}

export interface PutOptions extends WriteOptions, ReadOptions {
  /** `safe` (default): refuse to replace unreadable values; `allowCorrupt`: replace them (caches).
   * A future-version value, or a sealed one this writer cannot open, is refused either way. */
  overwrite?: "safe" | "allowCorrupt";
}

export interface SealedPutOptions extends PutOptions {
  /** Seal the value with this ring's primary key (metadata gets `k`); the bytes are returned. */
  keyRing: KeyRing;
}

/** How a value was stored, as seen by the ring that read it: `older_key` re-seals on its next write. */
export type StoredSeal = "clear" | "primary" | "older_key";

/** A value read through a key ring: the stored version's data, and how it was sealed. */
export type OpenedRead<T extends TypeMap, K extends keyof T> = Read<T, K> & { keyId: string | null; seal: StoredSeal };

export type Input = Uint8Array | ArrayBuffer | string;

export declare function readEnvelope<T extends TypeMap, K extends keyof T & string>(
  registry: Registry<T, any>,
  input: Input,
  type: K,
  options?: ReadOptions,
): Read<T, K> | null;
export declare function writeEnvelope<T extends TypeMap, C extends CurrentMap<T>, K extends keyof T & string>(
  registry: Registry<T, C>,
  type: K,
  data: C[K],
  options?: WriteOptions,
): string;
export declare function getValue<T extends TypeMap, K extends keyof T & string>(
  registry: Registry<T, any>,
  kv: KvNamespaceLike,
  key: string,
  type: K,
  options: SealedGetOptions,
): Promise<OpenedRead<T, K> | null>;
export declare function getValue<T extends TypeMap, K extends keyof T & string>(
  registry: Registry<T, any>,
  kv: KvNamespaceLike,
  key: string,
  type: K,
  options?: GetOptions,
): Promise<Read<T, K> | null>;
export declare function putValue<T extends TypeMap, C extends CurrentMap<T>, K extends keyof T & string>(
  registry: Registry<T, C>,
  kv: KvNamespaceLike,
  key: string,
  type: K,
  data: C[K],
  options: SealedPutOptions,
): Promise<Uint8Array>;
export declare function putValue<T extends TypeMap, C extends CurrentMap<T>, K extends keyof T & string>(
  registry: Registry<T, C>,
  kv: KvNamespaceLike,
  key: string,
  type: K,
  data: C[K],
  options?: PutOptions,
): Promise<string>;
/** Read a value stored under `kvKey`, sealed or in clear, opening sealed ones with `ring`. */
export declare function openEnvelope<T extends TypeMap, K extends keyof T & string>(
  registry: Registry<T, any>,
  ring: KeyRing | null | undefined,
  input: Input,
  type: K,
  kvKey: string,
  options?: ReadOptions,
): Promise<OpenedRead<T, K> | null>;
/** The current version of `type`, validated, sealed for `kvKey` with the ring's primary key. */
export declare function sealEnvelope<T extends TypeMap, C extends CurrentMap<T>, K extends keyof T & string>(
  registry: Registry<T, C>,
  ring: KeyRing,
  kvKey: string,
  type: K,
  data: C[K],
  options?: WriteOptions,
): Promise<Uint8Array>;

export interface Envelopes<T extends TypeMap, C extends CurrentMap<T>> {
  registry: Registry<T, C>;
  readEnvelope<K extends keyof T & string>(input: Input, type: K, options?: ReadOptions): Read<T, K> | null;
  writeEnvelope<K extends keyof T & string>(type: K, data: C[K], options?: WriteOptions): string;
  getValue<K extends keyof T & string>(kv: KvNamespaceLike, key: string, type: K, options: SealedGetOptions): Promise<OpenedRead<T, K> | null>;
  getValue<K extends keyof T & string>(kv: KvNamespaceLike, key: string, type: K, options?: GetOptions): Promise<Read<T, K> | null>;
  putValue<K extends keyof T & string>(kv: KvNamespaceLike, key: string, type: K, data: C[K], options: SealedPutOptions): Promise<Uint8Array>;
  putValue<K extends keyof T & string>(kv: KvNamespaceLike, key: string, type: K, data: C[K], options?: PutOptions): Promise<string>;
  openEnvelope<K extends keyof T & string>(ring: KeyRing | null | undefined, input: Input, type: K, kvKey: string, options?: ReadOptions): Promise<OpenedRead<T, K> | null>;
  sealEnvelope<K extends keyof T & string>(ring: KeyRing, kvKey: string, type: K, data: C[K], options?: WriteOptions): Promise<Uint8Array>;
}
export declare function createEnvelopes<T extends TypeMap, C extends CurrentMap<T>>(registry: Registry<T, C>): Envelopes<T, C>;

export declare function encodeEnvelope(type: string, version: number, expiresAt: number | null, data: unknown): string;
export declare function frameHeader(bytes: Uint8Array): Header;
/** The header of any stored value (no type or version check, payload untouched). */
export declare function peekHeader(input: Input): Header;
export declare function parseMetadata(meta: unknown): Header | null;
export declare function toMetadata(header: Header): Metadata;
export declare function checkKey(key: string): void;
export declare function clampExpiration(expiresAt: number, now: number): number;

export declare function encodePayload(
  registry: Registry<any, any>,
  type: string,
  data: unknown,
  options?: WriteOptions,
): { version: number; expiresAt: number | null; body: string };

// ---- Sealed values (0xC6): WebCrypto AES-256-GCM, the frame of Rust's src/seal.rs ----

export type KeyRingErrorCode = "invalid_id" | "missing" | "bad_base64" | "bad_length" | "duplicate_id" | "empty";

/** A key ring could not be built. Names variables and key ids, never a key. */
export declare class KeyRingError extends Error {
  readonly code: KeyRingErrorCode;
  /** The variable or secret at fault. */
  readonly sourceName?: string;
  /** The key id at fault. */
  readonly id?: string;
  /** Decoded length (`bad_length`). */
  readonly len?: number;
}

/** AES-256-GCM keys with ids; the first (primary) seals, any opens what names it. */
export declare class KeyRing {
  private constructor();
  /** Keys as 32 bytes or base64 of them, the primary first. */
  static fromKeys(keys: Array<{ id: string; key: Uint8Array | string; sourceName?: string }>, options?: { requireSealed?: boolean }): Promise<KeyRing>;
  readonly primaryId: string;
  readonly keyIds: string[];
  readonly requireSealed: boolean;
  has(id: string): boolean;
  /** The same keys, refusing clear values (`not_sealed`) when `on`. */
  requiringSealed(on: boolean): KeyRing;
  toJSON(): { keyIds: string[]; requireSealed: boolean };
}

/** `<prefix>_KEYS` ("k2,k1", primary first) and `<prefix>_KEY_<id>` (base64 of 32 bytes) from a Worker's env or process.env. */
export declare function keyRingFromEnv(env: Record<string, unknown> | object, prefix: string, options?: { requireSealed?: boolean }): Promise<KeyRing>;

/** The readable fields of a frame being sealed. */
export interface FrameFields {
  codec: "json" | "postcard";
  type: string;
  version: number;
  expiresAt: number | null;
}

export interface SealedFrame {
  header: Header & { keyId: string };
  /** The frame up to the nonce (authenticated with the KV key). */
  headerBytes: Uint8Array;
  nonce: Uint8Array;
  /** Ciphertext, 16-byte tag appended. */
  ciphertext: Uint8Array;
}

/** Split a sealed frame without decrypting it (throws `malformed` / `unknown_codec`). */
export declare function sealedFrame(bytes: Uint8Array): SealedFrame;
/** The preamble and header of a sealed frame. */
export declare function sealedHeader(fields: FrameFields, keyId: string): Uint8Array;
/** Seal a payload (JSON text or postcard bytes) for `kvKey` with the primary key and a random nonce. */
export declare function sealFrame(ring: KeyRing, kvKey: string, fields: FrameFields, plaintext: Uint8Array): Promise<Uint8Array>;
/** Open a sealed frame: header and plaintext, no type/version/expiry checks. */
export declare function openSealed(ring: KeyRing, input: Input, kvKey: string): Promise<{ header: Header & { keyId: string }; plaintext: Uint8Array }>;
export declare function validKeyId(id: unknown): boolean;

export declare const SEALED_MAGIC: 0xc6;
export declare const NONCE_LEN: 12;
export declare const AUTH_TAG_LEN: 16;
export declare const KEY_LEN: 32;
export declare const MAX_KEY_ID_LEN: 32;
export declare const FRAME_MAGIC: 0xc5;
export declare const JSON_FORMAT: 1;
export declare const MAX_ISSUES: number;
export declare const MAX_KEY_BYTES: number;
export declare const MAX_VALUE_BYTES: number;
export declare const MAX_METADATA_BYTES: number;
export declare const MIN_EXPIRATION_SECS: number;
export declare const MIN_CACHE_TTL_SECS: number;
export declare const MAX_EXPIRES_AT_MS: number;
export declare const EXPIRATION_SKEW_SECS: number;
