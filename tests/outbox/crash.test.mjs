// Crash tests: a worker process is killed with SIGKILL at each point of an
// attempt, for the spool store and for the BullMQ store. After a restart
// every message must end in the right state, and the server must have
// received each message exactly once, except a message that was marked
// `unknown` and then explicitly retried (the one allowed duplicate).
//
// Points: before connect; mid-body (after the 354, half of the body
// written); after the end of data, before the reply (the server holds it);
// after the 250, before the outcome is saved.
//
// The target's body is 1 MB: more than the engine's body buffer (256 KiB)
// plus the driver's read-ahead (64 KiB). "committing" is saved just before
// the end of the body is handed to the engine (send()'s beforeDataEnd), so
// with a body that fits the buffer a crash "mid-body on the wire" would
// already count as committing and end `unknown`: conservative, never a
// silent duplicate, but not what this test is after.

import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';

import { bullmqStore, createClient, createOutbox, spoolStore } from 'wasmtp';

import { startRedis, startSmtp, startWorker, tempDir, waitFor } from './helpers.mjs';

const RETRY = { initialDelay: 100, maxDelay: 500, maxAttempts: 5 };
const SETTLED = ['sent', 'failed', 'unknown'];

let smtp;
/** The Subject whose first end of data the server holds (no reply), and what to do then. */
let holdSubject = null;
let onHold = null;
let redis;

before(async () => {
  smtp = await startSmtp({
    onDataEnd(info) {
      if (info.subject === holdSubject) {
        holdSubject = null;
        onHold?.(info);
        return 'hold';
      }
      return 'reply';
    },
  });
  redis = await startRedis();
});

after(async () => {
  await smtp?.close();
  await redis?.stop();
});

const stores = {
  spool: () => {
    const dir = tempDir('wasmtp-outbox-crash-');
    return { config: { kind: 'spool', dir, pollInterval: 100 }, make: () => spoolStore({ dir, pollInterval: 100 }), cleanup: () => rmSync(dir, { recursive: true, force: true }) };
  },
  bullmq: () => {
    const queueName = `crash-${Math.random().toString(36).slice(2)}`;
    const opts = { connection: redis.connection, queueName, lockDuration: 2000, stalledInterval: 1000 };
    return { config: { kind: 'bullmq', ...opts }, make: () => bullmqStore(opts), cleanup: () => {} };
  },
};

/**
 * Enqueues a target and a bystander, runs a worker that crashes at
 * `crashAt`, kills it, restarts one, and returns the settled statuses.
 */
async function crashAndRestart(kind, crashAt, label, { atLeastOnce = false } = {}) {
  const store = stores[kind]();
  // The test's own outbox on the same store: enqueue, status, decisions.
  const client = createClient({ host: '127.0.0.1', port: smtp.port, security: 'none' });
  const outbox = createOutbox({ client, store: store.make(), retry: RETRY, atLeastOnce });
  const target = `${label}/target`;
  const bystander = `${label}/bystander`;
  const targetId = await outbox.enqueue({ from: 'ann@example.com', to: 'bob@example.org', subject: target, text: 'x'.repeat(1_000_000) });
  await new Promise((r) => setTimeout(r, 5));
  const bystanderId = await outbox.enqueue({ from: 'ann@example.com', to: 'bob@example.org', subject: bystander, text: 'hello' });

  const workerConfig = { store: store.config, smtp: { port: smtp.port }, retry: RETRY, atLeastOnce, concurrency: 1, maxConnections: 1 };
  let first;
  if (crashAt === 'after-data-end') {
    const held = new Promise((resolve) => {
      holdSubject = target;
      onHold = resolve;
    });
    first = startWorker(workerConfig);
    await held;
  } else {
    first = startWorker({ ...workerConfig, crashAt });
    await first.waitFor(new RegExp(`^AT ${crashAt}$`));
  }
  const killed = await first.kill();
  assert.equal(killed.signal, 'SIGKILL');
  const afterCrash = await outbox.status(targetId);

  const second = startWorker(workerConfig);
  try {
    await second.waitFor(/^READY/);
    const settled = async (id) => {
      const s = await outbox.status(id);
      return s && SETTLED.includes(s.state) ? s : null;
    };
    const [t, b] = await Promise.all([waitFor(() => settled(targetId), 30_000, `${label} target`), waitFor(() => settled(bystanderId), 30_000, `${label} bystander`)]);
    return { outbox, client, store, second, targetId, target, bystander, afterCrash, t, b };
  } catch (error) {
    await second.kill();
    throw error;
  }
}

