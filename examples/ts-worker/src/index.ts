// The TypeScript side of the interop demo: the Rust demo's sessions (KV) and cache entries (CACHE)
// read and written through @kv-envelope/ts with the validators generated from schemas/, and sealed
// values (0xC6, AES-256-GCM) opened and sealed with WebCrypto under the Rust demo's key ring.
//
// | route | does |
// |---|---|
// | GET /healthz | 200 ok |
// | GET /keyring | the key ring's ids (never a key): {keyIds, primaryId, requireSealed}; 404 when none |
// | GET /kv/<key>?type=session&binding=KV | the value at <key>: {type, version, data, expiresAt, codec[, keyId, seal]}; 404 when missing or expired; a clear value is `not_sealed` under a ring that requires sealing (the default) |
// | PUT /kv/<key>?type=session&binding=KV[&seal=0] | body {data, expiresAt?}: written as the current version (guarded), sealed when the worker has a key ring, then `422 not_sealed` over a clear value unless `SEAL_REQUIRE_SEALED=off` (then re-sealed); `seal=0`: in clear, guarded as by a worker without a ring (a clear value replaced, a sealed one never) |
// | GET /header/<binding>/<key> | any value's envelope header and parsed metadata, payload unread (no schema, no key needed) |
// | GET /cache/<namespace>/<key> | the cache entry <key> of namespace <namespace> (its current generation) |
// | PUT /cache/<namespace>/<key>[?seal=0] | body {data, expiresAt}: written as a cache entry (corrupt and clear entries replaced) |
//
// The key ring is the Rust demo's: `SEAL_KEYS` ("k2,k1", primary first) and a secret
// `SEAL_KEY_<id>` (base64 of 32 bytes) per id, from `.dev.vars` locally (scripts/with-ts-worker.sh
// hands wrangler dev the Rust demo's) or `wrangler secret put` when deployed. Without `SEAL_KEYS`
// the worker has no ring: clear values only, sealed ones are `sealed_no_key_ring`.
//
// Like Rust's `KeyRing`, the ring refuses values in clear (`not_sealed`): a value planted in KV by
// someone without the key is never served, and a session PUT (sealed: without `seal=0`) never
// overwrites it. An app that stored values in clear before it sealed sets the var
// `SEAL_REQUIRE_SEALED = "off"` while they last (the migration path, Rust's
// `requiring_sealed(false)`): clear values are then read (`seal: "clear"`) and sealed at their
// next PUT. "on" (or unset) is the default; any other value is a 500 key_ring. Cache generation
// records stay in clear, as the Rust cache writes and reads them (they hold no data): they are
// read without the ring.
//
// Errors are JSON {"error": <EnvelopeError code>, "message"}: 409 future_version (never
// overwritten), 400 limit / bad request, 422 for a stored value this worker cannot read (sealed_*
// and not_sealed included), never overwritten either, except a corrupt or clear cache entry,
// which a cache PUT replaces (caches recompute; a sealed entry it cannot open, never), 500 key_ring
// when the ring's variables are wrong (the message names the variable, never its value).
import {
  createEnvelopes,
  EnvelopeError,
  keyRingFromEnv,
  KeyRingError,
  parseMetadata,
  peekHeader,
  type KeyRing,
  type KvNamespaceLike,
} from "@kv-envelope/ts";
import { registry } from "@kv-envelope/ts/generated";

export interface Env {
  KV: KvNamespaceLike;
  CACHE: KvNamespaceLike;
  /** Key ids, primary first (a var or secret); unset: no key ring. */
  SEAL_KEYS?: string;
  /** "on" (default): clear values are refused (`not_sealed`); "off": read while migrating. */
  SEAL_REQUIRE_SEALED?: string;
  /** `SEAL_KEY_<id>` secrets. */
  [name: string]: unknown;
}

/** Env prefix of the key ring, as the Rust demo reads it. */
const SEAL_PREFIX = "SEAL";

/** A worker setting that is neither of its values (a 500, naming the variable, not its value). */
class SettingError extends Error {}

