// Failures before any SMTP: refused connections, silent servers, bad
// options; and the shape of SmtpError.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { createClient, SmtpError } from '../src/index.js';
import { closedPort, startServer, startSilentServer } from './helpers/server.js';

const message = { raw: 'Subject: x\r\n\r\nx\r\n', envelope: { from: 'ann@example.com', to: ['bob@example.org'] } };

test('a refused connection is ECONNECT, retryable, nothing sent', async () => {
  const port = await closedPort();
  const client = createClient({ host: '127.0.0.1', port, security: 'none' });
  await assert.rejects(client.send(message), (err) => {
    assert.ok(err instanceof SmtpError);
    assert.ok(err instanceof Error);
    assert.equal(err.name, 'SmtpError');
    assert.equal(err.code, 'ECONNECT');
    assert.equal(err.phase, 'connect');
    assert.equal(err.deliveryState, 'not-sent');
    assert.equal(typeof err.retryable, 'boolean');
    assert.match(err.message, /^ECONNECT \(connect\): /);
    assert.match(err.message, new RegExp(String(port)));
    return true;
  });
  await client.close();
});

test('a server that never greets times out (ETIMEDOUT) at the configured greeting time-out', async () => {
  const server = await startSilentServer();
  const client = createClient({ host: '127.0.0.1', port: server.port, security: 'none', timeouts: { greeting: 300 } });
  const started = Date.now();
  await assert.rejects(client.verify(), (err) => {
    assert.equal(err.code, 'ETIMEDOUT');
    assert.equal(err.phase, 'greeting');
    assert.equal(err.retryable, true);
    return true;
  });
  const elapsed = Date.now() - started;
  assert.ok(elapsed >= 280 && elapsed < 3000, `${elapsed} ms`);
  await client.close();
  await server.close();
});

test('errors carry the transcript of the connection', async () => {
  const server = await startServer();
  const client = createClient({ host: '127.0.0.1', port: server.port, security: 'none' });
  await assert.rejects(
    client.send({ raw: message.raw, envelope: { from: 'ann@example.com', to: ['reject@example.org'] } }),
    (err) => {
      assert.equal(err.code, 'ERECIPIENTS');
      assert.ok(Array.isArray(err.transcript));
      assert.ok(err.transcript.some((l) => l.dir === 'C' && l.text === 'RCPT TO:<reject@example.org>'));
      assert.ok(err.transcript.some((l) => l.dir === 'S' && l.text.startsWith('550')));
      return true;
    },
  );
  await client.close();
  await server.close();
});

test('invalid options are EINPUT with a hint', async () => {
  assert.throws(() => createClient({}), { code: 'EINPUT' });
  assert.throws(() => createClient({ host: 'h', pool: { maxConnections: 0 } }), { code: 'EINPUT' });
  const client = createClient({ host: '127.0.0.1', port: 2525, security: 'starttlss' });
  await assert.rejects(client.verify(), (err) => {
    assert.equal(err.code, 'EINPUT');
    assert.match(err.hint, /starttls/);
    return true;
  });
  const badName = createClient({ host: '127.0.0.1', port: 2525, clientName: 'bad name\r\nRSET' });
  await assert.rejects(badName.verify(), { code: 'EINPUT' });
  await assert.rejects(client.send({ text: 'no raw' }), { code: 'EINPUT' });
});

test('the security mode follows the port and the port follows the mode', async () => {
  const lines = [];
  const port = await closedPort();
  // port given, no security: the engine picks opportunistic for a non-standard port (no TLS at connect).
  const client = createClient({
    host: '127.0.0.1',
    port,
    onTranscript: (l) => lines.push(l),
    transport: {
      async connect(opts) {
        lines.push(opts);
        throw Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' });
      },
    },
  });
  await assert.rejects(client.verify(), { code: 'ECONNECT' });
  assert.deepEqual(lines[0], { host: '127.0.0.1', port, tls: false, upgradable: true, servername: '127.0.0.1', ca: undefined, rejectUnauthorized: true });

  const seen = [];
  const tlsClient = createClient({
    host: 'smtp.example.com',
    security: 'tls',
    transport: {
      async connect(opts) {
        seen.push(opts);
        throw new Error('connect ECONNREFUSED');
      },
    },
  });
  await assert.rejects(tlsClient.verify(), { code: 'ECONNECT' });
  assert.equal(seen[0].port, 465);
  assert.equal(seen[0].tls, true);
});
