// The domain doctor, diagnose({ domain }) and `wasmtp doctor --domain`,
// against records served by a private dnsmasq on loopback
// (tests/servers/dns/start.sh), an MTA-STS policy served over HTTPS with a
// certificate of the test CA (tests/servers/make-certs.sh), and a local
// "MX" on a test port (mxPort) for the relay-or-direct verdict.

import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer as createHttpsServer } from 'node:https';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';

import { diagnose } from '../../pkg/src/index.js';
import { startDns } from '../../pkg/test/helpers/dns.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const BIN = join(ROOT, 'pkg/bin/wasmtp.js');

/** A DKIM key record for an RSA key of `bits` bits, as dnsmasq TXT strings (255 bytes each). */
function dkimRecord(bits) {
  const { publicKey } = generateKeyPairSync('rsa', { modulusLength: bits });
  const record = `v=DKIM1; k=rsa; p=${publicKey.export({ type: 'spki', format: 'der' }).toString('base64')}`;
  return record.match(/.{1,255}/g).map((s) => `"${s}"`).join(',');
}

const txt = (name, value) => `txt-record=${name},"${value}"`;

const ZONE = [
  // good.test: everything in order.
  'mx-host=good.test,mx.good.test,10',
  'host-record=mx.good.test,127.0.0.1',
  'host-record=mta-sts.good.test,127.0.0.1',
  txt('good.test', 'v=spf1 mx include:_spf.good.test -all'),
  txt('_spf.good.test', 'v=spf1 ip4:192.0.2.0/24 -all'),
  txt('_dmarc.good.test', 'v=DMARC1; p=reject; rua=mailto:d@good.test'),
  `txt-record=sel._domainkey.good.test,${dkimRecord(2048)}`,
  txt('_mta-sts.good.test', 'v=STSv1; id=20261204'),
  txt('_smtp._tls.good.test', 'v=TLSRPTv1; rua=mailto:tls@good.test'),
  // weak.test: no MX, ?all, p=none, a 1024-bit key, a policy that is not served.
  txt('weak.test', 'v=spf1 a ?all'),
  txt('_dmarc.weak.test', 'v=DMARC1; p=none'),
  `txt-record=sel._domainkey.weak.test,${dkimRecord(1024)}`,
  txt('_mta-sts.weak.test', 'v=STSv1; id=1'),
  'host-record=mta-sts.weak.test,127.0.0.1',
  txt('_smtp._tls.weak.test', 'v=TLSRPTv1; rua=tls@weak.test'),
  // bad.test: a null MX, +all, a broken DMARC record, a 512-bit key, an MTA-STS record without id.
  'dns-rr=bad.test,15,000000',
  txt('bad.test', 'v=spf1 +all'),
  txt('_dmarc.bad.test', 'v=DMARC1; p=maybe'),
  `txt-record=sel._domainkey.bad.test,${dkimRecord(512)}`,
  txt('_mta-sts.bad.test', 'v=STSv1;'),
  // lookups.test: too many lookups through includes, an include without SPF, two DMARC records, a revoked key.
  'mx-host=lookups.test,mx.lookups.test,10',
  txt('lookups.test', 'v=spf1 a mx include:l1.lookups.test include:l2.lookups.test include:nospf.lookups.test -all'),
  txt('l1.lookups.test', 'v=spf1 a a a include:l3.lookups.test ~all'),
  txt('l2.lookups.test', 'v=spf1 mx mx ptr -all'),
  txt('l3.lookups.test', 'v=spf1 exists:%{i}.x.lookups.test a -all'),
  txt('nospf.lookups.test', 'site-verification=abc'),
  txt('_dmarc.lookups.test', 'v=DMARC1; p=none'),
  txt('_dmarc.lookups.test', 'v=DMARC1; p=reject'),
  txt('sel._domainkey.lookups.test', 'v=DKIM1; p='),
  // enforced.test and testing.test: policies whose mx patterns miss the MX.
  'mx-host=enforced.test,mx.enforced.test,10',
  'host-record=mta-sts.enforced.test,127.0.0.1',
  txt('_mta-sts.enforced.test', 'v=STSv1; id=7'),
  'mx-host=testing.test,mx.testing.test,10',
  'host-record=mta-sts.testing.test,127.0.0.1',
  txt('_mta-sts.testing.test', 'v=STSv1; id=7'),
  // syntax.test: two SPF records.
  txt('syntax.test', 'v=spf1 -all'),
  txt('syntax.test', 'v=spf1 mx -all'),
  // spfsyntax.test: a record that does not parse.
  txt('spfsyntax.test', 'v=spf1 ip4:300.0.0.1 -all'),
];

let dns;
let dir;
let policyServer;
let mx;
let closedMxPort;