/** `SEAL_REQUIRE_SEALED`: "on" or unset refuses clear values (the library's default), "off" reads them. */
function requireSealed(env: Env): boolean {
  const name = `${SEAL_PREFIX}_REQUIRE_SEALED`;
  const value = env[name];
  if (value === undefined || value === "on") return true;
  if (value === "off") return false;
  throw new SettingError(`${name} must be on or off`);
}

// The ring is built once per env (importing keys is async): the same object for an isolate's life.
const rings = new WeakMap<object, Promise<KeyRing | null>>();
function keyRing(env: Env): Promise<KeyRing | null> {
  let ring = rings.get(env);
  if (!ring) {
    ring =
      typeof env[`${SEAL_PREFIX}_KEYS`] === "string"
        ? Promise.resolve()
            .then(() => requireSealed(env))
            .then((on) => keyRingFromEnv(env, SEAL_PREFIX, { requireSealed: on }))
        : Promise.resolve(null);
    rings.set(env, ring);
    // A bad variable is reported on every request, and retried after a fix (no stale rejection).
    ring.catch(() => rings.delete(env));
  }
  return ring;
}

const { getValue, putValue } = createEnvelopes(registry);
type TypeName = keyof typeof registry.types & string;

/** The cache store's key layout (src/cache/keys.rs): `cache:<escaped namespace>:g<generation>:<key>`. */
function cacheBase(namespace: string): string {
  return `cache:${namespace.replaceAll("%", "%25").replaceAll(":", "%3A")}:`;
}

function binding(env: Env, name: string): KvNamespaceLike | null {
  return name === "KV" ? env.KV : name === "CACHE" ? env.CACHE : null;
}

function json(status: number, body: unknown): Response {
  return new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json" } });
}

function fail(e: unknown): Response {
  if (e instanceof KeyRingError) return json(500, { error: "key_ring", code: e.code, message: e.message });
  if (e instanceof SettingError) return json(500, { error: "key_ring", code: "bad_setting", message: e.message });
  if (e instanceof EnvelopeError) {
    const status = e.code === "future_version" ? 409 : e.code === "limit" || e.code === "encode" ? 400 : 422;
    return json(status, {
      error: e.code,
      message: e.message,
      ...(e.issues ? { issues: e.issues } : {}),
      ...(e.keyId ? { keyId: e.keyId } : {}),
    });
  }
  throw e;
}

function typeOf(name: string | null): TypeName | null {
  const t = name ?? "session";
  return Object.hasOwn(registry.types, t) ? (t as TypeName) : null;
}

async function body(req: Request): Promise<{ data: unknown; expiresAt: number | null } | Response> {
  let parsed: unknown;
  try {
    parsed = await req.json();
  } catch {
    return json(400, { error: "bad_request", message: "body is not JSON" });
  }
  if (parsed === null || typeof parsed !== "object" || !("data" in parsed)) {
    return json(400, { error: "bad_request", message: "body must be {data, expiresAt?}" });
  }
  const { data, expiresAt = null } = parsed as { data: unknown; expiresAt?: unknown };
  if (expiresAt !== null && !Number.isSafeInteger(expiresAt)) {
    return json(400, { error: "bad_request", message: "expiresAt must be ms since the epoch or null" });
  }
  return { data, expiresAt: expiresAt as number | null };
}

async function read(kv: KvNamespaceLike, key: string, type: TypeName, ring: KeyRing | null): Promise<Response> {
  try {
    const value = ring ? await getValue(kv, key, type, { keyRing: ring }) : await getValue(kv, key, type);
    return value === null ? json(404, { error: "miss", message: "no value (missing or expired)" }) : json(200, value);
  } catch (e) {
    return fail(e);
  }
}

async function write(
  kv: KvNamespaceLike,
  key: string,
  type: TypeName,
  req: Request,
  overwrite: "safe" | "allowCorrupt",
  ring: KeyRing | null,
): Promise<Response> {
  const b = await body(req);
  if (b instanceof Response) return b;
  try {
    // The generated types are checked at the edge of the program: the validator decides.
    if (ring) {
      const bytes = await putValue(kv, key, type, b.data as never, { expiresAt: b.expiresAt, overwrite, keyRing: ring });
      return json(201, { key, sealed: peekHeader(bytes), bytes: bytes.length });
    }
    const text = await putValue(kv, key, type, b.data as never, { expiresAt: b.expiresAt, overwrite });
    return json(201, { key, written: JSON.parse(text) });
  } catch (e) {
    return fail(e);
  }
}

