// A model-based test of the outbox's promise, on the spool store and on
// BullMQ (a private redis-server): "a message is never lost and never sent
// twice behind your back".
//
// A seeded PRNG picks random operations: enqueue (with and without an
// idempotency key, and again with a key already used, in any state), start a
// worker process, SIGKILL one, status, retry, markSent, discard, and a look
// at the store with every worker frozen (SIGSTOP). The server (helpers.mjs,
// startChaosSmtp) accepts, refuses (550), defers (451), and cuts connections
// before and after the end of data, and records every message it gets.
// A poller reads every status in parallel all along. Each status is held to
// the model of the promised semantics:
//   - never null once enqueue() resolved;
//   - a settled state (sent, failed, unknown) changes only by a decision
//     (retry, markSent, discard) made meanwhile; attempts never go down;
//   - never `sent` for a message the server refused or deferred every time
//     (unless markSent decided it), never `unknown` for one refused at RCPT
//     unless a worker was killed holding it (EWORKER_LOST);
//   - the server accepts a message at most once, plus once per retry decided;
//     an idempotent enqueue of a used key is never sent at all;
//   - at the end (no kills, unknowns decided), each message is where its
//     behaviour says: sent (and accepted), failed with 550, failed after
//     maxAttempts, or failed by discard().
// The spool's invariant (one record per id, in one state directory) and
// BullMQ's (each job in exactly one BullMQ state, its record matching) are
// checked with the workers frozen.
//
// Each run prints its seed; OUTBOX_MODEL_SEED=<n> replays one (the same
// operations; timing still varies). OUTBOX_MODEL_RUNS: runs per store, each
// with a fresh seed (default 2); OUTBOX_MODEL_OPS: operations per run (140).

import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';

import { bullmqStore, createClient, createOutbox, spoolStore } from 'wasmtp';

import { frozen, seededRandom, spoolInvariant, startChaosSmtp, startRedis, startWorker, tempDir, waitFor } from './helpers.mjs';

const RETRY = { initialDelay: 20, maxDelay: 200, jitter: 0.5, maxAttempts: 4 };
const OPS = Number(process.env.OUTBOX_MODEL_OPS ?? 140);
const SETTLED = ['sent', 'failed', 'unknown'];
const STATES = ['queued', 'sending', 'sent', 'deferred', 'failed', 'unknown'];
const BEHAVIOURS = ['accept', 'accept', 'accept', 'reject', 'defer', 'cutdata', 'cutrcpt'];

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
    const dir = tempDir('wasmtp-outbox-model-');
    return {
      kind: 'spool',
      config: { kind: 'spool', dir, pollInterval: 50 },
      make: () => spoolStore({ dir, pollInterval: 50 }),
      invariant: async (ids) => spoolInvariant(dir, ids),
      cleanup: () => rmSync(dir, { recursive: true, force: true }),
    };
  },
  bullmq: () => {
    const queueName = `model-${Math.random().toString(36).slice(2)}`;
    const opts = { connection: redis.connection, queueName, lockDuration: 3000, stalledInterval: 1000 };
    let store;
    return {
      kind: 'bullmq',
      config: { kind: 'bullmq', ...opts },
      make: () => (store = bullmqStore(opts)),
      invariant: async (ids) => bullmqInvariant(await store.queue(), ids),
      cleanup: () => {},
    };
  },
};

/**
 * BullMQ's invariant, read in one MULTI: each id is in exactly one BullMQ
 * state, and its record agrees (completed: sent; failed: failed, unknown
 * or marked sent).
 */
