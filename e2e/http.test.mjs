// The demo worker's HTTP contract, over real HTTP against workerd (wrangler dev):
// routes, the session cookie's life (login, /me, rotate, logout), and every kind of bad input
// answered with a 4xx and a clear message, never a 5xx.

import assert from "node:assert/strict";
import { describe, test } from "node:test";

import {
  assertClientError,
  COOKIE_NAME,
  http,
  assertSessionStored,
  login,
  newSessionId,
  sessionFromSetCookie,
  stats,
  withSession,
} from "./lib/worker.mjs";

const JSON_ACCEPT = { accept: "application/json" };

describe("routes", () => {
  test("GET /healthz is 200 ok", async () => {
    const res = await http("/healthz");
    assert.equal(res.status, 200);
    assert.equal(res.text, "ok");
  });

  test("GET /login is an HTML page with a login form", async () => {
    const res = await http("/login");
    assert.equal(res.status, 200);
    assert.match(res.headers.get("content-type"), /^text\/html/);
    assert.match(res.text, /<form method="post" action="\/login">/);
    assert.match(res.text, /<input id="email" name="email" type="email"/);
    assert.equal(res.headers.get("cache-control"), "no-store");
    assert.match(res.headers.get("content-security-policy"), /default-src 'none'/);
  });

  test("GET / without a session links to /login", async () => {
    const res = await http("/");
    assert.equal(res.status, 200);
    assert.match(res.text, /Not signed in/);
    assert.match(res.text, /href="\/login"/);
  });

  test("unknown paths are 404 JSON", async () => {
    assertClientError(await http("/nope"), 404, "not_found", "GET /nope");
    assertClientError(await http("/me/"), 404, "not_found", "GET /me/");
  });

  test("wrong methods are 405 with Allow", async () => {
    let res = await http("/logout");
    assertClientError(res, 405, "method_not_allowed", "GET /logout");
    assert.equal(res.headers.get("allow"), "POST");
    res = await http("/me", { method: "DELETE" });
    assertClientError(res, 405, "method_not_allowed", "DELETE /me");
    assert.equal(res.headers.get("allow"), "GET, HEAD");
    res = await http("/popular/invalidate");
    assertClientError(res, 405, "method_not_allowed", "GET /popular/invalidate");
    // A method the runtime's enum does not know is not mistaken for GET.
    res = await http("/me", { method: "PURGE" });
    assertClientError(res, 405, "method_not_allowed", "PURGE /me");
    res = await http("/", { method: "HEAD" });
    assert.equal(res.status, 200, "HEAD /");
    assert.equal(res.body.length, 0, "HEAD has no body");
  });
});