async function freeClosedPort() {
  const server = createServer();
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** A certificate for the policy hosts, signed by the test CA. */
function policyCertificate() {
  execFileSync('bash', [join(ROOT, 'tests/servers/make-certs.sh'), dir]);
  writeFileSync(join(dir, 'sts.cnf'), 'subjectAltName = DNS:mta-sts.good.test, DNS:mta-sts.weak.test, DNS:mta-sts.enforced.test, DNS:mta-sts.testing.test\nextendedKeyUsage = serverAuth\n');
  const run = (...args) => execFileSync('openssl', args, { cwd: dir, stdio: 'ignore' });
  run('req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-subj', '/CN=mta-sts.good.test', '-keyout', 'sts.key', '-out', 'sts.csr');
  run('x509', '-req', '-in', 'sts.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-days', '2', '-extfile', 'sts.cnf', '-out', 'sts.pem');
  return { key: readFileSync(join(dir, 'sts.key')), cert: readFileSync(join(dir, 'sts.pem')), ca: readFileSync(join(dir, 'ca.pem'), 'utf8') };
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'wasmtp-domain-doctor-'));
  dns = await startDns(ZONE);
  const { key, cert } = policyCertificate();
  const policies = {
    'mta-sts.good.test': 'version: STSv1\r\nmode: enforce\r\nmx: mx.good.test\r\nmax_age: 86400\r\n',
    'mta-sts.enforced.test': 'version: STSv1\nmode: enforce\nmx: *.elsewhere.test\nmax_age: 86400\n',
    'mta-sts.testing.test': 'version: STSv1\nmode: testing\nmx: mx1.testing.test\nmax_age: 600\n',
  };
  policyServer = createHttpsServer({ key, cert }, (req, res) => {
    const policy = req.url === '/.well-known/mta-sts.txt' ? policies[req.headers.host] : undefined;
    if (policy) {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end(policy);
    } else {
      res.writeHead(404);
      res.end();
    }
  });
  await new Promise((resolve) => policyServer.listen(0, '127.0.0.1', resolve));
  mx = createServer((socket) => socket.end('220 mx.good.test ESMTP\r\n'));
  await new Promise((resolve) => mx.listen(0, '127.0.0.1', resolve));
  closedMxPort = await freeClosedPort();
});

after(async () => {
  dns?.stop();
  await new Promise((resolve) => (policyServer ? policyServer.close(resolve) : resolve()));
  await new Promise((resolve) => (mx ? mx.close(resolve) : resolve()));
  if (dir) rmSync(dir, { recursive: true, force: true });
});

function check(domain, extra = {}) {
  return diagnose({
    domain,
    dns: { servers: [dns.server] },
    selector: 'sel',
    tls: { ca: readFileSync(join(dir, 'ca.pem'), 'utf8') },
    mxPort: mx.address().port,
    mtaStsPort: policyServer.address().port,
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
    assert.deepEqual(codes(r), ['MX_FOUND', 'SPF_FOUND', 'DMARC_FOUND', 'DMARC_ALIGNMENT', 'DKIM_FOUND', 'MTA_STS_FOUND', 'TLS_RPT_FOUND', 'PORT_25_OPEN']);
    assert.equal(r.ok, true);
    assert.match(find(r, 'MX_FOUND').message, /10 mx\.good\.test/);
    assert.match(find(r, 'SPF_FOUND').message, /\(2 DNS lookups\)/);
    assert.match(find(r, 'DKIM_FOUND').message, /RSA, 2048 bits/);
    assert.match(r.records.mtaStsPolicy, /mode: enforce/);
    assert.match(find(r, 'MTA_STS_FOUND').message, /mode enforce, mx mx\.good\.test, max_age 86400 s/);
    assert.equal(r.verdict.mode, 'direct');
    assert.equal(r.records.port25.reachable, 'open');
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
    const r = await check('good.test', { mxPort: closedMxPort });
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
    assert.equal((await check('syntax.test')).findings.filter((f) => f.code === 'SPF_MULTIPLE').length, 1);
    assert.match(find(await check('spfsyntax.test'), 'SPF_SYNTAX').message, /ip4:300\.0\.0\.1/);
    assert.equal(find(await check('good.test', { selector: 'other' }), 'DKIM_MISSING').severity, 'error');
    const message = 'DKIM-Signature: v=1; a=rsa-sha256; d=good.test; s=sel;\r\n h=from; bh=x; b=y\r\nFrom: a@good.test\r\n\r\nhi\r\n';
    const signed = await check('good.test', { selector: undefined, message });
    assert.equal(signed.records.dkimSelector, 'sel');
    find(signed, 'DKIM_FOUND');
  });

  test('a DNS server that does not answer: DNS_FAILED', async () => {
    const r = await diagnose({ domain: 'good.test', dns: { servers: [`127.0.0.1:${closedMxPort}`] }, timeouts: { connect: 1000 } });
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

/** Runs the CLI (killed after 30 s); resolves { code, stdout, stderr }. */
function cli(args) {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

describe('wasmtp doctor --domain', { timeout: 60_000 }, () => {
  const common = () => ['--dns', dns.server, '--ca', join(dir, 'ca.pem'), '--mta-sts-port', String(policyServer.address().port)];

  test('a domain in order: the report and the direct verdict, exit 0', async () => {
    const { code, stdout, stderr } = await cli(['doctor', '--domain', 'good.test', '--selector', 'sel', '--mx-port', String(mx.address().port), ...common()]);
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
    const blocked = await cli(['doctor', '--domain', 'good.test', '--mx-port', String(closedMxPort), ...common()]);
    assert.match(blocked.stdout, /⚠ PORT_25_BLOCKED/);
    assert.match(blocked.stdout, /verdict: relay/);
    assert.match(blocked.stdout, /→ many networks/);
  });

  test('usage mistakes exit 2', async () => {
    const both = await cli(['doctor', 'smtp.example.com', '--domain', 'good.test']);
    assert.equal(both.code, 2);
    assert.match(both.stderr, /--domain/);
    const selectorAlone = await cli(['doctor', 'smtp.example.com', '--selector', 'sel']);
    assert.equal(selectorAlone.code, 2);
  });
});
