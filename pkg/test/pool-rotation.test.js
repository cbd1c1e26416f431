// Replacing a connection after `maxMessagesPerConnection` messages, make-
// before-break: the successor sets up while the old connection sends its
// last messages; a server that refuses the extra connection turns that off.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { createClient } from '../src/index.js';
import { startServer } from './helpers/server.js';

const message = (i) => ({
  from: 'ann@example.com',
  to: `bob+${i}@example.org`,
  subject: `message ${i}`,
  text: `body ${i}\n`,
  headers: { 'X-Seq': String(i) },
});
const seqs = (server) => server.messages.map((m) => Number(/^X-Seq: (\d+)\r$/m.exec(m.raw.toString('latin1'))[1]));

async function sendAll(client, count) {
  const outcomes = await Promise.allSettled(Array.from({ length: count }, (_, i) => client.send(message(i))));
  const failed = outcomes.filter((o) => o.status === 'rejected').map((o) => o.reason.message);
  assert.deepEqual(failed, [], `${failed.length} sends failed`);
  return outcomes.map((o) => o.value);
}

test('a replaced connection overlaps its successor: every message once, never more than maxConnections + 1 connections', { timeout: 60_000 }, async () => {
  const server = await startServer();
  const client = createClient({ host: '127.0.0.1', port: server.port, security: 'none', pool: { maxConnections: 1, maxMessagesPerConnection: 10 } });
  try {
    const count = 60;
    const results = await sendAll(client, count);
    results.forEach((r, i) => assert.deepEqual(r.accepted, [`bob+${i}@example.org`]));
    assert.deepEqual([...seqs(server)].sort((a, b) => a - b), Array.from({ length: count }, (_, i) => i), 'each message once');
    // 10 messages per connection; a successor opened near the end of the
    // last budget may carry one or two of them.
    assert.ok(server.connections >= count / 10 && server.connections <= count / 10 + 1, `${server.connections} connections`);
    assert.equal(server.peakSessions, 2, 'the successor connects while its predecessor still sends, and no third connection');
    for (const m of server.messages) {
      const seq = /^X-Seq: (\d+)\r$/m.exec(m.raw.toString('latin1'))[1];
      assert.deepEqual(m.to, [`bob+${seq}@example.org`]);
    }
  } finally {
    await client.close();
    await server.close();
  }
});

test('a server that allows one connection refuses the successor once; then replacements wait for the old connection', { timeout: 60_000 }, async () => {
  // smtp-server answers a connection over maxClients with 421 and closes it.
  const server = await startServer({ maxClients: 1 });
  const client = createClient({ host: '127.0.0.1', port: server.port, security: 'none', pool: { maxConnections: 1, maxMessagesPerConnection: 10 } });
  try {
    const count = 50;
    await sendAll(client, count);
    assert.deepEqual([...seqs(server)].sort((a, b) => a - b), Array.from({ length: count }, (_, i) => i), 'each message once');
    assert.equal(server.peakSessions, 1);
    const refused = server.tcpConnections - server.connections;
    assert.ok(refused <= 1, `${refused} connections refused: make-before-break must stop after the first`);
  } finally {
    await client.close();
    await server.close();
  }
});