describe("session lifecycle", () => {
  test("POST /login (form) → 303 /me with a strict session cookie", async () => {
    const res = await http("/login", {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: "email=ada%40example.com",
    });
    assert.equal(res.status, 303, res.text);
    assert.equal(res.headers.get("location"), "/me");
    assert.equal(res.setCookies.length, 1, "one Set-Cookie");
    const cookie = res.setCookies[0];
    assert.match(cookie, new RegExp(`^${COOKIE_NAME}=[0-9a-f]{64}; `));
    for (const attr of ["HttpOnly", "Secure", "SameSite=Lax", "Path=/"]) {
      assert.ok(cookie.split("; ").includes(attr), `cookie has ${attr}: ${cookie}`);
    }
    const maxAge = Number(/Max-Age=(\d+)/.exec(cookie)?.[1]);
    assert.ok(maxAge > 7 * 86400 - 60 && maxAge <= 7 * 86400, `Max-Age is the 7-day idle timeout: ${maxAge}`);
    assert.doesNotMatch(cookie, /Domain=/i, "host-only cookie");
  });

  test("POST /login (JSON) then GET /me → the session as JSON", async () => {
    const before = Date.now();
    const id = await login("grace@example.com");
    const res = await http("/me", withSession(id));
    assert.equal(res.status, 200, res.text);
    assert.match(res.headers.get("content-type"), /^application\/json/);
    const me = res.json();
    assert.equal(me.email, "grace@example.com");
    assert.match(me.userId, /^u_[0-9a-f]{16}$/);
    assert.ok(me.createdAt >= before - 5000 && me.createdAt <= Date.now() + 5000, "createdAt is now");
    assert.equal(me.expiresAt - me.createdAt, 7 * 86400 * 1000, "idle expiry: 7 days");
    assert.equal(me.absoluteExpiresAt - me.createdAt, 30 * 86400 * 1000, "absolute cap: 30 days");
    assert.deepEqual(me.roles, []);
    // The same email is the same user; the id is not the email.
    const again = (await http("/me", withSession(await login("GRACE@example.com")))).json();
    assert.equal(again.userId, me.userId);
    assert.ok(!me.userId.includes("grace"));
  });

  test("GET / with a session shows the user", async () => {
    const id = await login("ada.lovelace@example.com");
    const res = await http("/", withSession(id));
    assert.equal(res.status, 200);
    assert.match(res.text, /Signed in as <strong>ada\.lovelace@example\.com<\/strong>/);
    assert.match(res.text, /action="\/logout"/);
  });

  test("GET /me without a session: 302 /login for pages, 401 JSON for APIs", async () => {
    let res = await http("/me");
    assert.equal(res.status, 302);
    assert.equal(res.headers.get("location"), "/login");
    res = await http("/me", { headers: { accept: "text/html,application/xhtml+xml,*/*;q=0.8" } });
    assert.equal(res.status, 302, "a browser navigation is redirected");
    res = await http("/me", { headers: JSON_ACCEPT });
    assert.equal(res.status, 401);
    assert.match(res.headers.get("content-type"), /^application\/json/);
    assert.equal(res.json().error, "unauthenticated");
  });

  test("a login replaces the session the browser already had", async () => {
    const first = await login("lin@example.com");
    const res = await http("/login", {
      method: "POST",
      headers: { "content-type": "application/json", cookie: `${COOKIE_NAME}=${first}` },
      body: JSON.stringify({ email: "lin@example.com" }),
    });
    assert.equal(res.status, 303);
    const second = sessionFromSetCookie(res);
    assert.notEqual(second, first);
    assert.equal((await http("/me", withSession(first, JSON_ACCEPT))).status, 401, "old session deleted");
    assert.equal((await http("/me", withSession(second))).status, 200);
  });

  test("POST /sessions/rotate: new id in a new cookie, old id dead at once", async () => {
    const old = await login("rot@example.com");
    const before = (await http("/me", withSession(old))).json();
    const res = await http("/sessions/rotate", { method: "POST", ...withSession(old) });
    assert.equal(res.status, 200, res.text);
    assert.equal(res.setCookies.length, 1, `exactly one Set-Cookie: ${res.setCookies}`);
    const fresh = sessionFromSetCookie(res);
    assert.match(fresh, /^[0-9a-f]{64}$/);
    assert.notEqual(fresh, old);
    const body = res.json();
    assert.equal(body.rotated, true);
    assert.equal(body.session.userId, before.userId);
    assert.equal(body.session.createdAt, before.createdAt, "rotation keeps the creation time");
    // Immediately: the old id is refused, the new one works, and the old key is gone from KV.
    assert.equal((await http("/me", withSession(old, JSON_ACCEPT))).status, 401);
    const me = await http("/me", withSession(fresh));
    assert.equal(me.status, 200);
    assert.equal(me.json().userId, before.userId);
    await assertSessionStored(old, false, "old session key deleted");
    await assertSessionStored(fresh, true, "new session key written");
    // Rotating a dead id is a 401, not a resurrection.
    assertClientErrorLike(await http("/sessions/rotate", { method: "POST", ...withSession(old) }), 401);
  });

  test("POST /logout deletes the session, clears the cookie, 303 /login", async () => {
    const id = await login("bye@example.com");
    await assertSessionStored(id, true, "session key written");
    const res = await http("/logout", { method: "POST", ...withSession(id) });
    assert.equal(res.status, 303);
    assert.equal(res.headers.get("location"), "/login");
    assert.equal(res.setCookies.length, 1);
    assert.ok(res.setCookies[0].startsWith(`${COOKIE_NAME}=; Max-Age=0; `), res.setCookies[0]);
    assert.ok(res.setCookies[0].includes("Path=/") && res.setCookies[0].includes("Secure"));
    assert.equal((await http("/me", withSession(id, JSON_ACCEPT))).status, 401);
    await assertSessionStored(id, false, "session key deleted from KV");
    // Logging out without a session still clears the cookie.
    const again = await http("/logout", { method: "POST" });
    assert.equal(again.status, 303);
    assert.ok((again.setCookies[0] ?? "").startsWith(`${COOKIE_NAME}=; Max-Age=0`));
  });
});

