// A real browser (Debian's headless Chromium, driven by playwright-core) goes through the pages:
// log in with the form, see the user on /me, log out, get sent back to /login.
// The session cookie is `Secure`; Chromium treats http://127.0.0.1 as a secure context, so it
// stores and sends the cookie over plain HTTP there — this test checks that it really does.
// Fails (never skips) when Chromium is missing: set CHROMIUM_BIN to use another binary.

import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import { launchBrowser, serve } from "./lib/browser.mjs";
import { BASE, COOKIE_NAME, login } from "./lib/worker.mjs";

let browser;
let context;

before(async () => {
  browser = await launchBrowser();
  context = browser.context;
});

after(async () => {
  await browser?.close();
});

test("log in through the form, see the user on /me, log out, back to /login", async () => {
  const page = context.pages()[0] ?? (await context.newPage());
  const statuses = [];
  page.on("response", (r) => statuses.push(`${r.request().method()} ${new URL(r.url()).pathname} ${r.status()}`));

  // Not signed in: /me sends the browser to the login page.
  await page.goto(`${BASE}/me`);
  assert.equal(new URL(page.url()).pathname, "/login");

  await page.fill("#email", "browser.user@example.com");
  await Promise.all([page.waitForURL(`${BASE}/me`), page.click("#login")]);
  const me = JSON.parse(await page.textContent("body"));
  assert.equal(me.email, "browser.user@example.com");
  assert.match(me.userId, /^u_[0-9a-f]{16}$/);

  // The cookie is stored with its attributes and is really sent back (the 200 above needs it).
  const cookies = await context.cookies(BASE);
  const session = cookies.find((c) => c.name === COOKIE_NAME);
  assert.ok(session, `session cookie stored: ${JSON.stringify(cookies)}`);
  assert.equal(session.secure, true);
  assert.equal(session.httpOnly, true);
  assert.equal(session.sameSite, "Lax");
  assert.match(session.value, /^[0-9a-f]{64}$/);
  assert.ok(statuses.includes("POST /login 303"), statuses.join(", "));
  assert.ok(statuses.includes("GET /me 200"), statuses.join(", "));

  // The home page shows the user and offers the logout button.
  await page.goto(`${BASE}/`);
  assert.match(await page.textContent("#who"), /Signed in as browser\.user@example\.com/);
  assert.equal(await page.evaluate(() => document.cookie), "", "HttpOnly: scripts cannot read it");

  await Promise.all([page.waitForURL(`${BASE}/login`), page.click("#logout")]);
  assert.ok(statuses.includes("POST /logout 303"), statuses.join(", "));
  assert.equal(
    (await context.cookies(BASE)).find((c) => c.name === COOKIE_NAME),
    undefined,
    "logout cleared the cookie",
  );
  await page.goto(`${BASE}/me`);
  assert.equal(new URL(page.url()).pathname, "/login", "logged out: /me goes to the login page");
  await page.goto(`${BASE}/`);
  assert.match(await page.textContent("#who"), /Not signed in/);
});

// Regression (issue 12.1): a sibling subdomain tossed `session=<attacker>; Domain=.example.test`
// next to the victim's host-only cookie; the gate answered "ambiguous" with a host-only clear,
// which deleted the victim's cookie, and the next request was the attacker's session (login
// CSRF). The demo now uses the library's default `__Host-session`: Chromium refuses a `__Host-`
// cookie that carries `Domain`, and a tossed bare `session` cookie is another cookie.
// `*.localhost` resolves to loopback in Chromium and is a secure context, so the worker serves
// `app.site.localhost` and a second server plays the attacker's sibling `evil.site.localhost`.
test("a cookie tossed from a sibling subdomain cannot take over the session", async () => {
  const port = new URL(BASE).port;
  const app = `http://app.site.localhost:${port}`;
  const attacker = await login("attacker@example.com");
  const evil = await serve((req, res) => {
    res.setHeader("set-cookie", [
      `${COOKIE_NAME}=${attacker}; Domain=site.localhost; Path=/; Secure; HttpOnly; SameSite=Lax`,
      `session=${attacker}; Domain=site.localhost; Path=/; Secure; HttpOnly; SameSite=Lax`,
      `session=${attacker}; Domain=site.localhost; Path=/me; Secure; HttpOnly; SameSite=Lax`,
    ]);
    res.end("tossed");
  });
  try {
    await context.clearCookies();
    const page = await context.newPage();
    // The victim signs in on the app's host through the form: a host-only `__Host-` cookie.
    await page.goto(`${app}/login`);
    await page.fill("#email", "victim@example.com");
    await Promise.all([page.waitForURL(`${app}/me`), page.click("#login")]);
    const own = (await context.cookies(`${app}/`)).find((c) => c.name === COOKIE_NAME);
    assert.ok(own, "the app's cookie is stored for app.site.localhost");
    const victim = own.value;
    await page.goto(`${app}/`);
    assert.match(await page.textContent("#who"), /Signed in as victim@example\.com/);

    // The attacker's page on the sibling subdomain tosses its cookies.
    await page.goto(`http://evil.site.localhost:${evil.port}/`);
    assert.equal(await page.textContent("body"), "tossed");
    const jar = await context.cookies(`${app}/me`);
    assert.ok(
      jar.some((c) => c.name === "session" && c.domain === ".site.localhost"),
      `the bare-name domain cookie was stored (the toss really happened): ${JSON.stringify(jar)}`,
    );
    assert.ok(
      !jar.some((c) => c.name === COOKIE_NAME && c.domain.includes("site.localhost") && c.domain.startsWith(".")),
      "Chromium refused the __Host- cookie with a Domain",
    );

    // Twice: a clearing cookie on the first response would show on the second.
    for (const path of ["/", "/me", "/"]) {
      await page.goto(`${app}${path}`);
      if (path === "/") {
        assert.match(await page.textContent("#who"), /Signed in as victim@example\.com/, `after the toss, ${path}`);
      } else {
        assert.equal(JSON.parse(await page.textContent("body")).email, "victim@example.com", `after the toss, ${path}`);
      }
    }
    const mine = (await context.cookies(`${app}/`)).find((c) => c.name === COOKIE_NAME);
    assert.equal(mine?.value, victim, "the victim's cookie is still there");
    await page.close();
  } finally {
    await evil.close();
    await context.clearCookies();
  }
});