/**
 * The current generation of a cache namespace (0 when never bumped), as the Rust cache reads it:
 * without the key ring. The record holds no data and the Rust cache writes it in clear even when
 * it seals its entries, so a ring that refuses clear values must not be asked to open it; a record
 * this worker cannot read (sealed, corrupt, newer) is the reader's error and is never overwritten.
 */
async function generation(kv: KvNamespaceLike, namespace: string): Promise<number> {
  const record = await getValue(kv, `${cacheBase(namespace)}generation`, "kv-envelope.cache-generation");
  return record === null ? 0 : (record.data as { generation: number }).generation;
}

export default {
  async fetch(req: Request, env: Env): Promise<Response> {
    const url = new URL(req.url);
    if (url.pathname === "/healthz") return new Response("ok");
    let ring: KeyRing | null;
    try {
      ring = await keyRing(env);
    } catch (e) {
      return fail(e);
    }
    // `seal=0` writes in clear even with a ring (tests of the clear format, staged roll-outs); a
    // ring that requires sealing then refuses what was written so (`not_sealed`).
    const sealing = url.searchParams.get("seal") === "0" ? null : ring;
    if (url.pathname === "/keyring") {
      if (!ring) return json(404, { error: "no_key_ring", message: `${SEAL_PREFIX}_KEYS is not set` });
      return json(200, { keyIds: ring.keyIds, primaryId: ring.primaryId, requireSealed: ring.requireSealed });
    }
    let m = /^\/kv\/(.+)$/.exec(url.pathname);
    if (m) {
      const type = typeOf(url.searchParams.get("type"));
      if (!type) return json(400, { error: "bad_request", message: "unknown type" });
      const kv = binding(env, url.searchParams.get("binding") ?? "KV");
      if (!kv) return json(400, { error: "bad_request", message: "binding is KV or CACHE" });
      const key = decodeURIComponent(m[1]);
      if (req.method === "GET") return read(kv, key, type, ring);
      if (req.method === "PUT") return write(kv, key, type, req, "safe", sealing);
      return json(405, { error: "method_not_allowed", message: "GET or PUT" });
    }
    m = /^\/header\/([A-Z]+)\/(.+)$/.exec(url.pathname);
    if (m && req.method === "GET") {
      const kv = binding(env, m[1]);
      if (!kv) return json(400, { error: "bad_request", message: "binding is KV or CACHE" });
      const key = decodeURIComponent(m[2]);
      try {
        const { value, metadata } = await kv.getWithMetadata(key, { type: "arrayBuffer" });
        if (value === null) return json(404, { error: "miss", message: "no value" });
        // `metadata` raw too: the cache adds its own fields (cf, ca, cd) beside t/v/c/e.
        return json(200, { header: peekHeader(value), metadata: parseMetadata(metadata), rawMetadata: metadata });
      } catch (e) {
        return fail(e);
      }
    }
    m = /^\/cache\/([^/]+)\/(.+)$/.exec(url.pathname);
    if (m) {
      const namespace = decodeURIComponent(m[1]);
      const type = typeOf(namespace);
      if (!type) {
        return json(501, {
          error: "no_schema",
          message: "no schema for this cache namespace's type in this worker's generated registry",
        });
      }
      let key: string;
      try {
        key = `${cacheBase(namespace)}g${await generation(env.CACHE, namespace)}:${decodeURIComponent(m[2])}`;
      } catch (e) {
        return fail(e);
      }
      if (req.method === "GET") return read(env.CACHE, key, type, ring);
      // A cache's data can be recomputed: corrupt entries may be replaced (Rust's AllowCorrupt),
      // future-version ones still never are.
      if (req.method === "PUT") return write(env.CACHE, key, type, req, "allowCorrupt", sealing);
      return json(405, { error: "method_not_allowed", message: "GET or PUT" });
    }
    return json(404, { error: "not_found", message: "no such route" });
  },
};