async function bullmqInvariant(queue, ids) {
  const client = queue.getBackend ? await queue.getBackend().client : await queue.client;
  const k = queue.keys;
  const lists = ['wait', 'active', 'paused'];
  const sets = ['delayed', 'prioritized', 'completed', 'failed', 'waiting-children'];
  const multi = client.multi();
  for (const l of lists) multi.lrange(k[l], 0, -1);
  for (const s of sets) multi.zrange(k[s], 0, -1);
  for (const id of ids) multi.hget(queue.toKey(id), 'progress');
  const replies = (await multi.exec()).map(([error, value]) => {
    if (error) throw error;
    return value;
  });
  const where = new Map();
  [...lists, ...sets].forEach((name, i) => {
    for (const id of replies[i]) where.set(id, [...(where.get(id) ?? []), name]);
  });
  const breaches = [];
  ids.forEach((id, i) => {
    const states = where.get(id) ?? [];
    if (states.length !== 1) return breaches.push(`${id}: in ${states.length} BullMQ states (${states})`);
    const progress = replies[lists.length + sets.length + i];
    const record = progress ? JSON.parse(progress) : null;
    if (states[0] === 'completed' && record?.state !== 'sent') breaches.push(`${id}: completed with a ${record?.state} record`);
    if (states[0] === 'failed' && !['failed', 'unknown', 'sent'].includes(record?.state)) breaches.push(`${id}: failed with a ${record?.state} record`);
  });
  return breaches;
}

/** The model: what was enqueued and decided, what was seen, and what breaks the promise. */
class Model {
  constructor(seed) {
    this.seed = seed;
    this.messages = new Map(); // id → { behaviour, subject, versions, decisions: [], retries, discards, marks, seen }
    this.violations = [];
  }

  fail(text) {
    if (this.violations.length < 50 && !this.violations.includes(text)) this.violations.push(text);
  }

  /** A decision on `id` starts; the returned function ends it (kept: true when it took effect). */
  decision(id, verb) {
    const m = this.messages.get(id);
    const d = { verb, start: performance.now(), end: Infinity };
    m.decisions.push(d);
    return (kept) => {
      if (kept) {
        d.end = performance.now();
        if (verb === 'retry') m.retries += 1;
        if (verb === 'discard') m.discards += 1;
        if (verb === 'markSent') m.marks += 1;
      } else {
        m.decisions.splice(m.decisions.indexOf(d), 1);
      }
    };
  }

  /** One status read between `start` and `end` (performance.now()). */
  observe(id, status, start, end) {
    const m = this.messages.get(id);
    const where = `${id} (${m.behaviour})`;
    if (status === null) return this.fail(`${where}: status() is null after enqueue() resolved`);
    if (!STATES.includes(status.state)) return this.fail(`${where}: state ${status.state}`);
    const decided = (from, to) => m.decisions.some((d) => d.start < to && d.end > from);
    if (m.settled && start > m.settled.end && status.state !== m.settled.state && !decided(m.settled.start, end)) {
      this.fail(`${where}: ${m.settled.state} became ${status.state} without a decision (${JSON.stringify(status.error ?? null)})`);
    }
    if (m.last && start > m.last.end && status.attempts < m.last.attempts) this.fail(`${where}: attempts went down from ${m.last.attempts} to ${status.attempts}`);
    if (status.state === 'sent' && !status.markedSent && ['reject', 'defer'].includes(m.behaviour)) this.fail(`${where}: sent, but the server never accepts it`);
    // "committing" is saved when the end of data is handed to the engine, which may be before the
    // server answered RCPT (pipelining): only a worker killed right then leaves a refused message unknown.
    if (status.state === 'unknown' && m.behaviour === 'reject' && status.error?.code !== 'EWORKER_LOST') {
      this.fail(`${where}: unknown, but the server refuses it before the data (${JSON.stringify(status.error)})`);
    }
    if (!m.last || end > m.last.end) m.last = { attempts: status.attempts, end };
    if (SETTLED.includes(status.state)) {
      if (!m.settled || end > m.settled.end || status.state !== m.settled.state) m.settled = { state: status.state, start, end };
    } else if (m.settled && start > m.settled.end) {
      m.settled = null;
    }
    m.seen = status;
  }

  /** What the server got, against what was decided. */
  checkDeliveries(server) {
    for (const [id, m] of this.messages) {
      const accepted = server.accepted.get(m.subject) ?? 0;
      if (accepted > 1 + m.retries) this.fail(`${id} (${m.behaviour}): accepted ${accepted} times with ${m.retries} retry decisions`);
      for (let v = 1; v < m.versions; v++) {
        const again = `${m.subject}~${v}`;
        if (server.dataEnds.has(again)) this.fail(`${id}: the enqueue again with its id (${again}) was sent`);
      }
    }
  }
}

