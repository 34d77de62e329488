// The axum example worker (examples/axum-worker) in headless Chromium: what the second black-box
// review found open in the code users copy (issue 26), checked in the browser that enforces
// the cookie rules. Runs in the axum worker's e2e run (scripts/e2e.sh: *axum*.test.mjs).
//
// * Cookie tossing: tower-sessions' cookie is `__Host-id`. A sibling subdomain can toss a bare
//   `id` cookie with `Domain=` (which the old cookie name would have let choose the session:
//   with two `id` cookies tower-sessions serves the last, the attacker's), but Chromium refuses
//   a `__Host-id` with `Domain`, so the app's own cookie is the only one that counts.
// * Login CSRF: a page on another site auto-submits a login form to the app; the same-origin
//   rule (`SameOriginLayer`) answers 403 and no session cookie is stored.
// `*.localhost` resolves to loopback in Chromium and is a secure context (`Secure` cookies over
// plain HTTP), so the worker is served as `app.site.localhost`; a second server plays the
// sibling `evil.site.localhost`, and `127.0.0.1` another site altogether.

import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import { launchBrowser, serve } from "./lib/browser.mjs";
import { BASE } from "./lib/worker.mjs";

const PORT = new URL(BASE).port;
const APP = `http://app.site.localhost:${PORT}`;
const TOWER_COOKIE = "__Host-id";

let browser;
let context;

before(async () => {
  browser = await launchBrowser();
  context = browser.context;
});

after(async () => {
  await browser?.close();
});

/** Log in to tower-sessions from a page of the app (same origin), as the app's own script would. */
async function towerLoginInPage(page, user) {
  await page.goto(`${APP}/healthz`);
  const status = await page.evaluate(async (u) => {
    const res = await fetch("/tower/login", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ user: u }),
    });
    return res.status;
  }, user);
  assert.equal(status, 200, `tower login of ${user}`);
}

async function towerUser(page) {
  await page.goto(`${APP}/tower/me`);
  return JSON.parse(await page.textContent("body"));
}

test("a cookie tossed from a sibling subdomain cannot choose the tower-sessions session", async () => {
  await context.clearCookies();
  const page = await context.newPage();
  // The attacker's own session, logged in from a page of the app in a context of its own.
  const attackerBrowser = await launchBrowser();
  const attackerPage = await attackerBrowser.context.newPage();
  await towerLoginInPage(attackerPage, "mallory");
  const attacker = (await attackerBrowser.context.cookies(`${APP}/`)).find((c) => c.name === TOWER_COOKIE).value;
  await attackerBrowser.close();

  const evil = await serve((req, res) => {
    res.setHeader("set-cookie", [
      // What tossing needs: a Domain cookie of the session cookie's name. Chromium refuses
      // this one (a `__Host-` cookie may not carry Domain)...
      `${TOWER_COOKIE}=${attacker}; Domain=site.localhost; Path=/; Secure; HttpOnly; SameSite=Lax`,
      // ...and accepts this one, which the old cookie name `id` would have read (the last wins).
      `id=${attacker}; Domain=site.localhost; Path=/; Secure; HttpOnly; SameSite=Lax`,
    ]);
    res.end("tossed");
  });
  try {
    await towerLoginInPage(page, "victim");
    const own = (await context.cookies(`${APP}/`)).find((c) => c.name === TOWER_COOKIE);
    assert.ok(own, "the app's __Host-id cookie is stored");
    assert.equal(own.secure, true);
    assert.equal(own.path, "/");
    assert.equal(own.domain, "app.site.localhost", "host-only");
    assert.deepEqual(await towerUser(page), { user: "victim" });

    await page.goto(`http://evil.site.localhost:${evil.port}/`);
    assert.equal(await page.textContent("body"), "tossed");
    const jar = await context.cookies(`${APP}/`);
    assert.ok(
      jar.some((c) => c.name === "id" && c.domain === ".site.localhost"),
      `the bare-name domain cookie was stored (the toss really happened): ${JSON.stringify(jar)}`,
    );
    assert.ok(
      !jar.some((c) => c.name === TOWER_COOKIE && c.domain.startsWith(".")),
      "Chromium refused the __Host- cookie with a Domain",
    );
    for (let i = 0; i < 2; i++) {
      assert.deepEqual(await towerUser(page), { user: "victim" }, `after the toss (${i})`);
    }
    await page.close();
  } finally {
    await evil.close();
    await context.clearCookies();
  }
});

test("a form on another site cannot log the browser in (login CSRF), on either front end", async () => {
  await context.clearCookies();
  const page = await context.newPage();
  const forms = [
    ["/typed/login", "email", "victim@example.com"],
    ["/tower/login", "user", "victim"],
  ];
  const evil = await serve((req, res) => {
    const [path, field, value] = forms[Number(new URL(req.url, "http://x").searchParams.get("form") ?? 0)];
    res.setHeader("content-type", "text/html");
    res.end(`<form id="f" method="POST" action="${APP}${path}">
      <input name="${field}" value="${value}"></form>
      <script>document.getElementById("f").submit()</script>`);
  });
  try {
    for (const [i, [path]] of forms.entries()) {
      const answered = page.waitForResponse((r) => new URL(r.url()).pathname === path);
      // 127.0.0.1 is another site than app.site.localhost: Sec-Fetch-Site cross-site.
      await page.goto(`http://127.0.0.1:${evil.port}/?form=${i}`);
      const res = await answered;
      assert.equal(res.status(), 403, `${path}: a cross-site form post is refused`);
      assert.equal((await res.request().headerValue("sec-fetch-site")) ?? "", "cross-site");
      const jar = await context.cookies(`${APP}/`);
      assert.deepEqual(
        jar.filter((c) => c.name === TOWER_COOKIE || c.name === "__Host-session"),
        [],
        `${path}: no session cookie was stored`,
      );
    }
    // The same forms from the app's own pages still log in.
    await towerLoginInPage(page, "own.page");
    assert.deepEqual(await towerUser(page), { user: "own.page" });
  } finally {
    await evil.close();
    await page.close();
    await context.clearCookies();
  }
});
