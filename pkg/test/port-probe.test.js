// Failing fast on a port mix-up, on any port: a plaintext client on a port
// that expects TLS from the first byte hears nothing, so after two seconds
// of silence a second connection sends a TLS ClientHello; a TLS answer
// names the mix-up. A server that pauses before its greeting on purpose
// must still work, and its session connection gets no byte early.

import assert from 'node:assert/strict';
import net from 'node:net';
import tls from 'node:tls';
import { test } from 'node:test';

import { createClient } from '../src/index.js';
import { testCertificates } from './helpers/certs.js';
import { startServer } from './helpers/server.js';

const message = { from: 'ann@example.com', to: 'bob@example.org', subject: 'hi', text: 'hello\n' };

test('a TLS-first server on an unusual port: ETLS_PORT_MISMATCH after the probe, not after the greeting time-out', { timeout: 20_000 }, async () => {
  const { key, cert } = testCertificates();
  const server = tls.createServer({ key, cert }, (socket) => {
    socket.on('error', () => {});
    socket.end('220 greeting over TLS\r\n');
  });
  server.on('tlsClientError', () => {}); // the probe never finishes its handshake
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const client = createClient({ host: '127.0.0.1', port: server.address().port, security: 'starttls' });
  const started = Date.now();
  try {
    await assert.rejects(client.send(message), (err) => {
      assert.equal(err.code, 'ETLS_PORT_MISMATCH', err.message);
      assert.equal(err.phase, 'greeting');
      assert.equal(err.deliveryState, 'not-sent');
      assert.match(err.message, /answered with TLS/);
      assert.match(err.hint, /security: 'tls'/);
      return true;
    });
    // Named by the probe, long before the 30 s greeting time-out.
    assert.ok(Date.now() - started < 10_000, `named after ${Date.now() - started} ms`);
  } finally {
    await client.close();
    await new Promise((resolve) => server.close(resolve));
  }
});

test('a server that pauses before its greeting still works, and its session connection gets no early byte', { timeout: 30_000 }, async () => {
  // In front of a real smtp-server: each connection is held silent for
  // PAUSE_MS; a client that talks first is an early talker and is cut off,
  // as postscreen or Exim's banner delay would treat it.
  const PAUSE_MS = 4000;
  const smtp = await startServer();
  const connections = [];
  const front = net.createServer((client) => {
    const record = { early: 0, greeted: false };
    connections.push(record);
    client.on('error', () => {});
    const onEarly = (bytes) => {
      record.early += bytes.length;
      client.destroy();
    };
    client.on('data', onEarly);
    setTimeout(() => {
      if (client.destroyed) return;
      client.off('data', onEarly);
      record.greeted = true;
      const upstream = net.connect(smtp.port, '127.0.0.1');
      upstream.on('error', () => client.destroy());
      client.pipe(upstream).pipe(client);
    }, PAUSE_MS);
  });
  await new Promise((resolve) => front.listen(0, '127.0.0.1', resolve));
  const client = createClient({ host: '127.0.0.1', port: front.address().port, security: 'none' });
  try {
    const result = await client.send(message);
    assert.deepEqual(result.accepted, ['bob@example.org']);
    assert.equal(smtp.messages.length, 1);
    const greeted = connections.filter((c) => c.greeted);
    assert.equal(greeted.length, 1, 'one session connection');
    assert.equal(greeted[0].early, 0, 'no byte before the greeting on the session connection');
    // The probe: a second connection, which talked first (its ClientHello) and was cut off.
    const probes = connections.filter((c) => !c.greeted);
    assert.equal(probes.length, 1, 'one probe connection');
    assert.ok(probes[0].early > 0);
  } finally {
    await client.close();
    await new Promise((resolve) => front.close(resolve));
    await smtp.close();
  }
});
