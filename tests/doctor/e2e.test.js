// The doctor's web page end to end: www/serve.mjs serves the page and starts
// Debian's websockify; headless Chromium (Debian's, driven by
// playwright-core) fills in the form for a local STARTTLS server whose
// certificate comes from the test CA, runs the diagnosis, and the test reads
// the findings the page shows. websockify records what it carried: the
// password never crosses it in any form (TLS runs inside wasm in the page).
// Screenshots of both runs are saved as tests/doctor/doctor-page.png (the
// private-CA finding) and tests/doctor/doctor-page-verified.png.

import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';

import { startDoctorWeb } from '../../www/serve.mjs';
import { launchChromium } from './chromium.js';
import { PASSWORD, USER, startSmtp, testCa } from './fake-smtp.js';

const SCREENSHOT = fileURLToPath(new URL('./doctor-page.png', import.meta.url));
const SCREENSHOT_VERIFIED = fileURLToPath(new URL('./doctor-page-verified.png', import.meta.url));

describe('the doctor page in headless Chromium', { timeout: 120_000 }, () => {
  let smtp;
  let web;
  let browser;
  let page;
  let dir;
  const console = [];

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'wasmtp-doctor-e2e-'));
    smtp = await startSmtp({ mode: 'starttls' });
    web = await startDoctorWeb({ record: join(dir, 'bridge') });
    ({ browser, page } = await launchChromium(dir, console));
  });

  after(async () => {
    await browser?.close();
    await web?.close();
    await smtp?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  /** Fills in the form and runs the diagnosis; resolves when the report is shown. */
  async function run({ ca } = {}) {
    await page.goto(web.url);
    await page.fill('input[name=host]', 'localhost');
    await page.fill('input[name=port]', String(smtp.port));
    await page.selectOption('select[name=security]', 'starttls');
    await page.uncheck('input[name=standard]');
    await page.fill('input[name=user]', USER);
    await page.fill('input[name=pass]', PASSWORD);
    if (ca) await page.fill('textarea[name=ca]', ca);
    await page.click('#run');
    await page.waitForSelector('form[data-state=done]', { timeout: 60_000 });
    assert.ok(await page.isVisible('#findings-section'), `no report; status: ${await page.textContent('#status')}; console: ${console.join(' | ')}`);
    return {
      findings: await page.$$eval('#findings li', (items) =>
        items.map((li) => ({ code: li.dataset.code, port: li.dataset.port, severity: li.className, text: li.textContent })),
      ),
      verdict: await page.$eval('#verdict', (v) => ({ port: v.dataset.port, security: v.dataset.security, text: v.textContent })),
      transcript: await page.$$eval('#transcript tbody tr', (rows) => rows.map((r) => [...r.cells].map((c) => c.textContent))),
      body: await page.textContent('body'),
    };
  }

  test('STARTTLS with a test-CA certificate: the private CA is named, with its fingerprint and the tls.ca fix', async () => {
    const shown = await run();
    const codes = shown.findings.map((f) => f.code);
    assert.deepEqual(codes, ['CERT_PRIVATE_CA', 'AUTH_OFFERED', 'PORT_WORKS']);
    const cert = shown.findings[0];
    assert.equal(cert.port, String(smtp.port));
    assert.equal(cert.severity, 'error');
    assert.match(cert.text, /issued by "CN=wasmtp test CA"/);
    assert.match(cert.text, /pass that CA's certificate as tls\.ca/);
    assert.match(cert.text, /do not turn verification off/);
    const fingerprint = await page.textContent('.port-card .fingerprint');
    assert.match(fingerprint, /^([0-9A-F]{2}:){31}[0-9A-F]{2}$/);
    assert.ok(cert.text.includes(fingerprint), 'the hint shows the fingerprint');
    assert.deepEqual([shown.verdict.port, shown.verdict.security], [String(smtp.port), 'starttls']);
    assert.match(shown.verdict.text, /tls\.ca/);
    // The live transcript: each line explained; STARTTLS before anything else; no login over the unverified link.
    const lines = shown.transcript.map((cells) => cells[2]);
    assert.ok(lines.includes('STARTTLS'));
    assert.ok(shown.transcript.every((cells) => cells[3].length > 0), 'every line has its explanation');
    assert.ok(!lines.some((l) => l.startsWith('AUTH')), 'no AUTH over a certificate nobody verified');
    assert.match(shown.body, /certificate NOT verified/);
    assert.ok(!shown.body.includes(PASSWORD));
    await page.screenshot({ path: SCREENSHOT, fullPage: true });
    assert.ok(statSync(SCREENSHOT).size > 10_000);
  });

  test('with the CA given: verified, and the login succeeds', async () => {
    const shown = await run({ ca: testCa().ca });
    assert.deepEqual(shown.findings.map((f) => f.code), ['AUTH_OFFERED', 'AUTH_OK', 'PORT_WORKS']);
    assert.equal(shown.findings.find((f) => f.code === 'PORT_WORKS').severity, 'ok');
    const auth = shown.transcript.find((cells) => cells[2].startsWith('AUTH'));
    assert.deepEqual(auth.slice(1, 3), ['C →', 'AUTH PLAIN <redacted>']);
    assert.match(auth[3], /only ever sent over verified TLS/);
    assert.ok(!shown.body.includes(PASSWORD));
    await page.screenshot({ path: SCREENSHOT_VERIFIED, fullPage: true });
    // The server got the login, over TLS.
    assert.ok(smtp.commands.some((c) => c.startsWith('AUTH PLAIN')));
  });

  test('the bridge never carried the password, in clear or base64', () => {
    const records = readdirSync(dir).filter((f) => f.startsWith('bridge'));
    assert.ok(records.length > 0, 'websockify recorded the sessions');
    const carried = records.map((f) => readFileSync(join(dir, f), 'latin1')).join('\n');
    assert.match(carried, /EHLO/, 'the record holds the plaintext part of the dialog');
    const plainB64 = Buffer.from(`\0${USER}\0${PASSWORD}`).toString('base64');
    for (const secret of [PASSWORD, Buffer.from(PASSWORD).toString('base64'), plainB64]) {
      assert.ok(!carried.includes(secret), `the bridge saw ${secret}`);
    }
  });
});
