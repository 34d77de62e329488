// The TypeScript side of the interop demo: the Rust demo's sessions (KV) and cache entries (CACHE)
// read and written through @kv-envelope/ts with the validators generated from schemas/.
//
// | route | does |
// |---|---|
// | GET /healthz | 200 ok |
// | GET /kv/<key>?type=session&binding=KV | the value at <key>: {type, version, data, expiresAt}; 404 when missing or expired |
// | PUT /kv/<key>?type=session&binding=KV | body {data, expiresAt?}: written as the current version (guarded) |
// | GET /header/<binding>/<key> | any value's envelope header and parsed metadata, payload unread (no schema needed) |
// | GET /cache/<namespace>/<key> | the cache entry <key> of namespace <namespace> (its current generation) |
// | PUT /cache/<namespace>/<key> | body {data, expiresAt}: written as a cache entry (corrupt entries replaced) |
//
// Errors are JSON {"error": <EnvelopeError code>, "message"}: 409 future_version (never
// overwritten), 400 limit / bad request, 422 for a stored value this worker cannot read.
import { createEnvelopes, EnvelopeError, parseMetadata, peekHeader, type KvNamespaceLike } from "@kv-envelope/ts";
import { registry } from "@kv-envelope/ts/generated";

export interface Env {
  KV: KvNamespaceLike;
  CACHE: KvNamespaceLike;
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
  if (e instanceof EnvelopeError) {
    const status = e.code === "future_version" ? 409 : e.code === "limit" || e.code === "encode" ? 400 : 422;
    return json(status, { error: e.code, message: e.message, ...(e.issues ? { issues: e.issues } : {}) });
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

async function read(kv: KvNamespaceLike, key: string, type: TypeName): Promise<Response> {
  try {
    const value = await getValue(kv, key, type);
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
): Promise<Response> {
  const b = await body(req);
  if (b instanceof Response) return b;
  try {
    // The generated types are checked at the edge of the program: the validator decides.
    const text = await putValue(kv, key, type, b.data as never, { expiresAt: b.expiresAt, overwrite });
    return json(201, { key, written: JSON.parse(text) });
  } catch (e) {
    return fail(e);
  }
}

/** The current generation of a cache namespace (0 when never bumped), as the Rust cache reads it. */
async function generation(kv: KvNamespaceLike, namespace: string): Promise<number> {
  const record = await getValue(kv, `${cacheBase(namespace)}generation`, "kv-envelope.cache-generation");
  return record === null ? 0 : (record.data as { generation: number }).generation;
}

export default {
  async fetch(req: Request, env: Env): Promise<Response> {
    const url = new URL(req.url);
    if (url.pathname === "/healthz") return new Response("ok");
    let m = /^\/kv\/(.+)$/.exec(url.pathname);
    if (m) {
      const type = typeOf(url.searchParams.get("type"));
      if (!type) return json(400, { error: "bad_request", message: "unknown type" });
      const kv = binding(env, url.searchParams.get("binding") ?? "KV");
      if (!kv) return json(400, { error: "bad_request", message: "binding is KV or CACHE" });
      const key = decodeURIComponent(m[1]);
      if (req.method === "GET") return read(kv, key, type);
      if (req.method === "PUT") return write(kv, key, type, req, "safe");
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
      if (req.method === "GET") return read(env.CACHE, key, type);
      // A cache's data can be recomputed: corrupt entries may be replaced (Rust's AllowCorrupt),
      // future-version ones still never are.
      if (req.method === "PUT") return write(env.CACHE, key, type, req, "allowCorrupt");
      return json(405, { error: "method_not_allowed", message: "GET or PUT" });
    }
    return json(404, { error: "not_found", message: "no such route" });
  },
};