async function modelRun(kindName, seed) {
  const random = seededRandom(seed);
  const pick = (list) => list[Math.floor(random() * list.length)];
  const store = stores[kindName]();
  const client = createClient({ host: '127.0.0.1', port: smtp.port, security: 'none' });
  const outbox = createOutbox({ client, store: store.make(), retry: RETRY });
  const model = new Model(seed);
  const workers = [];
  const workerConfig = { store: store.config, smtp: { port: smtp.port }, retry: RETRY, concurrency: 4, maxConnections: 2 };
  const tag = `${kindName}-${seed}`;
  let serial = 0;
  let polling = true;

  const status = async (id) => {
    const start = performance.now();
    const s = await outbox.status(id);
    model.observe(id, s, start, performance.now());
    return s;
  };
  // The parallel poller: every id, 50 at a time, all along.
  const poller = (async () => {
    while (polling) {
      const ids = [...model.messages.keys()];
      for (let at = 0; at < ids.length && polling; at += 50) await Promise.all(ids.slice(at, at + 50).map(status));
      await new Promise((r) => setTimeout(r, 5));
    }
  })();

  const lookFrozen = async () => {
    const breaches = await frozen(
      workers.map((w) => w.pid),
      () => store.invariant([...model.messages.keys()]),
    );
    for (const b of breaches) model.fail(`invariant: ${b}`);
  };

  const enqueue = async () => {
    const reuse = model.messages.size > 0 && random() < 0.15;
    if (reuse) {
      // The idempotency key of a message already enqueued, whatever its state now.
      const id = pick([...model.messages.keys()]);
      const m = model.messages.get(id);
      const subject = `${m.subject}~${m.versions++}`;
      const got = await outbox.enqueue({ from: 'ann@example.com', to: m.to, subject, text: 'again' }, { id });
      if (got !== id) model.fail(`${id}: enqueue again with its id returned ${got}`);
      return;
    }
    const n = serial++;
    const behaviour = pick(BEHAVIOURS);
    const to = `${behaviour}-${tag}-${n}@example.org`;
    const subject = `model/${tag}/${n}`;
    const keyed = random() < 0.5;
    const id = await outbox.enqueue({ from: 'ann@example.com', to, subject, text: `message ${n}` }, keyed ? { id: `key-${tag}-${n}` } : {});
    model.messages.set(id, { behaviour, to, subject, versions: 1, decisions: [], retries: 0, discards: 0, marks: 0, seen: null });
    model.observe(id, await outbox.status(id), performance.now(), performance.now());
  };

  /** A decision on `id` (by default one picked at random, mostly among those waiting for one). */
  const decide = async (verb, id) => {
    if (model.messages.size === 0) return;
    if (id === undefined) {
      const waiting = [...model.messages].filter(([, m]) => ['unknown', 'failed', 'deferred', 'queued'].includes(m.seen?.state)).map(([i]) => i);
      id = waiting.length > 0 && random() < 0.7 ? pick(waiting) : pick([...model.messages.keys()]);
    }
    const done = model.decision(id, verb);
    try {
      const result = await (verb === 'discard' ? outbox.discard(id, { reason: 'model test' }) : outbox[verb](id));
      done(true);
      const expected = { retry: 'queued', markSent: 'sent', discard: 'failed' }[verb];
      if (result.state !== expected) model.fail(`${id}: ${verb}() resolved with ${result.state}`);
    } catch (error) {
      done(false);
      const expected = error.code === 'EBUSY' || (error.code === 'EINPUT' && /applies to a message that is/.test(error.message));
      if (!expected) model.fail(`${id}: ${verb}() failed: ${error.code} ${error.message}`);
    }
  };

  const startOne = async () => {
    const w = startWorker(workerConfig);
    workers.push(w);
    await w.waitFor(/^READY/, 30_000);
  };

  try {
    await startOne();
    for (let op = 0; op < OPS; op++) {
      const r = random();
      if (r < 0.4) await enqueue();
      else if (r < 0.47) {
        if (workers.length < 2) await startOne();
      } else if (r < 0.53) {
        if (workers.length > 0) {
          const victim = workers.splice(Math.floor(random() * workers.length), 1)[0];
          await victim.kill();
        }
      } else if (r < 0.65) {
        if (model.messages.size > 0) await status(pick([...model.messages.keys()]));
      } else if (r < 0.75) await decide('retry');
      else if (r < 0.83) await decide('markSent');
      else if (r < 0.92) await decide('discard');
      else await lookFrozen();
      await new Promise((resolve) => setTimeout(resolve, Math.floor(random() * 40)));
    }

    // Quiet: no more kills; a worker runs; unknowns are decided until every message is sent or failed.
    if (workers.length === 0) await startOne();
    await waitFor(
      async () => {
        let open = 0;
        for (const id of model.messages.keys()) {
          const s = await status(id);
          if (s?.state === 'unknown') await decide(pick(['retry', 'markSent', 'discard']), id);
          else if (s && s.state !== 'sent' && s.state !== 'failed') open += 1;
        }
        return open === 0 && [...model.messages.values()].every((m) => m.seen?.state === 'sent' || m.seen?.state === 'failed');
      },
      90_000,
      'every message sent or failed',
    ).catch((error) => {
      const open = [...model.messages].filter(([, m]) => !['sent', 'failed'].includes(m.seen?.state)).map(([id, m]) => `${id}: ${JSON.stringify(m.seen)}`);
      model.fail(`${error.message}: ${open.slice(0, 5).join('; ')}`);
    });
    polling = false;
    await poller;
    await lookFrozen();

    // Where each message ended, against its behaviour and what the server got.
    model.checkDeliveries(smtp);
    for (const [id, m] of model.messages) {
      const s = m.seen;
      const accepted = smtp.accepted.get(m.subject) ?? 0;
      const where = `${id} (${m.behaviour})`;
      if (s.state === 'sent' && !s.markedSent && accepted < 1) model.fail(`${where}: sent, but the server never accepted it`);
      if (s.state === 'failed' && accepted > 0 && m.discards === 0) model.fail(`${where}: failed, but the server accepted it (no discard decided)`);
      if (s.state === 'failed' && s.error?.code !== 'EDISCARDED') {
        if (m.behaviour === 'reject' && s.error?.reply?.code !== 550) model.fail(`${where}: failed without the 550: ${JSON.stringify(s.error)}`);
        if (m.behaviour === 'defer' && !(s.error?.exhausted && s.attempts - 0 >= RETRY.maxAttempts)) model.fail(`${where}: failed before maxAttempts: ${JSON.stringify(s)}`);
        if (['accept', 'cutdata', 'cutrcpt'].includes(m.behaviour) && !s.error?.exhausted) model.fail(`${where}: failed: ${JSON.stringify(s.error)}`);
      }
    }
    return model;
  } finally {
    polling = false;
    await poller.catch(() => {});
    await Promise.all(workers.map((w) => w.kill()));
    await outbox.close();
    await client.close();
    store.cleanup();
  }
}

const RUNS = Number(process.env.OUTBOX_MODEL_RUNS ?? 2);
const seeds = process.env.OUTBOX_MODEL_SEED
  ? [Number(process.env.OUTBOX_MODEL_SEED)]
  : Array.from({ length: RUNS }, () => Math.floor(Math.random() * 2 ** 31));

for (const kind of ['spool', 'bullmq']) {
  describe(`model-based test (${kind} store)`, () => {
    for (const seed of seeds) {
      test(`random operations against the model (seed ${seed}; replay: OUTBOX_MODEL_SEED=${seed})`, async () => {
        const model = await modelRun(kind, seed);
        const counts = {};
        for (const m of model.messages.values()) counts[m.seen?.state] = (counts[m.seen?.state] ?? 0) + 1;
        const decisions = [...model.messages.values()].reduce((n, m) => n + m.retries + m.discards + m.marks, 0);
        console.log(`# model ${kind} seed ${seed}: ${model.messages.size} messages, ${decisions} decisions, ended ${JSON.stringify(counts)}`);
        assert.deepEqual(model.violations, [], `seed ${seed} (replay: OUTBOX_MODEL_SEED=${seed} scripts/test-outbox.sh model)`);
      });
    }
  });
}
