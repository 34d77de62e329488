// A real browser (Debian's headless Chromium, driven by playwright-core) goes through the pages:
// log in with the form, see the user on /me, log out, get sent back to /login.
// The session cookie is `Secure`; Chromium treats http://127.0.0.1 as a secure context, so it
// stores and sends the cookie over plain HTTP there — this test checks that it really does.
// Fails (never skips) when Chromium is missing: set CHROMIUM_BIN to use another binary.

import assert from "node:assert/strict";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";

import { chromium } from "playwright-core";

import { BASE } from "./lib/worker.mjs";

const CHROMIUM = process.env.CHROMIUM_BIN || "/usr/bin/chromium";
const ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

let context;
let profile;

before(async () => {
  assert.ok(existsSync(CHROMIUM), `${CHROMIUM} not found: apt-get install -y chromium (or set CHROMIUM_BIN)`);
  profile = mkdtempSync(join(tmpdir(), "kv-e2e-chromium-"));
  context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: ARGS,
    timeout: 60_000,
  });
});

after(async () => {
  await context?.close();
  if (profile) rmSync(profile, { recursive: true, force: true });
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
  const session = cookies.find((c) => c.name === "session");
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
    (await context.cookies(BASE)).find((c) => c.name === "session"),
    undefined,
    "logout cleared the cookie",
  );
  await page.goto(`${BASE}/me`);
  assert.equal(new URL(page.url()).pathname, "/login", "logged out: /me goes to the login page");
  await page.goto(`${BASE}/`);
  assert.match(await page.textContent("#who"), /Not signed in/);
});
