// Headless Chromium for the e2e tests (Debian's chromium, driven by playwright-core), and a tiny
// second server to play another site. Fails (never skips) when Chromium is missing: set
// CHROMIUM_BIN to use another binary.

import assert from "node:assert/strict";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { chromium } from "playwright-core";

const CHROMIUM = process.env.CHROMIUM_BIN || "/usr/bin/chromium";
const ARGS = [
  "--headless",
  // *.localhost is loopback anyway; the rule keeps Chromium off ::1 (the servers listen on
  // 127.0.0.1 only).
  "--host-resolver-rules=MAP *.localhost 127.0.0.1",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

/** A persistent Chromium context on a fresh profile; `close()` ends both. `userAgent`: the
 * `User-Agent` it sends (another browser's, to tell two devices apart). */
export async function launchBrowser({ userAgent } = {}) {
  assert.ok(existsSync(CHROMIUM), `${CHROMIUM} not found: apt-get install -y chromium (or set CHROMIUM_BIN)`);
  const profile = mkdtempSync(join(tmpdir(), "kv-e2e-chromium-"));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: ARGS,
    timeout: 60_000,
    ...(userAgent ? { userAgent } : {}),
  });
  return {
    context,
    async close() {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

/** Serve `handler` on a free loopback port; returns { port, close }. `close` also ends the
 * browser's keep-alive connections, which would otherwise hold it open. */
export function serve(handler) {
  return new Promise((resolve) => {
    const server = createServer(handler);
    server.listen(0, "127.0.0.1", () =>
      resolve({
        port: server.address().port,
        close: () =>
          new Promise((r) => {
            server.close(r);
            server.closeAllConnections();
          }),
      }),
    );
  });
}
