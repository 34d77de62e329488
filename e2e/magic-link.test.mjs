// Magic-link login on workerd (the demo's second way in, on kv_envelope::tokens): a link logs in
// once; its second use, an expired link, a forged one and a malformed one are all the same
// `400 invalid_link` to the client, told apart only in /_stats; the token never reaches the
// worker's log or a KV key. In headless Chromium: request the link with the form, follow it,
// press the button, land on /me; the link again is refused.
// Then 20 concurrent consumes of one link: on Durable Objects exactly 1 logs in (a conditional
// write); on KV (`best_effort`, no conditional write) the count is measured and printed.
// Needs CONFORMANCE=on (the `ttl_ms` of an expiring link) and DEV_MAGIC_LINKS=on (the link on the
// page): scripts/e2e.sh runs this file on KV and on Durable Objects with both.

import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { after, before, test } from "node:test";

import { launchBrowser } from "./lib/browser.mjs";
import {
  assertClientError,
  BASE,
  COOKIE_NAME,
  http,
  kvGet,
  kvList,
  sessionBackend,
  sessionFromSetCookie,
  sleep,
  stats,
  withSession,
  WORKER_LOG,
} from "./lib/worker.mjs";

const fresh = (what) => `${what}.${randomBytes(4).toString("hex")}@example.com`;

/** POST /login/link (JSON): the dev link's token. */
async function requestLink(email, query = "") {
  const res = await http(`/login/link${query}`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ email }),
  });
  assert.equal(res.status, 200, res.text);
  const body = res.json();
  assert.equal(body.sent, true);
  assert.match(body.devLink ?? "", /^\/login\/link\?token=[0-9a-f]{64}$/, "DEV_MAGIC_LINKS=on shows the link");
  return new URL(body.devLink, BASE).searchParams.get("token");
}

function confirm(token) {
  return http("/login/link/confirm", {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: `token=${encodeURIComponent(token)}`,
  });
}

function refusals(s) {
  return s.token_refusals ?? {};
}

function assertRefused(res, what) {
  const body = assertClientError(res, 400, "invalid_link", what);
  assert.equal(body.message, "this link is invalid or has expired", `${what}: one message for every refusal`);
  assert.equal(sessionFromSetCookie(res), null, `${what}: no session`);
}

test("a link logs in once; replayed, expired, forged and malformed links are refused alike", async () => {
  const email = fresh("magic");
  const before = refusals(await stats());
  const token = await requestLink(email);

  // GET shows the button and spends nothing (mail scanners fetch links).
  for (let i = 0; i < 2; i++) {
    const page = await http(`/login/link?token=${token}`);
    assert.equal(page.status, 200, page.text);
    assert.match(page.text, /action="\/login\/link\/confirm"/);
    assert.equal(page.headers.get("referrer-policy"), "no-referrer");
  }

  const used = await confirm(token);
  assert.equal(used.status, 303, used.text);
  assert.equal(used.headers.get("location"), "/me");
  const id = sessionFromSetCookie(used);
  assert.match(id ?? "", /^[0-9a-f]{64}$/);
  const me = await http("/me", withSession(id, { accept: "application/json" }));
  assert.equal(me.status, 200, me.text);
  assert.equal(me.json().email, email);

  assertRefused(await confirm(token), "the same link again");
  assertRefused(await confirm(randomBytes(32).toString("hex")), "a forged link");
  assertRefused(await confirm("not-a-token"), "a malformed link");
  const shortLived = await requestLink(fresh("expiring"), "?ttl_ms=1000");
  await sleep(1500);
  assertRefused(await confirm(shortLived), "an expired link");

  const after = refusals(await stats());
  const d = (k) => (after[k] ?? 0) - (before[k] ?? 0);
  assert.deepEqual(
    { used: d("token_used"), unknown: d("token_unknown"), malformed: d("token_malformed"), expired: d("token_expired") },
    { used: 1, unknown: 1, malformed: 1, expired: 1 },
    "told apart in /_stats only",
  );

  // Stored hashed: no key carries the token; on KV its record is under its SHA-256.
  const hash = createHash("sha256").update(token).digest("hex");
  const keys = (await kvList()).map((k) => k.name);
  assert.ok(!keys.some((k) => k.includes(token)), "no KV key carries the token");
  if ((await sessionBackend()) === "kv") {
    assert.notEqual(await kvGet(`token:${hash}`), null, "the used record stays until it expires");
  } else {
    assert.ok(!keys.some((k) => k.includes(hash)), "on Durable Objects nothing is in KV");
  }
  const log = readFileSync(WORKER_LOG, "utf8");
  for (const secret of [token, shortLived, id]) assert.ok(!log.includes(secret), "no token or id in the worker's log");
});

test("in Chromium: ask for a link, follow it, press the button; the link again is refused", async () => {
  const browser = await launchBrowser();
  try {
    const page = browser.context.pages()[0] ?? (await browser.context.newPage());
    const email = fresh("browser.magic");
    await page.goto(`${BASE}/login`);
    await page.fill("#link-email", email);
    await Promise.all([page.waitForURL(`${BASE}/login/link`), page.click("#send-link")]);
    const href = await page.getAttribute("#magic-link", "href");
    assert.match(href ?? "", /^\/login\/link\?token=[0-9a-f]{64}$/);
    await page.click("#magic-link");
    await page.waitForSelector("#use-link");
    await Promise.all([page.waitForURL(`${BASE}/me`), page.click("#use-link")]);
    assert.equal(JSON.parse(await page.textContent("body")).email, email);
    assert.ok((await browser.context.cookies(BASE)).some((c) => c.name === COOKIE_NAME));

    await page.goto(`${BASE}${href}`);
    const [response] = await Promise.all([page.waitForResponse(/\/login\/link\/confirm$/), page.click("#use-link")]);
    assert.equal(response.status(), 400);
    assert.equal(JSON.parse(await page.textContent("body")).error, "invalid_link");
  } finally {
    await browser.close();
  }
});

test("20 concurrent consumes of one link: exactly 1 on Durable Objects, measured on KV", async () => {
  const backend = await sessionBackend();
  const s = await stats();
  assert.equal(s.tokens_exactly_once, backend === "durable", "exactly once only on Durable Objects");
  const before = refusals(s);
  const token = await requestLink(fresh("race"));
  const answers = await Promise.all(Array.from({ length: 20 }, () => confirm(token)));
  const statuses = answers.map((r) => r.status);
  const wins = statuses.filter((st) => st === 303).length;
  for (const r of answers) if (r.status !== 303) assertRefused(r, "a losing consume");
  console.log(`# 20 concurrent consumes on ${backend}: ${wins} logged in, ${20 - wins} refused`);
  const used = (refusals(await stats()).token_used ?? 0) - (before.token_used ?? 0);
  assert.equal(used, 20 - wins, "every loser was refused as used");
  if (backend === "durable") {
    assert.equal(wins, 1, `exactly one consume wins on Durable Objects: ${statuses.join(",")}`);
  } else {
    assert.ok(wins >= 1, "on KV at least the first consume wins");
  }
});
