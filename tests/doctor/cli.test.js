// `wasmtp doctor` (pkg/bin/wasmtp.js) as a child process against fake
// servers: progress on stderr while the probes run, a readable report with
// symbols on stdout, --json, -v (the dialog with explanations), and the
// exit status (1 when no working configuration was found).

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { PASSWORD, USER, closedPort, startSmtp } from './fake-smtp.js';
import { cli } from './run-cli.js';

describe('wasmtp doctor', { timeout: 90_000 }, () => {
  let starttls;
  before(async () => {
    starttls = await startSmtp({ mode: 'starttls' });
  });
  after(async () => {
    await starttls?.close();
  });

  test('a readable report with symbols, progress on stderr, exit 0 when something works', async () => {
    const r = await cli(['doctor', 'localhost', '--port', String(starttls.port), '--user', USER, '--timeout', '3000'], { WASMTP_PASSWORD: PASSWORD });
    assert.equal(r.code, 0, r.stderr);
    // Progress: each probe announced, then its outcome.
    assert.match(r.stderr, /wasmtp doctor: probing localhost/);
    assert.match(r.stderr, new RegExp(`… ${starttls.port} \\(opportunistic\\)`));
    assert.match(r.stderr, new RegExp(`✓ ${starttls.port} \\(opportunistic\\): answered`));
    assert.match(r.stderr, /✗ 465 \(tls\): refused/);
    // The report.
    assert.match(r.stdout, /TLS +TLSv1\.3 \S+, certificate NOT verified/);
    assert.match(r.stdout, /certificate +CN=localhost/);
    assert.match(r.stdout, /SHA-256: ([0-9A-F]{2}:){31}[0-9A-F]{2}/);
    assert.match(r.stdout, /EHLO over TLS .*AUTH PLAIN LOGIN/);
    assert.match(r.stdout, /login +withheld/);
    assert.match(r.stdout, new RegExp(`✗ ${starttls.port} +CERT_PRIVATE_CA: .*\\n +→ pass that CA's certificate as tls\\.ca .*\\(command line: --ca FILE\\)`));
    assert.match(r.stdout, /✗ 465 +PORT_CLOSED/);
    assert.match(r.stdout, new RegExp(`verdict: ⚠ use port ${starttls.port} with security 'starttls': TLS works once the server's certificate \\(or CA\\) is passed as tls\\.ca`));
    assert.match(r.stdout, new RegExp(`wasmtp send --host localhost --port ${starttls.port} --security starttls --ca FILE --user ${USER}`));
    assert.ok(!(r.stdout + r.stderr).includes(PASSWORD));
    assert.ok(!starttls.commands.some((c) => c.startsWith('AUTH')), 'no credential over an unverified certificate');
  });

  test('--json prints the structured report; -v the dialog with explanations', async () => {
    const r = await cli(['doctor', 'localhost', '--port', String(starttls.port), '--security', 'starttls', '--json', '-v', '--timeout', '3000']);
    assert.equal(r.code, 0, r.stderr);
    const report = JSON.parse(r.stdout);
    assert.equal(report.host, 'localhost');
    assert.deepEqual(report.recommended && [report.recommended.port, report.recommended.security, report.recommended.needsCa], [starttls.port, 'starttls', true]);
    assert.ok(report.findings.some((f) => f.code === 'CERT_PRIVATE_CA' && f.port === starttls.port));
    assert.deepEqual(report.ports.map((p) => p.port), [465, 587, 25, starttls.port]);
    assert.match(r.stderr, new RegExp(`\\[${starttls.port}\\] C: STARTTLS +# The client asks to switch this connection to TLS`));
    assert.match(r.stderr, new RegExp(`\\[${starttls.port}\\] TLS: TLSv1\\.3 .* # Encrypted, but the certificate was not verified`));
  });

  test('exit status 1 when no working configuration is found', async () => {
    const closed = await closedPort();
    const r = await cli(['doctor', '127.0.0.1', '--port', String(closed), '--timeout', '2000']);
    assert.equal(r.code, 1);
    assert.match(r.stdout, /✗ all +NOTHING_WORKS/);
    assert.match(r.stdout, /verdict: ✗ no working configuration found/);
    const json = await cli(['diagnose', '--host', '127.0.0.1', '--port', String(closed), '--json', '--timeout', '2000']);
    assert.equal(json.code, 1);
    assert.equal(JSON.parse(json.stdout).ok, false);
  });

  test('usage mistakes', async () => {
    const noHost = await cli(['doctor']);
    assert.equal(noHost.code, 2);
    assert.match(noHost.stderr, /wasmtp doctor <host>/);
    const badPort = await cli(['doctor', 'h', '--port', 'x']);
    assert.equal(badPort.code, 2);
    assert.match(badPort.stderr, /--port x is not a TCP port/);
  });
});