async function finish({ outbox, client, store, second }) {
  await second.stop();
  await outbox.close();
  await client.close();
  store.cleanup();
}

const dataEnds = (subject) => smtp.dataEnds.filter((m) => m.subject === subject).length;

for (const kind of ['spool', 'bullmq']) {
  describe(`crash tests (${kind} store)`, () => {
    test('killed before connecting: sent once after the restart', async () => {
      const run = await crashAndRestart(kind, 'before-connect', `${kind}-before-connect`);
      try {
        assert.equal(run.afterCrash.state, 'sending');
        assert.equal(run.t.state, 'sent');
        assert.equal(run.t.attempts, 2, 'the interrupted attempt counts');
        assert.equal(smtp.count(run.target), 1);
        assert.equal(dataEnds(run.target), 1);
        assert.equal(run.b.state, 'sent');
        assert.equal(smtp.count(run.bystander), 1);
      } finally {
        await finish(run);
      }
    });

    test('killed mid-body: the server never had it, sent once after the restart', async () => {
      const run = await crashAndRestart(kind, 'mid-body', `${kind}-mid-body`);
      try {
        assert.equal(run.afterCrash.state, 'sending');
        assert.equal(run.t.state, 'sent');
        assert.equal(smtp.count(run.target), 1);
        assert.equal(dataEnds(run.target), 1);
        assert.equal(run.b.state, 'sent');
        assert.equal(smtp.count(run.bystander), 1);
      } finally {
        await finish(run);
      }
    });

    test('killed after the end of data, before the reply: unknown, and only an explicit retry sends it again', async () => {
      const run = await crashAndRestart(kind, 'after-data-end', `${kind}-after-data-end`);
      try {
        assert.equal(run.afterCrash.state, 'sending');
        assert.equal(run.afterCrash.dataSent, true, '"committing" was saved before the end of data');
        assert.equal(run.t.state, 'unknown');
        assert.equal(run.t.error.code, 'EWORKER_LOST');
        assert.equal(run.t.error.deliveryState, 'unknown');
        assert.equal(dataEnds(run.target), 1, 'not re-sent silently');
        assert.equal(run.b.state, 'sent');
        assert.equal(smtp.count(run.bystander), 1);
        // The unknown one is listed, and waits.
        assert.ok((await run.outbox.list({ state: 'unknown' })).some((s) => s.id === run.targetId));
        await new Promise((r) => setTimeout(r, 500));
        assert.equal(dataEnds(run.target), 1);
        // The explicit decision: send it again (the one allowed duplicate).
        await run.outbox.retry(run.targetId);
        const done = await waitFor(async () => {
          const s = await run.outbox.status(run.targetId);
          return s.state === 'sent' ? s : null;
        });
        assert.equal(done.attempts, 2);
        assert.equal(dataEnds(run.target), 2);
        assert.equal(smtp.count(run.target), 1);
      } finally {
        await finish(run);
      }
    });

    test('killed after the 250, before the outcome was saved: unknown (not re-sent); markSent settles it', async () => {
      const run = await crashAndRestart(kind, 'after-reply', `${kind}-after-reply`);
      try {
        assert.equal(run.afterCrash.state, 'sending');
        assert.equal(run.afterCrash.dataSent, true);
        assert.equal(run.t.state, 'unknown');
        assert.equal(smtp.count(run.target), 1);
        assert.equal(dataEnds(run.target), 1);
        assert.equal(run.b.state, 'sent');
        assert.equal(smtp.count(run.bystander), 1);
        const marked = await run.outbox.markSent(run.targetId);
        assert.equal(marked.state, 'sent');
        assert.equal((await run.outbox.status(run.targetId)).state, 'sent');
        assert.equal(dataEnds(run.target), 1);
      } finally {
        await finish(run);
      }
    });
  });
}

describe('crash tests, at-least-once (spool store)', () => {
  test('with atLeastOnce: true a message cut after the end of data is sent again by itself', async () => {
    const run = await crashAndRestart('spool', 'after-data-end', 'spool-at-least-once', { atLeastOnce: true });
    try {
      assert.equal(run.t.state, 'sent');
      assert.equal(dataEnds(run.target), 2);
      assert.equal(run.b.state, 'sent');
      assert.equal(smtp.count(run.bystander), 1);
    } finally {
      await finish(run);
    }
  });
});
