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
  | "encode";

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
    details?: { type?: string; version?: number; known?: number; found?: string; issues?: ValidationIssue[]; reason?: string },
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
}

/** KV metadata copy of the header. */
export interface Metadata {
  t: string;
  v: number;
  c: "json" | "postcard";
  e?: number;
}

/** The part of Workers' `KVNamespace` this package uses. */
export interface KvNamespaceLike {
  getWithMetadata(key: string, options: { type: "arrayBuffer"; cacheTtl?: number }): Promise<{ value: ArrayBuffer | null; metadata: unknown }>;
  put(key: string, value: string, options?: { expiration?: number; metadata?: unknown }): Promise<void>;
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

export interface WriteOptions {
  /** Exact expiry in ms since the epoch; `null`/absent: never expires. */
  expiresAt?: number | null;
}

export interface PutOptions extends WriteOptions, ReadOptions {
  /** `safe` (default): refuse to replace unreadable values; `allowCorrupt`: replace them (caches).
   * A future-version value is refused either way. */
  overwrite?: "safe" | "allowCorrupt";
}

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
  options?: GetOptions,
): Promise<Read<T, K> | null>;
export declare function putValue<T extends TypeMap, C extends CurrentMap<T>, K extends keyof T & string>(
  registry: Registry<T, C>,
  kv: KvNamespaceLike,
  key: string,
  type: K,
  data: C[K],
  options?: PutOptions,
): Promise<string>;

export interface Envelopes<T extends TypeMap, C extends CurrentMap<T>> {
  registry: Registry<T, C>;
  readEnvelope<K extends keyof T & string>(input: Input, type: K, options?: ReadOptions): Read<T, K> | null;
  writeEnvelope<K extends keyof T & string>(type: K, data: C[K], options?: WriteOptions): string;
  getValue<K extends keyof T & string>(kv: KvNamespaceLike, key: string, type: K, options?: GetOptions): Promise<Read<T, K> | null>;
  putValue<K extends keyof T & string>(kv: KvNamespaceLike, key: string, type: K, data: C[K], options?: PutOptions): Promise<string>;
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
