// Headless Chromium (Debian's, driven by playwright-core) for the page's
// end-to-end tests: one page, its console and errors collected.

import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';

import { chromium } from 'playwright-core';

const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';

/**
 * Launches Chromium with its profile in `dir`; console lines and page errors go to `log`.
 * @returns {Promise<{ browser, page }>}
 */
export async function launchChromium(dir, log) {
  // No silent skip: without a browser every test fails with the reason.
  assert.ok(existsSync(CHROMIUM), `no ${CHROMIUM}: scripts/test-doctor.sh installs it (apt-get install -y chromium), or set CHROMIUM`);
  const browser = await chromium.launchPersistentContext(join(dir, 'profile'), {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    viewport: { width: 1200, height: 900 },
  });
  const page = browser.pages()[0] ?? (await browser.newPage());
  page.on('console', (m) => log.push(`${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => log.push(`pageerror: ${e.message}`));
  return { browser, page };
}
