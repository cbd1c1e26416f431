// The pool at scale: 1,000 concurrent send() calls over at most 4
// connections, every message arriving exactly once.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { createClient } from '../src/index.js';
import { startServer } from './helpers/server.js';

const COUNT = 1000;

test(`${COUNT} concurrent sends over pool.maxConnections 4: all arrive once, never more than 4 connections`, { timeout: 90_000 }, async (t) => {
  // maxClients: the server itself refuses a fifth connection (421).
  const server = await startServer({ maxClients: 4 });
  const client = createClient({ host: '127.0.0.1', port: server.port, security: 'none', pool: { maxConnections: 4 } });
  try {
    const started = Date.now();
    const outcomes = await Promise.allSettled(
      Array.from({ length: COUNT }, (_, i) =>
        client.send({
          from: 'ann@example.com',
          to: `bob+${i}@example.org`,
          subject: `message ${i}`,
          text: `body of message ${i}\n`,
          headers: { 'X-Seq': String(i) },
        }),
      ),
    );
    const elapsed = Date.now() - started;
    const failed = outcomes.filter((o) => o.status === 'rejected');
    assert.deepEqual(failed.map((o) => o.reason.message).slice(0, 3), [], `${failed.length} sends failed`);
    const results = outcomes.map((o) => o.value);

    // Every result is accepted for its own recipient; Message-IDs and queue ids are unique.
    const accepted = results.flatMap((r) => r.accepted);
    assert.equal(accepted.length, COUNT);
    results.forEach((r, i) => assert.deepEqual(r.accepted, [`bob+${i}@example.org`]));
    assert.equal(new Set(results.map((r) => r.messageId)).size, COUNT);
    assert.equal(new Set(results.map((r) => r.queueId)).size, COUNT);

    // The server received exactly the accepted messages, each once.
    assert.equal(server.messages.length, accepted.length);
    const seqs = server.messages.map((m) => Number(/^X-Seq: (\d+)\r$/m.exec(m.raw.toString('latin1'))?.[1]));
    assert.equal(new Set(seqs).size, COUNT, 'no message twice');
    assert.deepEqual([...seqs].sort((a, b) => a - b), Array.from({ length: COUNT }, (_, i) => i));
    const ids = server.messages.map((m) => /^Message-ID: (.*)\r$/im.exec(m.raw.toString('latin1'))?.[1]);
    assert.deepEqual(new Set(ids), new Set(results.map((r) => r.messageId)));
    for (const m of server.messages) {
      const seq = /^X-Seq: (\d+)\r$/m.exec(m.raw.toString('latin1'))[1];
      assert.deepEqual(m.to, [`bob+${seq}@example.org`]);
    }

    // Counted at the server: the sessions in its connection table at once.
    assert.ok(server.peakSessions <= 4, `${server.peakSessions} connections were open at once`);
    assert.ok(server.peakSessions >= 2, `the pool used ${server.peakSessions} connection(s) at once`);
    // 100 messages per connection (the default limit): at least 10 connections in all.
    assert.ok(server.connections >= COUNT / 100, `${server.connections} connections`);
    t.diagnostic(
      `${COUNT} messages in ${elapsed} ms over ${server.connections} connections, at most ${server.peakSessions} SMTP sessions ` +
        `(${server.peakOpen} TCP sockets, counting closes still in flight after QUIT) at once`,
    );
  } finally {
    await client.close();
    await server.close();
  }
});