function assertClientErrorLike(res, status) {
  assert.equal(res.status, status, res.text);
}

describe("bad input → 4xx with a clear message, never a 5xx", () => {
  const form = (body, extra = {}) => ({
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded", ...extra },
    body,
  });
  const jsonBody = (body) => ({ method: "POST", headers: { "content-type": "application/json" }, body });

  test("login body problems are 400/415", async () => {
    const cases = [
      ["form without email", form("name=ada"), 400, "missing_email"],
      ["form with empty email", form("email="), 400, "missing_email"],
      ["form with email twice", form("email=a%40example.com&email=b%40example.com"), 400, "duplicate_email"],
      ["form with a bad %-escape", form("email=ada%zz%40example.com"), 400, "malformed_form"],
      ["form with a truncated %-escape", form("email=ada%4"), 400, "malformed_form"],
      ["form with raw non-ASCII", form(Buffer.from([0x65, 0x6d, 0x61, 0x69, 0x6c, 0x3d, 0xff, 0xfe])), 400, "malformed_form"],
      ["form with spaces", form("email=a b@example.com"), 400, "malformed_form"],
      ["email without @", form("email=not-an-email"), 400, "invalid_email"],
      ["email without a dot in the domain", form("email=a%40b"), 400, "invalid_email"],
      ["email with two @", form("email=a%40b%40example.com"), 400, "invalid_email"],
      ["email with a space", form("email=a%20b%40example.com"), 400, "invalid_email"],
      ["email too long", form(`email=${"a".repeat(60)}%40${"b".repeat(200)}.com`), 400, "invalid_email"],
      ["email with a control character", form("email=a%0A%40example.com"), 400, "invalid_email"],
      ["malformed JSON", jsonBody('{"email": "a@example.com"'), 400, "malformed_json"],
      ["JSON that is not an object", jsonBody('["a@example.com"]'), 400, "malformed_json"],
      ["JSON without email", jsonBody('{"mail":"a@example.com"}'), 400, "missing_email"],
      ["JSON email null", jsonBody('{"email":null}'), 400, "missing_email"],
      ["JSON email a number", jsonBody('{"email":42}'), 400, "invalid_email"],
      ["JSON email an object", jsonBody('{"email":{"$ne":1}}'), 400, "invalid_email"],
      ["empty JSON body", jsonBody(""), 400, "malformed_json"],
      ["no Content-Type", { method: "POST", body: "email=a%40example.com" }, 415, "unsupported_media_type"],
      ["text/plain", { method: "POST", headers: { "content-type": "text/plain" }, body: "a@example.com" }, 415, "unsupported_media_type"],
    ];
    for (const [what, init, status, code] of cases) {
      const res = await http("/login", init);
      const body = assertClientError(res, status, code, what);
      assert.equal(res.setCookies.length, 0, `${what}: no cookie`);
      void body;
    }
  });

  test("error messages never echo the submitted value", async () => {
    const secret = "s3cr3t-value-4711";
    for (const init of [
      form(`email=${secret}`),
      jsonBody(JSON.stringify({ email: `${secret}@@example.com` })),
      jsonBody(`{"email": "${secret}`),
    ]) {
      const res = await http("/login", init);
      assert.equal(res.status, 400);
      assert.ok(!res.text.includes(secret), `error body echoes input: ${res.text}`);
    }
  });

  test("a huge body is 413, with Content-Length or streamed, and the worker keeps serving", async () => {
    const big = Buffer.alloc(64 * 1024, 0x61);
    let res = await http("/login", form(big));
    assertClientError(res, 413, "body_too_large", "64 KiB form with Content-Length");
    res = await http("/login", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: new ReadableStream({
        start(controller) {
          for (let i = 0; i < 16; i++) controller.enqueue(new Uint8Array(8 * 1024).fill(0x20));
          controller.close();
        },
      }),
      duplex: "half",
    });
    assertClientError(res, 413, "body_too_large", "128 KiB chunked JSON body");
    // Just over the limit is refused too; just under is parsed (and rejected for its content).
    res = await http("/login", form(Buffer.alloc(4097, 0x61)));
    assertClientError(res, 413, "body_too_large", "4097-byte body");
    res = await http("/login", form(Buffer.concat([Buffer.from("email=a%40example.com&pad="), Buffer.alloc(4000, 0x61)])));
    assert.equal(res.status, 303, "a 4 KiB body with an email logs in");
    const health = await http("/healthz");
    assert.equal(health.status, 200, "still serving after refused bodies");
  });

  test("bad session cookies never reach KV's errors: no 5xx, dead cookies cleared", async () => {
    const cases = [
      ["not hex", `${COOKIE_NAME}=zzzz`, true],
      ["uppercase id", `${COOKIE_NAME}=${newSessionId().toUpperCase()}`, true],
      ["quoted id", `${COOKIE_NAME}="${newSessionId()}"`, true],
      ["63 characters", `${COOKIE_NAME}=${newSessionId().slice(1)}`, true],
      ["well-formed unknown id", `${COOKIE_NAME}=${newSessionId()}`, true],
      // Ambiguous: a host-only clear could only delete this host's cookie and hand the request to
      // the other one (cookie tossing), so nothing is cleared.
      ["two different ids", `${COOKIE_NAME}=${newSessionId()}; ${COOKIE_NAME}=${newSessionId()}`, false],
      ["a 1 KiB value", `${COOKIE_NAME}=${"a".repeat(1024)}`, true],
      ["an oversized Cookie header", `pad=${"x".repeat(9000)}; ${COOKIE_NAME}=${newSessionId()}`, false],
      ["a near-miss name", `Session=${newSessionId()}; xsession=${newSessionId()}; session=${newSessionId()}`, false],
    ];
    for (const [what, cookie, clears] of cases) {
      for (const [path, method] of [["/me", "GET"], ["/sessions/rotate", "POST"]]) {
        const res = await http(path, { method, headers: { cookie, ...JSON_ACCEPT } });
        assert.equal(res.status, 401, `${what} on ${method} ${path}: ${res.status} ${res.text}`);
        const cleared = res.setCookies.some((c) => c.startsWith(`${COOKIE_NAME}=; Max-Age=0`));
        assert.equal(cleared, clears, `${what}: cookie cleared = ${clears}`);
      }
      const page = await http("/me", { headers: { cookie } });
      assert.equal(page.status, 302, `${what}: page redirected`);
      const home = await http("/", { headers: { cookie } });
      assert.equal(home.status, 200, `${what}: / still renders`);
    }
  });

  test("cross-origin posts are refused with 403 (login CSRF)", async () => {
    const id = await login("csrf@example.com");
    for (const headers of [
      { origin: "https://evil.example" },
      { origin: "null" },
      { "sec-fetch-site": "cross-site" },
    ]) {
      const res = await http("/logout", { method: "POST", headers: { cookie: `${COOKIE_NAME}=${id}`, ...headers } });
      assertClientError(res, 403, "cross_origin", `logout with ${JSON.stringify(headers)}`);
    }
    assert.equal((await http("/me", withSession(id))).status, 200, "session survived the refused posts");
    const res = await http("/login", {
      method: "POST",
      headers: { "content-type": "application/json", origin: "https://evil.example" },
      body: JSON.stringify({ email: "victim@example.com" }),
    });
    assertClientError(res, 403, "cross_origin", "cross-origin login");
  });
});

test("/_stats: isolate counters, and warm-up ran once for the isolate", async () => {
  const s = await stats();
  for (const key of ["kv_reads", "kv_writes", "kv_deletes", "kv_lists", "cache_computations"]) {
    assert.equal(typeof s[key], "number", `${key} is a number`);
  }
  assert.ok(s.requests > 10, "many requests served by this isolate");
  assert.equal(s.warm_ups, 1, "validators compiled once per isolate, not per request");
  assert.equal(s.warm_up_error, null);
  assert.equal(s.kv_reads, s.kv.KV.kv_reads + s.kv.CACHE.kv_reads, "totals add up");
  assert.ok(s.kv.KV.kv_writes > 0 && s.kv.KV.kv_deletes > 0, "the session tests above wrote and deleted");
});
