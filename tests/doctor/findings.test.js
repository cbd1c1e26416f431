// The connection doctor (diagnose()) against fake servers on 127.0.0.1: one
// test per case the doctor must name, each asserting its own finding and a
// hint a person can act on, plus the rules that make probing safe (no
// credential ever reaches a server whose certificate nobody verified, or a
// plaintext link) and fast (ports are probed at once).

import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';

import { diagnose } from '../../pkg/src/index.js';
import { PASSWORD, USER, blackholePort, closedPort, selfSignedCertificate, startSmtp, testCa } from './fake-smtp.js';

/** Short time-outs, so the failing cases stay quick. */
const timeouts = { connect: 1500, tlsHandshake: 2000, greeting: 1500, command: 3000 };
const auth = { user: USER, pass: PASSWORD };

const servers = [];
async function server(options) {
  const s = await startSmtp(options);
  servers.push(s);
  return s;
}
after(async () => {
  for (const s of servers) await s.close();
});

const codes = (report, port) => report.findings.filter((f) => port === undefined || f.port === port).map((f) => f.code);
const finding = (report, code) => {
  const f = report.findings.find((x) => x.code === code);
  assert.ok(f, `no ${code} in ${JSON.stringify(report.findings, null, 1)}`);
  return f;
};
/** No AUTH command (or SASL payload) reached the server. */
const noCredentialsReached = (s) => {
  assert.ok(!s.commands.some((c) => /^AUTH\b/i.test(c)), s.commands.join(' | '));
  const b64 = Buffer.from(PASSWORD).toString('base64').slice(0, 12);
  assert.ok(!s.commands.some((c) => c.includes(PASSWORD) || c.includes(b64)));
};

