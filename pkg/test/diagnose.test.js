// diagnose(): probes set-ups and explains each result.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { diagnose } from '../src/index.js';
import { testCertificates } from './helpers/certs.js';
import { closedPort, startServer } from './helpers/server.js';

test('reports what works, why the rest fails, and recommends verified TLS', async () => {
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
    assert.deepEqual(
      report.results.map((r) => (r.ok ? 'ok' : r.error.code)),
      ['ECONNECT', 'ETLS_PORT_MISMATCH', 'ok', 'ok'],
    );
    assert.deepEqual(report.recommended, { port: starttls.port, security: 'starttls' });
    assert.equal(report.summary.length, 4);
    assert.match(report.summary[1], /ETLS_PORT_MISMATCH: .*Hint: .*starttls/);
    assert.match(report.summary[2], /OK, TLSv1\.\d, certificate verified/);
  } finally {
    await implicit.close();
    await starttls.close();
  }
});
