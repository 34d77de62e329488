// The reference pattern for BENCHMARKS.md's load rows: what a Worker without kv-envelope
// typically does. Same routes and same answers as the demo worker (examples/worker) for what the
// load test calls:
//   POST /login  {"email": "..."}  -> 303, Set-Cookie: session=<id>
//   GET  /me                       -> 200 the session as JSON (401 without a valid one)
//   GET  /popular                  -> the 10 most viewed articles, cache-aside in KV (5 min)
//   GET  /_stats                   -> this isolate's KV operation counts
//   GET  /healthz                  -> ok
// Sessions: a KVSessionStore that JSON-encodes the session, checks `expiresAt` on read and
// refreshes it with a KV put on every request (7-day sliding expiry, `expirationTtl`). The
// refresh runs in `waitUntil`, as the demo worker's does, so latency compares reads with reads.

export interface Env {
  KV: KVNamespace;
  CACHE: KVNamespace;
}

interface Session {
  userId: string;
  email: string;
  createdAt: number;
  expiresAt: number;
}

const IDLE_TTL_S = 7 * 24 * 3600;
const POPULAR_TTL_S = 300;
const UPSTREAM_LATENCY_MS = 250;
const ARTICLES = 256;
const VIEWS = 300_000;
const TOP = 10;

const stats = { requests: 0, kv_reads: 0, kv_writes: 0, kv_deletes: 0, popular_compute_calls: 0 };

/** Counts every KV call, like the demo worker's `/_stats`. */
function counted(kv: KVNamespace) {
  return {
    get: (key: string) => {
      stats.kv_reads++;
      return kv.get(key);
    },
    put: (key: string, value: string, opts: KVNamespacePutOptions) => {
      stats.kv_writes++;
      return kv.put(key, value, opts);
    },
  };
}

class KVSessionStore {
  constructor(private kv: ReturnType<typeof counted>) {}

  private key(id: string): string {
    return `session:${id}`;
  }

  async create(userId: string, email: string): Promise<string> {
    const bytes = crypto.getRandomValues(new Uint8Array(32));
    const id = [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");
    const now = Date.now();
    const session: Session = { userId, email, createdAt: now, expiresAt: now + IDLE_TTL_S * 1000 };
    await this.kv.put(this.key(id), JSON.stringify(session), { expirationTtl: IDLE_TTL_S });
    return id;
  }

  async get(id: string): Promise<Session | null> {
    const raw = await this.kv.get(this.key(id));
    if (raw === null) return null;
    const session = JSON.parse(raw) as Session;
    if (session.expiresAt <= Date.now()) return null;
    return session;
  }

  /** Sliding expiry: push `expiresAt` out and write the session back, on every request. */
  async refresh(id: string, session: Session): Promise<void> {
    session.expiresAt = Date.now() + IDLE_TTL_S * 1000;
    await this.kv.put(this.key(id), JSON.stringify(session), { expirationTtl: IDLE_TTL_S });
  }
}

function json(status: number, body: unknown, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { "content-type": "application/json", "cache-control": "no-store", ...headers },
  });
}

function sessionId(request: Request): string | null {
  const cookie = request.headers.get("cookie") ?? "";
  for (const part of cookie.split(";")) {
    const [name, ...value] = part.trim().split("=");
    if (name === "session") return value.join("=");
  }
  return null;
}

async function userIdOf(email: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(email.toLowerCase()));
  const hex = [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
  return `u_${hex.slice(0, 16)}`;
}

/** The demo worker's computation, step for step: a 250 ms "upstream" and 300 000 ranked views. */
async function computePopular() {
  stats.popular_compute_calls++;
  await new Promise((resolve) => setTimeout(resolve, UPSTREAM_LATENCY_MS));
  const computedAt = Date.now();
  const counts = new Uint32Array(ARTICLES);
  let x = BigInt(computedAt) | 1n;
  const mask = (1n << 64n) - 1n;
  for (let i = 0; i < VIEWS; i++) {
    x = (x * 6364136223846793005n + 1442695040888963407n) & mask;
    const u = Number(x >> 54n);
    counts[Math.floor((u * u * u) / 2 ** 22)]++;
  }
  const ranked = [...counts].map((views, id) => ({ id, views }));
  ranked.sort((a, b) => b.views - a.views || a.id - b.id);
  return {
    items: ranked.slice(0, TOP).map(({ id, views }) => ({ article: `article-${id}`, views })),
    computedAt,
    sampledViews: VIEWS,
  };
}

export default {
  async fetch(request: Request, env: Env, ctx: ExecutionContext): Promise<Response> {
    stats.requests++;
    const url = new URL(request.url);
    const sessions = new KVSessionStore(counted(env.KV));
    const cache = counted(env.CACHE);
    switch (`${request.method} ${url.pathname}`) {
      case "GET /healthz":
        return new Response("ok");
      case "GET /_stats":
        return json(200, stats);
      case "POST /login": {
        const body = (await request.json().catch(() => null)) as { email?: unknown } | null;
        const email = body?.email;
        if (typeof email !== "string" || !email.includes("@")) {
          return json(400, { error: "invalid_email" });
        }
        const id = await sessions.create(await userIdOf(email), email);
        return new Response(null, {
          status: 303,
          headers: {
            location: "/me",
            "set-cookie": `session=${id}; Max-Age=${IDLE_TTL_S}; Path=/; HttpOnly; Secure; SameSite=Lax`,
          },
        });
      }
      case "GET /me": {
        const id = sessionId(request);
        const session = id === null ? null : await sessions.get(id);
        if (id === null || session === null) {
          return json(401, { error: "unauthenticated", login: "/login" });
        }
        ctx.waitUntil(sessions.refresh(id, session));
        return json(200, session);
      }
      case "GET /popular": {
        const cached = await cache.get("popular:top");
        if (cached !== null) {
          return new Response(cached, {
            headers: { "content-type": "application/json", "x-cache": "hit" },
          });
        }
        const value = JSON.stringify(await computePopular());
        ctx.waitUntil(cache.put("popular:top", value, { expirationTtl: POPULAR_TTL_S }));
        return new Response(value, {
          headers: { "content-type": "application/json", "x-cache": "miss" },
        });
      }
      default:
        return json(404, { error: "not_found" });
    }
  },
};
