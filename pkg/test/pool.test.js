// The connection pool: concurrent sends, limits, reuse, reconnects, close().

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';

import { createClient } from '../src/index.js';
import { startServer } from './helpers/server.js';

const raw = (i) => `From: ann@example.com\r\nTo: bob@example.org\r\nSubject: message ${i}\r\n\r\nbody ${i}\r\n`;
const envelope = (i) => ({ from: 'ann@example.com', to: [`bob${i}@example.org`] });

test('concurrent sends share a few connections and every message arrives once', async () => {
  const server = await startServer();
  const client = createClient({ host: '127.0.0.1', port: server.port, security: 'none', pool: { maxConnections: 3 } });
  try {
    const count = 40;
    const results = await Promise.all(
      Array.from({ length: count }, (_, i) => client.send({ raw: raw(i), envelope: envelope(i) })),
    );
    const accepted = results.flatMap((r) => r.accepted);
    assert.equal(accepted.length, count);
    assert.equal(server.messages.length, count);
    assert.ok(server.connections <= 3, `${server.connections} connections`);
    // Each message arrived intact and exactly once.
    const bodies = new Set(server.messages.map((m) => m.raw.toString()));
    for (let i = 0; i < count; i++) assert.ok(bodies.has(raw(i)), `message ${i}`);
    assert.deepEqual(new Set(server.messages.flatMap((m) => m.to)), new Set(accepted));
  } finally {
    await client.close();
    await server.close();
  }
});

test('several messages go to one connection (pipelined) and it is reused warm', async () => {
  const server = await startServer();
  const client = createClient({ host: '127.0.0.1', port: server.port, security: 'none', pool: { maxConnections: 1 } });
  try {
    await Promise.all([0, 1, 2, 3, 4].map((i) => client.send({ raw: raw(i), envelope: envelope(i) })));
    await client.send({ raw: raw(5), envelope: envelope(5) });
    assert.equal(server.messages.length, 6);
    assert.equal(server.connections, 1);
  } finally {
    await client.close();
    await server.close();
  }
});

test('maxMessagesPerConnection opens a new connection after the limit', async () => {
  const server = await startServer();
  const client = createClient({
    host: '127.0.0.1',
    port: server.port,
    security: 'none',
    pool: { maxConnections: 1, maxMessagesPerConnection: 2 },
  });
  try {
    for (let i = 0; i < 5; i++) await client.send({ raw: raw(i), envelope: envelope(i) });
    assert.equal(server.messages.length, 5);
    assert.equal(server.connections, 3);
  } finally {
    await client.close();
    await server.close();
  }
});

test('a warm connection the server dropped is replaced transparently', async () => {
  // The server closes connections idle for 300 ms (421 then close).
  const server = await startServer({ socketTimeout: 300 });
  const client = createClient({ host: '127.0.0.1', port: server.port, security: 'none' });
  try {
    await client.send({ raw: raw(1), envelope: envelope(1) });
    await sleep(600);
    const result = await client.send({ raw: raw(2), envelope: envelope(2) });
    assert.deepEqual(result.accepted, ['bob2@example.org']);
    assert.equal(server.messages.length, 2);
    assert.equal(server.connections, 2);
  } finally {
    await client.close();
    await server.close();
  }
});

test('close() lets queued messages finish, then refuses new ones', async () => {
  const server = await startServer();
  const client = createClient({ host: '127.0.0.1', port: server.port, security: 'none', pool: { maxConnections: 2 } });
  const sends = Array.from({ length: 6 }, (_, i) => client.send({ raw: raw(i), envelope: envelope(i) }));
  await client.close();
  const results = await Promise.all(sends);
  assert.equal(results.length, 6);
  assert.equal(server.messages.length, 6);
  await assert.rejects(client.send({ raw: raw(9), envelope: envelope(9) }), { code: 'ECLOSED' });
  await server.close();
});
