// Load: 5,000 messages enqueued on the BullMQ store (redis-server on a
// high loopback port), three worker processes, and a server that answers
// 5% of the ends of data with 451 and refuses the "reject-" recipients
// (1% of the messages) with 550. Every message must end `sent` or `failed`
// with its reason, and the counts must match what the server accepted:
// each sent message accepted exactly once, nothing else accepted.
// Also the BullMQ store's decisions (retry of a dead letter, discard of a
// delayed message).

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { bullmqStore, createClient, createOutbox } from 'wasmtp';

import { startRedis, startSmtp, startWorker, waitFor } from './helpers.mjs';

const TOTAL = Number(process.env.OUTBOX_LOAD_MESSAGES ?? 5000);
const WORKERS = 3;
const RETRY = { initialDelay: 100, maxDelay: 1000, maxAttempts: 10 };

let smtp;
let redis;

before(async () => {
  redis = await startRedis();
  smtp = await startSmtp({ tempFail: (info) => !info.subject?.startsWith('bull/decide') && Math.random() < 0.05 });
});
after(async () => {
  await smtp?.close();
  await redis?.stop();
});

describe('BullMQ store', () => {
  test(`${TOTAL} messages, ${WORKERS} worker processes, 5% 4xx: everything sent or failed with its reason; counts match the server`, async () => {
    const queueName = `load-${Date.now()}`;
    const client = createClient({ host: '127.0.0.1', port: smtp.port, security: 'none' });
    const outbox = createOutbox({ client, store: bullmqStore({ connection: redis.connection, queueName }), retry: RETRY });
    const workers = [];
    try {
      const t0 = Date.now();
      const ids = [];
      const rejected = new Set();
      for (let start = 0; start < TOTAL; start += 100) {
        const batch = [];
        for (let i = start; i < Math.min(TOTAL, start + 100); i++) {
          const reject = i % 100 === 42;
          if (reject) rejected.add(i);
          batch.push(outbox.enqueue({ from: 'ann@example.com', to: reject ? `reject-${i}@example.org` : `user${i}@example.org`, subject: `load/${i}`, text: `message ${i}` }));
        }
        ids.push(...(await Promise.all(batch)));
      }
      const enqueued = Date.now() - t0;

      const config = {
        store: { kind: 'bullmq', connection: redis.connection, queueName },
        smtp: { port: smtp.port },
        retry: RETRY,
        concurrency: 16,
        maxConnections: 4,
        report: true,
      };
      for (let w = 0; w < WORKERS; w++) workers.push(startWorker(config));
      await Promise.all(workers.map((w) => w.waitFor(/^READY/)));
      const t1 = Date.now();
      const queue = await outbox.store.queue();
      await waitFor(async () => {
        const counts = await queue.getJobCounts('completed', 'failed');
        return counts.completed + counts.failed === TOTAL;
      }, 200_000, 'every job completed or failed');
      const sending = Date.now() - t1;

      const statuses = [];
      for (let start = 0; start < TOTAL; start += 200) statuses.push(...(await Promise.all(ids.slice(start, start + 200).map((id) => outbox.status(id)))));
      const sent = statuses.filter((s) => s.state === 'sent');
      const failed = statuses.filter((s) => s.state === 'failed');
      const states = {};
      for (const s of statuses) states[s.state] = (states[s.state] ?? 0) + 1;
      assert.equal(sent.length + failed.length, TOTAL, `states: ${JSON.stringify(states)}`);
      // Failed: exactly the refused recipients, each with its reason.
      assert.equal(failed.length, rejected.size);
      for (const f of failed) {
        assert.equal(f.error.code, 'ERECIPIENTS');
        assert.equal(f.error.reply.code, 550);
        assert.match(f.error.message, /refused every recipient/);
        assert.match(f.reply, /^550 /);
      }
      // Sent: each accepted by the server exactly once; nothing else accepted.
      const acceptedBySubject = new Map();
      for (const m of smtp.accepted) if (m.subject?.startsWith('load/')) acceptedBySubject.set(m.subject, (acceptedBySubject.get(m.subject) ?? 0) + 1);
      assert.equal(acceptedBySubject.size, sent.length, 'the server accepted as many distinct messages as the outbox reports sent');
      const duplicates = [...acceptedBySubject].filter(([, n]) => n !== 1);
      assert.deepEqual(duplicates, [], 'no message accepted twice');
      for (let i = 0; i < TOTAL; i++) {
        const expected = rejected.has(i) ? 0 : 1;
        assert.equal(acceptedBySubject.get(`load/${i}`) ?? 0, expected, `load/${i}`);
      }
      const retried = sent.filter((s) => s.attempts > 1).length;
      assert.ok(smtp.tempFailed > TOTAL * 0.02, `the server answered 4xx ${smtp.tempFailed} times`);
      assert.ok(retried > 0);
      const perWorker = workers.map((w) => w.lines.filter((l) => l.startsWith('OUTCOME')).length);
      assert.ok(perWorker.every((n) => n > 0), `every worker process took part (${perWorker})`);
      console.log(
        `# load: ${TOTAL} enqueued in ${enqueued} ms; sent ${sent.length} (${retried} after a 4xx), failed ${failed.length}; ` +
          `${smtp.tempFailed} 4xx answers; ${sending} ms with ${WORKERS} workers (outcomes per worker: ${perWorker.join(', ')})`,
      );
    } finally {
      await Promise.all(workers.map((w) => w.stop()));
      await outbox.close();
      await client.close();
    }
  });

  test('decisions: a dead letter retried, a delayed message discarded, status of an unknown id', async () => {
    const queueName = `decide-${Date.now()}`;
    const client = createClient({ host: '127.0.0.1', port: smtp.port, security: 'none' });
    const outcomes = [];
    const outbox = createOutbox({
      client,
      store: bullmqStore({ connection: redis.connection, queueName }),
      retry: RETRY,
      onOutcome: (s) => outcomes.push(s),
    });
    try {
      const bad = await outbox.enqueue({ from: 'ann@example.com', to: 'reject-1@example.org', subject: 'bull/decide/1', text: 'x' });
      const later = await outbox.enqueue({ from: 'ann@example.com', to: 'bob@example.org', subject: 'bull/decide/2', text: 'x' }, { delay: 60_000 });
      const again = await outbox.enqueue({ from: 'ann@example.com', to: 'bob@example.org', subject: 'bull/decide/3', text: 'x' }, { id: 'bull-key-1' });
      assert.equal(await outbox.enqueue({ from: 'ann@example.com', to: 'bob@example.org', subject: 'bull/decide/3', text: 'x' }, { id: 'bull-key-1' }), again);
      await outbox.work({ concurrency: 2 });
      await waitFor(async () => (await outbox.status(bad)).state === 'failed' && (await outbox.status(again)).state === 'sent');
      assert.equal(smtp.count('bull/decide/3'), 1);
      assert.deepEqual((await outbox.deadLetters()).map((d) => d.id), [bad]);
      assert.equal((await outbox.status(later)).state, 'queued');
      const discarded = await outbox.discard(later);
      assert.equal(discarded.state, 'failed');
      await waitFor(async () => (await outbox.status(later)).state === 'failed');
      assert.equal(smtp.count('bull/decide/2'), 0);
      await outbox.retry(bad);
      await waitFor(async () => {
        const s = await outbox.status(bad);
        return s.state === 'failed' && s.attempts === 2;
      });
      assert.equal(await outbox.status('no-such-id'), null);
      // The idempotency key of a sent message and of a dead letter is remembered: nothing is stored again.
      assert.equal(await outbox.enqueue({ from: 'ann@example.com', to: 'bob@example.org', subject: 'bull/decide/3-again', text: 'x' }, { id: 'bull-key-1' }), 'bull-key-1');
      const deadKey = await outbox.enqueue({ from: 'ann@example.com', to: 'reject-2@example.org', subject: 'bull/decide/4', text: 'x' }, { id: 'bull-key-2' });
      await waitFor(async () => (await outbox.status(deadKey)).state === 'failed');
      await outbox.enqueue({ from: 'ann@example.com', to: 'bob@example.org', subject: 'bull/decide/4-again', text: 'x' }, { id: 'bull-key-2' });
      await new Promise((r) => setTimeout(r, 300));
      assert.equal((await outbox.status('bull-key-1')).state, 'sent');
      assert.equal((await outbox.status('bull-key-2')).state, 'failed');
      assert.equal(smtp.count('bull/decide/3'), 1);
      assert.equal(smtp.dataEnds.filter((m) => /-again$/.test(m.subject ?? '')).length, 0);
      // Past their retention, prune() removes the sent job and the dead letter (never an unknown one) and frees the ids.
      await outbox.stop();
      const pruner = bullmqStore({ connection: redis.connection, queueName, keepSent: 0, keepFailed: 0 });
      await new Promise((r) => setTimeout(r, 20));
      await pruner.prune();
      await pruner.close();
      assert.equal(await outbox.status('bull-key-1'), null);
      assert.equal(await outbox.status('bull-key-2'), null);
      assert.throws(() => bullmqStore({ connection: redis.connection, keepSend: 1 }), /bullmqStore has no option keepSend/);
    } finally {
      await outbox.close();
      await client.close();
    }
  });
});
