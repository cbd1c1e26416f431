// The domain doctor, diagnose({ domain }) and `wasmtp doctor --domain`,
// against the records, MTA-STS policies and local "MX" of domain-fixture.js
// (dnsmasq, an HTTPS server with the test CA, a listener on a test port).

import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';

import { diagnose } from '../../pkg/src/index.js';
import { startDomainFixture } from './domain-fixture.js';
import { cli } from './run-cli.js';

let fx;
before(async () => {
  fx = await startDomainFixture();
});
after(() => fx?.close());

function check(domain, extra = {}) {
  return diagnose({
    domain,
    dns: { servers: [fx.dns.server] },
    selector: 'sel',
    tls: { ca: fx.ca },
    mxPort: fx.mxPort,
    mtaStsPort: fx.policyPort,
    clientName: 'mail.good.test',
    ...extra,
  });
}

const codes = (report) => report.findings.map((f) => f.code);
const find = (report, code) => {
  const f = report.findings.find((x) => x.code === code);
  assert.ok(f, `${code} not in ${codes(report).join(', ')}`);
  return f;
};

describe('diagnose({ domain })', { timeout: 60_000 }, () => {
  test('a domain in order: every record found, port 25 reachable, verdict direct', async () => {
    const r = await check('good.test');
    assert.deepEqual(codes(r), ['MX_FOUND', 'SPF_FOUND', 'DMARC_FOUND', 'DMARC_ALIGNMENT', 'DKIM_FOUND', 'MTA_STS_FOUND', 'TLS_RPT_FOUND', 'EHLO_NAME', 'PORT_25_OPEN']);
    assert.equal(r.ok, true);
    assert.match(find(r, 'MX_FOUND').message, /10 mx\.good\.test/);
    assert.match(find(r, 'SPF_FOUND').message, /\(2 DNS lookups\)/);
    assert.match(find(r, 'DKIM_FOUND').message, /RSA, 2048 bits/);
    assert.match(r.records.mtaStsPolicy, /mode: enforce/);
    assert.match(find(r, 'MTA_STS_FOUND').message, /mode enforce, mx mx\.good\.test, max_age 86400 s/);
    assert.equal(r.verdict.mode, 'direct');
    assert.equal(r.records.port25.reachable, 'open');
  });

  test('the EHLO name direct delivery would send: localhost, a bare host name or an address literal is a warning', async () => {
    for (const name of ['localhost', 'build-box', '[192.0.2.1]']) {
      const r = await check('good.test', { clientName: name });
      const f = find(r, 'EHLO_NAME_SUSPECT');
      assert.equal(f.severity, 'warning');
      assert.ok(f.message.includes(`"${name}"`), f.message);
      assert.match(f.hint, /clientName/);
      assert.equal(r.ok, true, 'a warning, not an error');
    }
    const good = await check('good.test', { clientName: 'mail.good.test' });
    assert.equal(find(good, 'EHLO_NAME').severity, 'ok');
    assert.equal(good.records.ehloName, 'mail.good.test');
    // Left out: what createClient would send here (this machine's FQDN, else "localhost").
    const unset = await check('good.test', { clientName: undefined });
    assert.ok(typeof unset.records.ehloName === 'string' && unset.records.ehloName.length > 0);
    assert.ok(codes(unset).some((c) => c === 'EHLO_NAME' || c === 'EHLO_NAME_SUSPECT'), codes(unset).join(', '));
    await assert.rejects(check('good.test', { clientName: 'a b' }), (e) => e.code === 'EINPUT' && /clientName/.test(e.message));
  });

  test('MTA-STS: mx patterns that miss the MX, enforced (an error) and in testing (a warning)', async () => {
    const enforced = await check('enforced.test');
    assert.match(find(enforced, 'MTA_STS_FOUND').message, /mode enforce, mx \*\.elsewhere\.test/);
    const miss = find(enforced, 'MTA_STS_MX_MISMATCH');
    assert.equal(miss.severity, 'error');
    assert.match(miss.message, /mx\.enforced\.test does not match/);
    const testing = await check('testing.test');
    assert.equal(find(testing, 'MTA_STS_TESTING').severity, 'info');
    assert.equal(find(testing, 'MTA_STS_MX_MISMATCH').severity, 'warning');
  });

  test('port 25 unreachable: the verdict says relay', async () => {
    const r = await check('good.test', { mxPort: fx.closedPort });
    assert.equal(r.verdict.mode, 'relay');
    assert.match(r.verdict.reason, /cannot reach port \d+ of mx\.good\.test/);
    assert.equal(find(r, 'PORT_25_BLOCKED').severity, 'warning');
  });

  test('weak settings: no MX, ?all, p=none, a 1024-bit key, a policy that cannot be fetched, a broken TLS-RPT', async () => {
    const r = await check('weak.test');
    assert.equal(find(r, 'MX_NONE').severity, 'warning');
    assert.equal(find(r, 'SPF_NEUTRAL_ALL').severity, 'warning');
    assert.equal(find(r, 'DMARC_POLICY_NONE').severity, 'warning');
    assert.match(find(r, 'DKIM_KEY_WEAK').message, /1024 bits/);
    assert.match(find(r, 'MTA_STS_POLICY_UNAVAILABLE').message, /HTTP 404/);
    assert.equal(find(r, 'TLS_RPT_SYNTAX').severity, 'error');
    // No MX: the domain's own address is tried (it has none).
    assert.deepEqual([r.records.port25.host, r.records.port25.reachable], ['weak.test', 'unresolved']);
    assert.equal(r.verdict.mode, 'relay');
    assert.equal(r.ok, false);
  });

  test('bad settings: a null MX, +all, a broken DMARC record, a 512-bit key, an MTA-STS record without id', async () => {
    const r = await check('bad.test');
    assert.match(find(r, 'MX_NULL').message, /null MX/);
    assert.equal(find(r, 'SPF_PASS_ALL').severity, 'error');
    assert.match(find(r, 'DMARC_SYNTAX').message, /p=maybe/);
    assert.match(find(r, 'DKIM_KEY_TOO_SMALL').message, /512 bits/);
    assert.match(find(r, 'MTA_STS_SYNTAX').message, /no id/);
    assert.equal(find(r, 'TLS_RPT_MISSING').severity, 'info');
    assert.equal(r.records.port25, null, 'a null MX has no host to probe');
  });

  test('SPF lookups counted through includes; an include without SPF; two DMARC records; a revoked key', async () => {
    const r = await check('lookups.test');
    assert.match(find(r, 'SPF_TOO_MANY_LOOKUPS').message, /needs 14 DNS lookups/);
    assert.match(find(r, 'SPF_INCLUDE_MISSING').message, /nospf\.lookups\.test/);
    assert.match(find(r, 'DMARC_SYNTAX').message, /2 DMARC records/);
    assert.equal(find(r, 'DKIM_REVOKED').severity, 'error');
    assert.equal(find(r, 'MTA_STS_MISSING').severity, 'info');
    assert.equal(r.records.port25.reachable, 'unresolved');
    assert.equal(find(r, 'PORT_25_BLOCKED').severity, 'warning');
  });

  test('missing and broken records: SPF, DMARC, DKIM; the selector from a signed message', async () => {
    const none = await check('nothing.test', { selector: undefined });
    for (const code of ['MX_NONE', 'SPF_MISSING', 'DMARC_MISSING', 'DKIM_NOT_CHECKED', 'MTA_STS_MISSING', 'TLS_RPT_MISSING']) find(none, code);
    const syntax = await check('syntax.test');
    assert.equal(syntax.findings.filter((f) => f.code === 'SPF_MULTIPLE').length, 1);
    const unusableKey = find(syntax, 'DKIM_SYNTAX');
    assert.equal(unusableKey.severity, 'error');
    assert.match(unusableKey.message, /sel\._domainkey\.syntax\.test/);
    assert.match(unusableKey.hint, /v=DKIM1; k=rsa; p=/);
    assert.match(find(await check('spfsyntax.test'), 'SPF_SYNTAX').message, /ip4:300\.0\.0\.1/);
    assert.equal(find(await check('good.test', { selector: 'other' }), 'DKIM_MISSING').severity, 'error');
    const message = 'DKIM-Signature: v=1; a=rsa-sha256; d=good.test; s=sel;\r\n h=from; bh=x; b=y\r\nFrom: a@good.test\r\n\r\nhi\r\n';
    const signed = await check('good.test', { selector: undefined, message });
    assert.equal(signed.records.dkimSelector, 'sel');
    find(signed, 'DKIM_FOUND');
  });

  test('a DNS server that does not answer: DNS_FAILED', async () => {
    const r = await diagnose({ domain: 'good.test', dns: { servers: [`127.0.0.1:${fx.closedPort}`] }, timeouts: { connect: 1000 } });
    assert.equal(find(r, 'DNS_FAILED').severity, 'error');
    assert.equal(r.verdict.mode, 'relay');
  });

  test('bad options are EINPUT before anything is looked up', async () => {
    await assert.rejects(diagnose({ domain: 'not a domain' }), { code: 'EINPUT' });
    await assert.rejects(diagnose({ domain: 'good.test', ports: [25] }), { code: 'EINPUT', message: /"ports"/ });
    await assert.rejects(diagnose({ domain: 'good.test', mxPort: 0 }), { code: 'EINPUT', message: /mxPort/ });
    await assert.rejects(diagnose({ domain: 'good.test', dns: { server: 'x' } }), { code: 'EINPUT', message: /dns/ });
  });
});