describe('diagnose() names each problem with its own finding', { timeout: 60_000 }, () => {
  test('no STARTTLS and only GSSAPI / NTLM (an Exchange-style port)', async () => {
    const s = await server({ mode: 'plain', authBeforeTls: ['GSSAPI', 'NTLM'] });
    const report = await diagnose({ host: '127.0.0.1', probes: [{ port: s.port, security: 'starttls' }], auth, timeouts });
    assert.deepEqual(codes(report, s.port), ['NO_STARTTLS', 'AUTH_UNSUPPORTED_ONLY', 'AUTH_IN_CLEAR']);
    assert.match(finding(report, 'AUTH_UNSUPPORTED_ONLY').message, /only AUTH GSSAPI NTLM/);
    assert.match(finding(report, 'AUTH_UNSUPPORTED_ONLY').hint, /PLAIN or LOGIN over TLS/);
    assert.match(finding(report, 'NO_STARTTLS').hint, /465/);
    const [port] = report.ports;
    assert.deepEqual([port.auth.offered, port.auth.usable], [['GSSAPI', 'NTLM'], []]);
    assert.equal(report.ok, false);
    assert.equal(report.recommended, null);
    assert.deepEqual(codes(report, null), ['NOTHING_WORKS']);
    noCredentialsReached(s);
  });

  test('STARTTLS with a self-signed certificate: pass it as tls.ca, with its fingerprint', async () => {
    const self = selfSignedCertificate();
    const s = await server({ mode: 'starttls', certificate: self });
    const report = await diagnose({ host: 'localhost', probes: [s.port], auth, timeouts });
    const f = finding(report, 'CERT_SELF_SIGNED');
    assert.equal(f.severity, 'error');
    assert.ok(f.hint.startsWith('pass that certificate as tls.ca'), f.hint);
    assert.ok(f.hint.includes(self.fingerprint), `${f.hint} should name ${self.fingerprint}`);
    assert.match(f.hint, /do not turn verification off/);
    const [port] = report.ports;
    assert.equal(port.security, 'opportunistic');
    assert.deepEqual(
      [port.tls.authorized, port.certificate.selfSigned, port.certificate.nameMatches, port.certificate.fingerprint256],
      [false, true, true, self.fingerprint],
    );
    assert.equal(port.certificate.subject, 'CN=mx.doctor.test, O=Doctor Test');
    assert.deepEqual(port.certificate.altNames, ['localhost', '127.0.0.1']);
    assert.ok(port.extensionsBeforeTls.includes('STARTTLS') && !port.extensions.includes('STARTTLS'));
    assert.equal(port.auth.login, 'withheld');
    assert.deepEqual(report.recommended && [report.recommended.port, report.recommended.security, report.recommended.needsCa], [s.port, 'starttls', true]);
    noCredentialsReached(s);

    // Following the hint works: the same server, its certificate passed as tls.ca.
    const fixed = await diagnose({ host: 'localhost', probes: [s.port], auth, tls: { ca: self.cert }, timeouts });
    assert.deepEqual(codes(fixed, s.port), ['AUTH_OFFERED', 'AUTH_OK', 'PORT_WORKS']);
    assert.equal(finding(fixed, 'PORT_WORKS').severity, 'ok');
    assert.equal(fixed.ports[0].auth.method, 'PLAIN');
  });

  test('STARTTLS with a private CA: pass the CA as tls.ca; login checked once verified', async () => {
    const s = await server({ mode: 'starttls' });
    const report = await diagnose({ host: 'localhost', probes: [{ port: s.port, security: 'starttls' }], auth, timeouts });
    const f = finding(report, 'CERT_PRIVATE_CA');
    assert.match(f.message, /issued by "CN=wasmtp test CA"/);
    assert.ok(f.hint.startsWith("pass that CA's certificate as tls.ca"), f.hint);
    assert.ok(f.hint.includes(report.ports[0].certificate.fingerprint256));
    assert.match(f.hint, /do not turn verification off/);
    assert.ok(!codes(report).includes('CERT_SELF_SIGNED'));
    noCredentialsReached(s);

    const wrong = await diagnose({ host: 'localhost', probes: [{ port: s.port, security: 'starttls' }], auth: { user: USER, pass: 'wrong' }, tls: { ca: testCa().ca }, timeouts });
    assert.match(finding(wrong, 'AUTH_FAILED').message, /535|rejected|refused/i);
    assert.equal(wrong.recommended.port, s.port, 'the port is right even if the password is not');
  });

  test('TLS expected, a plaintext greeting came: named, then STARTTLS on that port is tried', async () => {
    const s = await server({ mode: 'starttls' });
    const report = await diagnose({ host: 'localhost', probes: [{ port: s.port, security: 'tls' }], tls: { ca: testCa().ca }, timeouts });
    const f = finding(report, 'PLAINTEXT_WHERE_TLS_EXPECTED');
    assert.equal(f.hint, `use port ${s.port} with security: 'starttls'.`);
    assert.deepEqual(report.ports.map((p) => [p.security, p.error?.code ?? 'ok']), [['tls', 'ETLS_PORT_MISMATCH'], ['starttls', 'ok']]);
    assert.deepEqual([report.recommended.port, report.recommended.security, report.recommended.needsCa], [s.port, 'starttls', false]);
  });

  test('the reverse: plaintext expected, the port speaks TLS from the first byte', async () => {
    const s = await server({ mode: 'implicit' });
    const report = await diagnose({ host: 'localhost', probes: [{ port: s.port, security: 'starttls' }], tls: { ca: testCa().ca }, timeouts });
    const f = finding(report, 'TLS_WHERE_PLAINTEXT_EXPECTED');
    assert.equal(f.hint, `use port ${s.port} with security: 'tls'.`);
    assert.deepEqual(report.ports.map((p) => [p.security, p.error?.code ?? 'ok']), [['starttls', 'ETIMEDOUT'], ['tls', 'ok']]);
    assert.deepEqual([report.recommended.port, report.recommended.security], [s.port, 'tls']);
  });

  test('a blocked port times out (hint: another port such as 2525); a closed one is refused; both probed at once', async () => {
    const hole = await blackholePort();
    const closed = await closedPort();
    try {
      const started = Date.now();
      const report = await diagnose({ host: '127.0.0.1', probes: [hole.port, closed], timeouts });
      const elapsed = Date.now() - started;
      const timeout = finding(report, 'PORT_TIMEOUT');
      assert.equal(timeout.port, hole.port);
      assert.match(timeout.hint, /block outbound SMTP/);
      assert.match(timeout.hint, /2525/);
      assert.equal(finding(report, 'PORT_CLOSED').port, closed);
      assert.deepEqual(report.ports.map((p) => p.reachable), ['timeout', 'refused']);
      assert.ok(elapsed < 2 * timeouts.connect, `probes ran one after the other (${elapsed} ms)`);
      assert.deepEqual(codes(report, null), ['NOTHING_WORKS']);
    } finally {
      hole.close();
    }
  });

  test('credentials that would cross a plaintext link are withheld and named', async () => {
    const s = await server({ mode: 'plain', authBeforeTls: ['PLAIN', 'LOGIN'] });
    const report = await diagnose({ host: '127.0.0.1', probes: [s.port], auth, timeouts, allowInsecureAuth: true });
    const f = finding(report, 'CREDENTIALS_IN_CLEAR');
    assert.equal(f.severity, 'error');
    assert.match(f.message, /did not send them/);
    assert.match(f.hint, /465 with security: 'tls', or 587 with 'starttls'/);
    assert.equal(report.ports[0].auth.login, 'withheld');
    assert.equal(report.ok, false);
    noCredentialsReached(s); // allowInsecureAuth is never honoured by the doctor

    // Without credentials the same port works, in clear, with a warning.
    const anonymous = await diagnose({ host: '127.0.0.1', probes: [s.port], timeouts });
    assert.deepEqual(codes(anonymous, s.port), ['AUTH_OFFERED', 'AUTH_IN_CLEAR', 'PORT_WORKS']);
    assert.equal(finding(anonymous, 'PORT_WORKS').severity, 'warning');
    assert.deepEqual([anonymous.recommended.port, anonymous.recommended.security], [s.port, 'none']);
  });
});

