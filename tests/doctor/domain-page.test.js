// The doctor page's "Sending domain" tab end to end: headless Chromium
// (Debian's, driven by playwright-core) runs diagnose({ domain }) from the
// browser build. Its DNS goes over HTTPS to the page's server (/dns-query),
// which forwards to the local DoH endpoint (tests/servers/dns/doh.mjs) in
// front of the fixture's dnsmasq; the MTA-STS policy comes through the
// page's server (/mta-sts) from the fixture's HTTPS server (test CA); port
// 25 is tried through websockify on the test port given as ?mxPort=.
// The screenshot is saved as tests/doctor/doctor-domain-page.png.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';

import { startDohServer } from '../servers/dns/doh.mjs';
import { startDoctorWeb } from '../../www/serve.mjs';
import { launchChromium } from './chromium.js';
import { startDomainFixture } from './domain-fixture.js';

const SCREENSHOT = fileURLToPath(new URL('./doctor-domain-page.png', import.meta.url));

describe('the doctor page: the sending domain tab', { timeout: 120_000 }, () => {
  let fx;
  let doh;
  let web;
  let browser;
  let page;
  let dir;
  const console = [];

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'wasmtp-doctor-domain-e2e-'));
    fx = await startDomainFixture();
    doh = await startDohServer({ plain: true, upstreamPort: fx.dns.port });
    web = await startDoctorWeb({ doh: doh.url, ca: fx.ca });
    ({ browser, page } = await launchChromium(dir, console));
  });

  after(async () => {
    await browser?.close();
    await web?.close();
    await doh?.close();
    await fx?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  /** Opens the tab, fills in the form, runs the check; resolves with what the page shows. */
  async function run({ domain, selector, mxPort }) {
    await page.goto(`${web.url}?mxPort=${mxPort}&mtaStsPort=${fx.policyPort}`);
    await page.click('#tab-domain');
    await page.fill('input[name=domain]', domain);
    if (selector) await page.fill('input[name=selector]', selector);
    await page.click('#domain-run');
    await page.waitForSelector('#domain-doctor[data-state=done]', { timeout: 60_000 });
    assert.ok(await page.isVisible('#domain-findings-section'), `no report; status: ${await page.textContent('#domain-status')}; console: ${console.join(' | ')}`);
    return {
      findings: await page.$$eval('#domain-findings li', (items) => items.map((li) => ({ code: li.dataset.code, severity: li.className, text: li.textContent }))),
      verdict: await page.$eval('#domain-verdict', (v) => ({ mode: v.dataset.mode, text: v.textContent })),
    };
  }

  test('a domain in order, over DoH: every record found, the policy fetched, port 25 reachable: direct', async () => {
    const shown = await run({ domain: 'good.test', selector: 'sel', mxPort: fx.mxPort });
    assert.deepEqual(
      shown.findings.map((f) => f.code),
      ['MX_FOUND', 'SPF_FOUND', 'DMARC_FOUND', 'DMARC_ALIGNMENT', 'DKIM_FOUND', 'MTA_STS_FOUND', 'TLS_RPT_FOUND', 'PORT_25_OPEN'],
    );
    assert.match(shown.findings.find((f) => f.code === 'MTA_STS_FOUND').text, /mode enforce, mx mx\.good\.test/);
    assert.equal(shown.verdict.mode, 'direct');
    assert.ok(doh.queries > 0, 'the DNS went through the DoH endpoint');
    await page.screenshot({ path: SCREENSHOT, fullPage: true });
    assert.ok(statSync(SCREENSHOT).size > 10_000);
  });

  test('port 25 unreachable through the bridge, and a badly set-up domain: relay', async () => {
    const blocked = await run({ domain: 'good.test', mxPort: fx.closedPort });
    assert.equal(blocked.verdict.mode, 'relay');
    assert.match(blocked.verdict.text, /Send through a relay/);
    assert.equal(blocked.findings.find((f) => f.code === 'PORT_25_BLOCKED').severity, 'warning');
    assert.ok(blocked.findings.some((f) => f.code === 'DKIM_NOT_CHECKED'));
    const bad = await run({ domain: 'bad.test', selector: 'sel', mxPort: fx.mxPort });
    const codes = bad.findings.map((f) => f.code);
    for (const code of ['MX_NULL', 'SPF_PASS_ALL', 'DMARC_SYNTAX', 'DKIM_KEY_TOO_SMALL', 'MTA_STS_SYNTAX']) assert.ok(codes.includes(code), `${code} in ${codes}`);
    // The enforced policy whose patterns miss the MX: fetched through the page's server.
    const enforced = await run({ domain: 'enforced.test', mxPort: fx.mxPort });
    assert.equal(enforced.findings.find((f) => f.code === 'MTA_STS_MX_MISMATCH').severity, 'error');
  });
});