describe('wasmtp doctor --domain', { timeout: 60_000 }, () => {
  const common = () => ['--dns', fx.dns.server, '--ca', join(fx.dir, 'ca.pem'), '--mta-sts-port', String(fx.policyPort)];

  test('--client-name: the EHLO name direct delivery would send is judged', async () => {
    const { code, stdout, stderr } = await cli(['doctor', '--domain', 'good.test', '--selector', 'sel', '--mx-port', String(fx.mxPort), '--client-name', 'localhost', ...common()]);
    assert.equal(code, 0, stderr);
    assert.match(stdout, /EHLO_NAME_SUSPECT: .*"localhost"/);
  });

  test('a domain in order: the report and the direct verdict, exit 0', async () => {
    const { code, stdout, stderr } = await cli(['doctor', '--domain', 'good.test', '--selector', 'sel', '--mx-port', String(fx.mxPort), ...common()]);
    assert.equal(code, 0, stderr);
    assert.match(stdout, /wasmtp doctor: the domain good\.test/);
    assert.match(stdout, /✓ SPF_FOUND: SPF record of good\.test/);
    assert.match(stdout, /✓ DKIM_FOUND: DKIM key at sel\._domainkey\.good\.test: RSA, 2048 bits/);
    assert.match(stdout, /verdict: direct/);
  });

  test('errors exit 1; port 25 refused says relay; --json', async () => {
    const { code, stdout } = await cli(['doctor', '--domain', 'bad.test', '--json', ...common()]);
    assert.equal(code, 1);
    const report = JSON.parse(stdout);
    assert.ok(report.findings.some((f) => f.code === 'SPF_PASS_ALL'));
    const blocked = await cli(['doctor', '--domain', 'good.test', '--mx-port', String(fx.closedPort), ...common()]);
    assert.match(blocked.stdout, /⚠ PORT_25_BLOCKED/);
    assert.match(blocked.stdout, /verdict: relay/);
    assert.match(blocked.stdout, /→ many networks/);
  });

  test('--file: the selector of a signed message', async () => {
    const file = join(fx.dir, 'signed.eml');
    writeFileSync(file, 'DKIM-Signature: v=1; a=rsa-sha256; d=good.test; s=sel; h=from; bh=x; b=y\r\nFrom: a@good.test\r\n\r\nhi\r\n');
    const { stdout } = await cli(['doctor', '--domain', 'good.test', '--file', file, '--mx-port', String(fx.mxPort), ...common()]);
    assert.match(stdout, /DKIM_FOUND: DKIM key at sel\._domainkey\.good\.test/);
  });

  test('usage mistakes exit 2', async () => {
    const both = await cli(['doctor', 'smtp.example.com', '--domain', 'good.test']);
    assert.equal(both.code, 2);
    assert.match(both.stderr, /--domain/);
    const selectorAlone = await cli(['doctor', 'smtp.example.com', '--selector', 'sel']);
    assert.equal(selectorAlone.code, 2);
  });
});
