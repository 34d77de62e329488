// "Your devices" on workerd: two browsers (two Chromium profiles with the User-Agents of a
// Linux Firefox and an iPhone) log in as one user; the first sees both on /devices, this one
// marked, and signs the other out, which is then logged out. Run on KV (local KV has no
// propagation window: KV's ~60 s at other locations is docs/sessions.md's) and again with
// SESSION_BACKEND=durable (scripts/e2e.sh), where it is at once everywhere by construction.
// Then the JSON API's edges: handles reach nothing, another user's handle and a made-up one are
// the same 404, cross-origin revokes are refused, no session is 401.

import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { after, before, test } from "node:test";

import { launchBrowser } from "./lib/browser.mjs";
import {
  assertClientError,
  BASE,
  COOKIE_NAME,
  http,
  kvList,
  login,
  sessionBackend,
  withSession,
  WORKER_LOG,
} from "./lib/worker.mjs";
import { readFileSync } from "node:fs";

const FIREFOX_LINUX = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0";
const IPHONE_SAFARI =
  "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1";

let laptop;
let phone;

before(async () => {
  laptop = await launchBrowser({ userAgent: FIREFOX_LINUX });
  phone = await launchBrowser({ userAgent: IPHONE_SAFARI });
});

after(async () => {
  await laptop?.close();
  await phone?.close();
});

const fresh = (what) => `${what}.${randomBytes(4).toString("hex")}@example.com`;

async function formLogin(context, email) {
  const page = context.pages()[0] ?? (await context.newPage());
  await page.goto(`${BASE}/login`);
  await page.fill("#email", email);
  await Promise.all([page.waitForURL(`${BASE}/me`), page.click("#login")]);
  assert.equal(JSON.parse(await page.textContent("body")).email, email);
  return page;
}

test("two browsers as one user: one lists both and signs the other out, which is logged out", async () => {
  const email = fresh("devices");
  const onLaptop = await formLogin(laptop.context, email);
  const onPhone = await formLogin(phone.context, email);

  await onLaptop.goto(`${BASE}/`);
  await Promise.all([onLaptop.waitForURL(`${BASE}/devices`), onLaptop.click("#devices-link")]);
  const items = onLaptop.locator("li.device");
  assert.equal(await items.count(), 2, await onLaptop.content());
  const texts = await items.allTextContents();
  // This device first, marked; named from the User-Agent, never the header itself.
  assert.match(texts[0], /^Firefox on Linux \(this device\)/);
  assert.match(texts[1], /^Safari on iPhone/);
  assert.doesNotMatch(texts[1], /this device/);
  const html = await onLaptop.content();
  assert.ok(!html.includes("Gecko/20100101"), "the raw User-Agent is not shown");
  for (const c of await laptop.context.cookies(BASE)) {
    if (c.name === COOKIE_NAME) {
      assert.ok(!html.includes(c.value), "the page does not carry the session id");
      const hash = createHash("sha256").update(c.value).digest("hex");
      assert.ok(!html.includes(hash), "nor its at-rest hash");
    }
  }

  // The phone is signed in; the laptop signs it out.
  await onPhone.goto(`${BASE}/me`);
  assert.equal(new URL(onPhone.url()).pathname, "/me");
  await Promise.all([
    onLaptop.waitForURL(`${BASE}/devices`),
    items.nth(1).locator("button.revoke").click(),
  ]);
  assert.equal(await onLaptop.locator("li.device").count(), 1, "one device left");
  assert.match(await onLaptop.locator("li.device").first().textContent(), /Firefox on Linux \(this device\)/);

  // The phone is logged out (its next request finds no session).
  await onPhone.goto(`${BASE}/me`);
  assert.equal(new URL(onPhone.url()).pathname, "/login", `phone after the revoke (${await sessionBackend()})`);

  // Signing this device out is a logout: back to /login, the cookie cleared.
  await Promise.all([
    onLaptop.waitForURL(`${BASE}/login`),
    onLaptop.locator("li.device button.revoke").first().click(),
  ]);
  assert.equal(
    (await laptop.context.cookies(BASE)).find((c) => c.name === COOKIE_NAME),
    undefined,
    "revoking this device cleared its cookie",
  );
});

async function devicesOf(id) {
  const res = await http("/sessions/devices", withSession(id, { accept: "application/json" }));
  assert.equal(res.status, 200, res.text);
  return res.json().devices;
}

async function revoke(id, handle, headers = {}) {
  return http("/devices/revoke", {
    method: "POST",
    ...withSession(id, { "content-type": "application/json", ...headers }),
    body: JSON.stringify({ handle }),
  });
}

test("the JSON API: handles reach nothing, only the user's own devices are revoked", async () => {
  const email = fresh("api");
  const a = await login(email);
  const b = await login(email);
  const other = await login(fresh("other"));
  const devices = await devicesOf(a);
  assert.equal(devices.length, 2);
  assert.deepEqual(
    devices.map((d) => d.current),
    [true, false],
  );
  for (const d of devices) {
    assert.match(d.handle, /^[0-9a-f]{32}$/);
    assert.ok(d.createdAt > 0 && d.lastSeenAt >= d.createdAt && d.expiresAt > d.lastSeenAt, JSON.stringify(d));
    for (const id of [a, b]) {
      assert.ok(!id.includes(d.handle), "a handle is no part of a session id");
      assert.ok(!createHash("sha256").update(id).digest("hex").includes(d.handle), "nor of its hash");
    }
  }
  const handleOfB = devices[1].handle;
  if ((await sessionBackend()) === "kv") {
    const keys = (await kvList()).map((k) => k.name);
    assert.ok(!keys.some((k) => k.includes(handleOfB)), "no KV key carries a handle");
  }

  // Another user's session cannot reach b, nor can a made-up handle: the same 404.
  assertClientError(await revoke(other, handleOfB), 404, "no_such_device", "another user's handle");
  assertClientError(await revoke(a, "0".repeat(32)), 404, "no_such_device", "a made-up handle");
  assertClientError(await revoke(a, "not-a-handle"), 400, "bad_handle", "a malformed handle");
  // Cross-origin: refused before anything is read.
  const cross = await revoke(a, handleOfB, { origin: "https://evil.example", "sec-fetch-site": "cross-site" });
  assert.equal(cross.status, 403, cross.text);
  // No session: the API answers 401 JSON.
  const anon = await http("/sessions/devices", { headers: { accept: "application/json" } });
  assert.equal(anon.status, 401, anon.text);
  assert.equal((await devicesOf(b)).length, 2, "b still works after the refused attempts");

  const res = await revoke(a, handleOfB);
  assert.equal(res.status, 200, res.text);
  assert.deepEqual(res.json(), { revoked: "device" });
  const gone = await http("/sessions/devices", withSession(b, { accept: "application/json" }));
  assert.equal(gone.status, 401, "b is logged out at once");
  assert.equal((await devicesOf(a)).length, 1);
  assert.equal((await devicesOf(other)).length, 1, "the other user is untouched");

  const self = await revoke(a, (await devicesOf(a))[0].handle);
  assert.deepEqual(self.json(), { revoked: "this_device" });
  assert.ok(self.setCookies.some((c) => c.startsWith(`${COOKIE_NAME}=;`)), self.setCookies.join(" | "));
  const log = readFileSync(WORKER_LOG, "utf8");
  for (const secret of [a, b, handleOfB]) assert.ok(!log.includes(secret), "no id or handle in the worker's log");
});
