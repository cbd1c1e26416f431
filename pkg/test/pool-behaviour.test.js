// Pool behaviour against a real smtp-server: reconnecting after a 421,
// never re-sending a message whose outcome is unknown, idle time-outs, the
// messages-per-second rate limit, and close() draining the queue.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';

import { createClient } from '../src/index.js';
import { startServer } from './helpers/server.js';

const raw = (i) => `From: ann@example.com\r\nTo: bob@example.org\r\nSubject: message ${i}\r\n\r\nbody ${i}\r\n`;
const envelope = (i) => ({ from: 'ann@example.com', to: [`bob${i}@example.org`] });
const subjects = (server) => server.messages.map((m) => /^Subject: (.*)$/m.exec(m.raw.toString())[1].trim());

/** Resolves when `check()` holds, polling; fails after `ms`. */
async function until(check, ms, what) {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

test('421 and close: the queued messages go out on a new connection, in order, each once', { timeout: 30_000 }, async () => {
  // The server takes two messages per connection, then answers the third
  // MAIL with 421 and closes (smtp-server closes after any 421).
  const perConnection = new Map();
  const server = await startServer({
    onMailFrom(address, session, callback) {
      const n = (perConnection.get(session.id) ?? 0) + 1;
      perConnection.set(session.id, n);
      if (n > 2) {
        const error = new Error('4.7.0 too many messages on this connection, closing');
        error.responseCode = 421;
        return callback(error);
      }
      callback();
    },
  });
  const client = createClient({ host: '127.0.0.1', port: server.port, security: 'none', pool: { maxConnections: 1 } });
  try {
    const count = 7;
    const sends = Array.from({ length: count }, (_, i) => client.send({ raw: raw(i), envelope: envelope(i) }));
    // close() right away: it must wait for the messages that had to be re-queued.
    const closing = client.close();
    const results = await Promise.all(sends);
    await closing;
    results.forEach((r, i) => assert.deepEqual(r.accepted, [`bob${i}@example.org`]));
    assert.equal(server.messages.length, count);
    assert.deepEqual(subjects(server), Array.from({ length: count }, (_, i) => `message ${i}`));
    assert.equal(server.connections, Math.ceil(count / 2));
  } finally {
    await client.close();
    await server.close();
  }
});

test('a server answering every MAIL with 421 makes each send fail, without a reconnect loop', { timeout: 30_000 }, async () => {
  const server = await startServer({
    onMailFrom(address, session, callback) {
      const error = new Error('4.3.2 service shutting down');
      error.responseCode = 421;
      callback(error);
    },
  });
  const client = createClient({ host: '127.0.0.1', port: server.port, security: 'none', pool: { maxConnections: 1 } });
  try {
    const outcomes = await Promise.allSettled([0, 1, 2, 3].map((i) => client.send({ raw: raw(i), envelope: envelope(i) })));
    for (const o of outcomes) {
      assert.equal(o.status, 'rejected');
      assert.equal(o.reason.reply?.code, 421, o.reason.message);
      assert.equal(o.reason.retryable, true);
      assert.equal(o.reason.deliveryState, 'not-sent');
    }
    // Each connection settles at least one message for good: at most one per message.
    assert.ok(server.connections <= 4, `${server.connections} connections`);
    assert.equal(server.messages.length, 0);
  } finally {
    await client.close();
    await server.close();
  }
});

test('a message whose outcome is unknown (connection cut after the data) is never re-sent', { timeout: 30_000 }, async () => {
  // The server reads message 0 completely, then cuts the connection
  // instead of answering: the client cannot know whether it was accepted.
  let dataTransactions = 0;
  const received = [];
  const server = await startServer({
    onData(stream, session, callback) {
      dataTransactions += 1;
      const chunks = [];
      stream.on('data', (c) => chunks.push(c));
      stream.on('end', () => {
        const body = Buffer.concat(chunks).toString();
        received.push(body);
        if (body.includes('Subject: message 0\r\n')) {
          server.sockets.get(session.remotePort)?.destroy();
          return;
        }
        server.messages.push({ raw: Buffer.from(body) });
        callback(null, `OK queued as Q${received.length}`);
      });
    },
  });
  const client = createClient({ host: '127.0.0.1', port: server.port, security: 'none', pool: { maxConnections: 1 } });
  try {
    const [first, second] = await Promise.allSettled([0, 1].map((i) => client.send({ raw: raw(i), envelope: envelope(i) })));
    assert.equal(first.status, 'rejected');
    assert.equal(first.reason.deliveryState, 'unknown', first.reason.message);
    assert.equal(first.reason.phase, 'data');
    // The message behind it had not been sent: it went out on a new connection.
    assert.equal(second.status, 'fulfilled', second.reason?.message);
    assert.deepEqual(second.value.accepted, ['bob1@example.org']);
    await client.close();
    await sleep(200); // nothing else arrives later either
    assert.equal(received.filter((b) => b.includes('Subject: message 0\r\n')).length, 1, 'message 0 was sent once');
    assert.equal(dataTransactions, 2);
    assert.equal(server.connections, 2);
  } finally {
    await client.close();
    await server.close();
  }
});

test('pool.idleTimeout closes an unused connection after that many ms (with QUIT)', { timeout: 30_000 }, async () => {
  const server = await startServer();
  const lines = [];
  const client = createClient({
    host: '127.0.0.1',
    port: server.port,
    security: 'none',
    pool: { idleTimeout: 300 },
    onTranscript: (l) => lines.push(`${l.dir}: ${l.text}`),
  });
  try {
    await client.send({ raw: raw(1), envelope: envelope(1) });
    const idleSince = Date.now();
    assert.equal(server.open, 1);
    await until(() => server.open === 0, 5000, 'the idle connection to close');
    const idle = Date.now() - idleSince;
    assert.ok(idle >= 250, `closed after ${idle} ms idle`);
    assert.deepEqual(lines.slice(-2), ['C: QUIT', 'S: 221 Bye']);
    // The next message opens a new connection.
    await client.send({ raw: raw(2), envelope: envelope(2) });
    assert.equal(server.connections, 2);
  } finally {
    await client.close();
    await server.close();
  }
});

test('an idle pooled connection does not keep a script alive that forgot close()', { timeout: 30_000 }, async () => {
  const server = await startServer();
  try {
    // Default idleTimeout (30 s): the process must still exit right after the send.
    const script = `
      import { createClient } from ${JSON.stringify(new URL('../src/index.js', import.meta.url).href)};
      const client = createClient({ host: '127.0.0.1', port: ${server.port}, security: 'none' });
      const r = await client.send({ raw: 'Subject: x\\r\\n\\r\\nforgot close\\r\\n', envelope: { from: 'a@example.com', to: ['b@example.org'] } });
      console.log(r.accepted.join());`;
    const started = Date.now();
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    const killer = setTimeout(() => child.kill('SIGKILL'), 15_000);
    const code = await new Promise((resolve) => child.on('exit', (c, signal) => resolve(signal ?? c)));
    clearTimeout(killer);
    assert.equal(code, 0, out);
    assert.equal(out.trim(), 'b@example.org');
    assert.ok(Date.now() - started < 10_000, `the script took ${Date.now() - started} ms to exit`);
    assert.equal(server.messages.length, 1);
  } finally {
    await server.close();
  }
});

test('pool.rate paces messages across the pool (token bucket)', { timeout: 30_000 }, async (t) => {
  const server = await startServer();
  // 10 messages at 20/s over up to 3 connections: the first goes at once,
  // the other 9 wait for a token each, so at least 450 ms in all.
  const client = createClient({ host: '127.0.0.1', port: server.port, security: 'none', pool: { maxConnections: 3, rate: 20 } });
  try {
    const started = Date.now();
    await Promise.all(Array.from({ length: 10 }, (_, i) => client.send({ raw: raw(i), envelope: envelope(i) })));
    const elapsed = Date.now() - started;
    assert.equal(server.messages.length, 10);
    assert.ok(elapsed >= 400, `10 messages at 20/s took only ${elapsed} ms`);
    t.diagnostic(`10 messages at rate 20/s: ${elapsed} ms`);
  } finally {
    await client.close();
    await server.close();
  }
});

test('pool.rateBurst lets a burst go at once, then paces the rest; close() drains a paced queue', { timeout: 30_000 }, async (t) => {
  const server = await startServer();
  const client = createClient({ host: '127.0.0.1', port: server.port, security: 'none', pool: { rate: 10, rateBurst: 4 } });
  try {
    const started = Date.now();
    const sends = Array.from({ length: 8 }, (_, i) => client.send({ raw: raw(i), envelope: envelope(i) }));
    await client.close(); // waits for the paced messages, then QUITs
    const elapsed = Date.now() - started;
    const results = await Promise.all(sends);
    assert.equal(results.length, 8);
    assert.equal(server.messages.length, 8);
    // 4 at once, then 4 more at 10/s: at least 400 ms (asserting 350).
    assert.ok(elapsed >= 350, `8 messages (burst 4, 10/s) took only ${elapsed} ms`);
    await until(() => server.open === 0, 5000, 'the connections to close');
    await assert.rejects(client.send({ raw: raw(9), envelope: envelope(9) }), { code: 'ECLOSED' });
    t.diagnostic(`8 messages at rate 10/s, burst 4, drained by close(): ${elapsed} ms`);
  } finally {
    await server.close();
  }
});

test('invalid pool options are refused with EINPUT', () => {
  for (const pool of [{ idleTimeout: -1 }, { idleTimeout: Infinity }, { rate: 0 }, { rate: -5 }, { rate: 10, rateBurst: 0 }, { maxConnections: 0 }]) {
    assert.throws(() => createClient({ host: '127.0.0.1', pool }), { code: 'EINPUT' }, JSON.stringify(pool));
  }
});
