// diagnose(): probes set-ups at once and explains each result (the
// engine's findings); the full set of cases is in tests/doctor/.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { diagnose } from '../src/index.js';
import { testCertificates } from './helpers/certs.js';
import { closedPort, startServer } from './helpers/server.js';

test('reports what works, why the rest fails, and recommends verified implicit TLS', async () => {
  const { ca } = testCertificates();
  const implicit = await startServer({ tls: 'implicit' });
  const starttls = await startServer({ tls: 'starttls' });
  const nothing = await closedPort();
  try {
    const report = await diagnose({
      host: '127.0.0.1',
      tls: { ca },
      probes: [
        { port: nothing, security: 'tls' },
        { port: starttls.port, security: 'tls' },
        { port: starttls.port, security: 'starttls' },
        { port: implicit.port, security: 'tls' },
      ],
    });
    // The mix-up on starttls.port would be followed by a STARTTLS probe of
    // that port, which is planned already.
    assert.deepEqual(
      report.ports.map((r) => [r.port, r.security, r.error?.code ?? 'ok']),
      [
        [nothing, 'tls', 'ECONNECT'],
        [starttls.port, 'tls', 'ETLS_PORT_MISMATCH'],
        [starttls.port, 'starttls', 'ok'],
        [implicit.port, 'tls', 'ok'],
      ],
    );
    assert.deepEqual(
      [report.ok, report.recommended.port, report.recommended.security, report.recommended.needsCa],
      [true, implicit.port, 'tls', false],
    );
    const codes = report.findings.map((f) => `${f.port}:${f.code}`);
    assert.ok(codes.includes(`${nothing}:PORT_CLOSED`));
    assert.ok(codes.includes(`${starttls.port}:PLAINTEXT_WHERE_TLS_EXPECTED`));
    assert.ok(codes.includes(`${implicit.port}:PORT_WORKS`));
    const mixUp = report.findings.find((f) => f.code === 'PLAINTEXT_WHERE_TLS_EXPECTED');
    assert.match(mixUp.hint, /security: 'starttls'/);
    assert.match(report.ports[2].tls.version, /^TLSv1\.\d$/);
    assert.equal(report.ports[2].tls.authorized, true);
  } finally {
    await implicit.close();
    await starttls.close();
  }
});