describe('the report', { timeout: 60_000 }, () => {
  test('per port: reachability, TLS, certificate, greeting, EHLO before and after TLS, AUTH; live annotated transcript', async () => {
    const s = await server({ mode: 'starttls' });
    const lines = [];
    const progress = [];
    const report = await diagnose({
      host: 'localhost',
      probes: [s.port],
      auth,
      tls: { ca: testCa().ca },
      timeouts,
      onTranscript: (line) => lines.push(line),
      onProgress: (p) => progress.push(p),
    });
    const [p] = report.ports;
    assert.equal(p.reachable, 'open');
    assert.ok(p.connectMs >= 0);
    assert.equal(p.greeting, '220 doctor.test ESMTP fake');
    assert.match(p.tls.version, /^TLSv1\.[23]$/);
    assert.ok(p.tls.cipher && p.tls.authorized);
    assert.deepEqual(
      [p.certificate.subject, p.certificate.issuer, p.certificate.altNames, p.certificate.selfSigned, p.certificate.expired],
      ['CN=localhost', 'CN=wasmtp test CA', ['localhost', '127.0.0.1'], false, false],
    );
    assert.match(p.certificate.validTo, /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC$/);
    assert.match(p.certificate.fingerprint256, /^([0-9A-F]{2}:){31}[0-9A-F]{2}$/);
    assert.deepEqual(p.extensionsBeforeTls, ['PIPELINING', 'SIZE 10240000', '8BITMIME', 'STARTTLS', 'ENHANCEDSTATUSCODES']);
    assert.deepEqual(p.extensions, ['PIPELINING', 'SIZE 10240000', '8BITMIME', 'AUTH PLAIN LOGIN', 'ENHANCEDSTATUSCODES']);
    assert.deepEqual(p.auth, { offered: ['PLAIN', 'LOGIN'], usable: ['PLAIN', 'LOGIN'], login: 'succeeded', loginText: 'succeeded (PLAIN)', method: 'PLAIN' });
    assert.deepEqual(report.recommended, { port: s.port, security: 'starttls', needsCa: false, reason: 'TLSv1.3 with a verified certificate.' });

    // Every line explained, the credentials redacted.
    assert.ok(lines.every((l) => l.port === s.port && typeof l.note === 'string' && l.note.length > 0));
    const authLine = lines.find((l) => l.dir === 'C' && l.text.startsWith('AUTH'));
    assert.equal(authLine.text, 'AUTH PLAIN <redacted>');
    assert.ok(!JSON.stringify(lines).includes(PASSWORD) && !JSON.stringify(report).includes(PASSWORD));
    assert.match(lines.find((l) => l.text === 'STARTTLS').note, /switch this connection to TLS/);
    assert.deepEqual(progress.map((x) => x.stage), ['start', 'done']);
  });

  test('TLS inside wasm (the browser path) reports the same certificate facts as Node\'s TLS', async () => {
    const s = await server({ mode: 'starttls' });
    const native = await diagnose({ host: 'localhost', probes: [s.port], timeouts });
    const wasm = await diagnose({ host: 'localhost', probes: [s.port], tls: { engine: 'wasm' }, auth, timeouts });
    assert.deepEqual(wasm.ports[0].certificate, native.ports[0].certificate);
    assert.equal(wasm.ports[0].tls.authorized, false);
    assert.match(wasm.ports[0].tls.authorizationError, /issuer|UnknownIssuer/i);
    assert.ok(codes(wasm).includes('CERT_PRIVATE_CA'));
    noCredentialsReached(s);
    const verified = await diagnose({ host: 'localhost', probes: [s.port], tls: { engine: 'wasm', ca: testCa().ca }, auth, timeouts });
    assert.deepEqual(codes(verified, s.port), ['AUTH_OFFERED', 'AUTH_OK', 'PORT_WORKS']);
  });

  test('465, 587 and 25 are probed by default, with the ports given', async () => {
    const s = await server({ mode: 'starttls' });
    const report = await diagnose({ host: '127.0.0.1', ports: [s.port], timeouts });
    assert.deepEqual(report.ports.map((p) => [p.port, p.security]), [[465, 'tls'], [587, 'starttls'], [25, 'opportunistic'], [s.port, 'opportunistic']]);
  });
});
