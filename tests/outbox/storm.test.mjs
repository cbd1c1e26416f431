// A 451 storm with no crash, on the spool store and on BullMQ: 600
// messages, 200 refused with 550 at RCPT, 400 answered 451 at the end of
// data on every attempt, one worker in this process, and status() polled
// all along in rounds of 300 calls at once. Nothing is killed and nobody
// decides, so:
//   - status(id) is never null, and a settled state never changes;
//   - every message ends failed: the 550s after one attempt, the 451s after
//     exactly maxAttempts, each attempt seen once by the server;
//   - the server accepts nothing;
//   - the spool's invariant holds at the end (one record per id).

import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';

import { bullmqStore, createClient, createOutbox, spoolStore } from 'wasmtp';

import { spoolInvariant, startChaosSmtp, startRedis, tempDir, waitFor } from './helpers.mjs';

const TOTAL = 600;
const REFUSED = 200;
const RETRY = { initialDelay: 10, maxDelay: 40, jitter: 0.5, maxAttempts: 3 };
const POLLS_IN_FLIGHT = Number(process.env.OUTBOX_STORM_POLLS ?? 300);

let smtp;
let redis;

before(async () => {
  smtp = await startChaosSmtp();
  redis = await startRedis();
});
after(async () => {
  await smtp?.close();
  await redis?.stop();
});

const stores = {
  spool: () => {
    const dir = tempDir('wasmtp-outbox-storm-');
    return {
      store: spoolStore({ dir, pollInterval: 20 }),
      invariant: (ids) => spoolInvariant(dir, ids),
      cleanup: () => rmSync(dir, { recursive: true, force: true }),
    };
  },
  bullmq: () => ({
    store: bullmqStore({ connection: redis.connection, queueName: `storm-${Math.random().toString(36).slice(2)}` }),
    invariant: () => [],
    cleanup: () => {},
  }),
};

for (const kind of ['spool', 'bullmq']) {
  describe(`451 storm (${kind} store)`, () => {
    test(`${TOTAL} messages, ${REFUSED} refused, ${TOTAL - REFUSED} deferred on every attempt, rounds of ${POLLS_IN_FLIGHT} parallel status() calls all along`, async () => {
      const { store, invariant, cleanup } = stores[kind]();
      const client = createClient({ host: '127.0.0.1', port: smtp.port, security: 'none', pool: { maxConnections: 8 } });
      let finals = 0;
      const outbox = createOutbox({ client, store, retry: RETRY, onOutcome: (s) => (finals += s.state === 'failed' ? 1 : 0) });
      const tag = `${kind}-${Date.now().toString(36)}`;
      const ids = [];
      const refused = new Set();
      const problems = [];
      const settledAs = new Map();
      let polls = 0;
      let polling = true;
      const pollers = [];
      const t0 = Date.now();
      let t1 = t0;
      try {
        for (let i = 0; i < TOTAL; i++) {
          const reject = i % 3 === 0;
          const id = await outbox.enqueue({ from: 'ann@example.com', to: `${reject ? 'reject' : 'defer'}-${tag}-${i}@example.org`, subject: `storm/${tag}/${i}`, text: `message ${i}` });
          ids.push(id);
          if (reject) refused.add(id);
        }
        t1 = Date.now();
        // Rounds of 300 status() calls at once, on random messages, all along
        // (a short pause between rounds leaves the worker some of the disk).
        const poll = async (id) => {
          const s = await outbox.status(id);
          polls += 1;
          if (s === null) problems.push(`${id}: status() is null`);
          else if (['sent', 'failed', 'unknown'].includes(s.state)) {
            const before = settledAs.get(id);
            if (before && before !== s.state) problems.push(`${id}: ${before} became ${s.state}`);
            settledAs.set(id, s.state);
          } else if (settledAs.has(id)) problems.push(`${id}: ${settledAs.get(id)} became ${s.state}`);
        };
        pollers.push(
          (async () => {
            while (polling) {
              await Promise.all(Array.from({ length: POLLS_IN_FLIGHT }, () => poll(ids[Math.floor(Math.random() * ids.length)])));
              await new Promise((r) => setTimeout(r, 25));
            }
          })(),
        );
        await outbox.work({ concurrency: 16 });
        await waitFor(
          () => finals >= TOTAL,
          180_000,
          'every message failed',
        ).catch(async (error) => {
          const states = {};
          for (const id of ids) {
            const s = await outbox.status(id);
            states[s?.state] = (states[s?.state] ?? 0) + 1;
          }
          error.message += ` (states: ${JSON.stringify(states)})`;
          throw error;
        });
        polling = false;
        await Promise.all(pollers);
        await outbox.stop();

        assert.deepEqual(problems.slice(0, 20), [], `${problems.length} problems`);
        for (const id of ids) {
          const s = await outbox.status(id);
          const i = ids.indexOf(id);
          assert.equal(s.state, 'failed', id);
          if (refused.has(id)) {
            assert.equal(s.attempts, 1, `${id} refused: one attempt`);
            assert.equal(s.error.reply.code, 550);
            assert.equal(smtp.dataEnds.get(`storm/${tag}/${i}`) ?? 0, 0);
          } else {
            assert.equal(s.attempts, RETRY.maxAttempts, `${id} deferred: every attempt made`);
            assert.equal(s.error.reply.code, 451);
            assert.equal(s.error.exhausted, true);
            assert.equal(smtp.dataEnds.get(`storm/${tag}/${i}`), RETRY.maxAttempts, `${id}: each attempt reached the server once`);
          }
          assert.equal(smtp.accepted.get(`storm/${tag}/${i}`) ?? 0, 0);
        }
        assert.deepEqual(invariant(ids), []);
        assert.ok(polls > TOTAL, `status() was polled ${polls} times`);
        console.log(`# storm ${kind}: ${TOTAL} messages enqueued in ${t1 - t0} ms, all failed as expected after ${Date.now() - t1} ms; ${polls} status() calls meanwhile`);
      } finally {
        polling = false;
        await Promise.all(pollers).catch(() => {});
        await outbox.close();
        await client.close();
        cleanup();
      }
    });
  });
}
