// The outbox on its default store, a spool directory: enqueue and status,
// the retry policy (4xx and connection failures retried with back-off,
// 5xx failed and dead-lettered, unknown held for a decision), decisions,
// idempotency keys, streams, and two worker processes sharing one spool.

import assert from 'node:assert/strict';
import { readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, test } from 'node:test';

import { createClient, createOutbox, SmtpError, spoolStore } from 'wasmtp';

import { startSmtp, startWorker, tempDir, waitFor } from './helpers.mjs';

const FAST = { initialDelay: 50, maxDelay: 200, jitter: 0.5 };
const SETTLED = ['sent', 'failed', 'unknown'];

let smtp;
/** Subjects answered 451 this many more times. */
const tempFailures = new Map();
let holdSubjects = new Set();

before(async () => {
  smtp = await startSmtp({
    tempFail(info) {
      const left = tempFailures.get(info.subject) ?? 0;
      if (left > 0) tempFailures.set(info.subject, left - 1);
      return left > 0;
    },
    onDataEnd: (info) => (holdSubjects.has(info.subject) ? 'hold' : 'reply'),
  });
});
after(() => smtp.close());

/** A fresh spool, a client and an outbox; `cleanup()` ends them. */
function setup({ retry = FAST, atLeastOnce, timeouts, port, onOutcome } = {}) {
  const dir = tempDir('wasmtp-outbox-spool-');
  const client = createClient({ host: '127.0.0.1', port: port ?? smtp.port, security: 'none', timeouts });
  const outcomes = [];
  const outbox = createOutbox({
    client,
    store: spoolStore({ dir, pollInterval: 50 }),
    retry,
    atLeastOnce,
    onOutcome: (s) => {
      outcomes.push(s);
      onOutcome?.(s);
    },
  });
  return {
    dir,
    client,
    outbox,
    outcomes,
    cleanup: async () => {
      await outbox.close();
      await client.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function settled(outbox, id, ms = 15_000) {
  return waitFor(async () => {
    const s = await outbox.status(id);
    return s && SETTLED.includes(s.state) ? s : null;
  }, ms, `message ${id} to settle`).catch(async (error) => {
    error.message += `; its status: ${JSON.stringify(await outbox.status(id))}`;
    throw error;
  });
}

const msg = (subject, extra = {}) => ({ from: 'Ann <ann@example.com>', to: 'bob@example.org', subject, text: 'hello', ...extra });

describe("send()'s beforeDataEnd (the seam the outbox relies on)", () => {
  test('runs after the body and before the end of data; if it rejects, the end is never sent', async () => {
    const client = createClient({ host: '127.0.0.1', port: smtp.port, security: 'none' });
    try {
      let seenBefore = null;
      await client.send(msg('hook/ok', { text: 'y'.repeat(500_000) }), {
        beforeDataEnd: async () => {
          await new Promise((r) => setTimeout(r, 100));
          seenBefore = smtp.dataEnds.filter((m) => m.subject === 'hook/ok').length;
        },
      });
      assert.equal(seenBefore, 0, 'the server had not seen the end of data when the hook ran');
      assert.equal(smtp.count('hook/ok'), 1);
      await assert.rejects(
        client.send(msg('hook/refused'), { beforeDataEnd: () => Promise.reject(new Error('disk full')) }),
        (e) => e instanceof SmtpError && e.code === 'EINPUT' && e.deliveryState === 'not-sent' && /disk full/.test(e.message),
      );
      await new Promise((r) => setTimeout(r, 200));
      assert.equal(smtp.dataEnds.filter((m) => m.subject === 'hook/refused').length, 0);
      // The client still works afterwards.
      await client.send(msg('hook/after'));
      assert.equal(smtp.count('hook/after'), 1);
      await assert.rejects(client.send(msg('hook/bad'), { beforeDataEnd: 'no' }), /must be a function/);
    } finally {
      await client.close();
    }
  });
});

describe('spool store', () => {
  test('enqueue stores durably and returns an id; status reports queued, then sent with the reply', async () => {
    const t = setup();
    try {
      const id = await t.outbox.enqueue(msg('spool/basic'));
      assert.match(id, /^[a-z0-9]+$/);
      const queued = await t.outbox.status(id);
      assert.equal(queued.state, 'queued');
      assert.equal(queued.attempts, 0);
      assert.match(queued.messageId, /^<.+@example\.com>$/);
      assert.deepEqual(readdirSync(join(t.dir, 'queue')), [`${id}.json`]);
      assert.deepEqual(readdirSync(join(t.dir, 'msg')), [`${id}.json`]);
      await t.outbox.work({ concurrency: 2 });
      const s = await settled(t.outbox, id);
      assert.equal(s.state, 'sent');
      assert.equal(s.attempts, 1);
      assert.match(s.reply, /^250 /);
      assert.deepEqual(s.result.accepted, ['bob@example.org']);
      assert.equal(s.result.messageId, queued.messageId, 'the Message-ID stays the one given at enqueue');
      assert.equal(smtp.count('spool/basic'), 1);
      assert.equal(smtp.accepted.find((m) => m.subject === 'spool/basic').messageId, queued.messageId);
      assert.deepEqual(t.outcomes.map((o) => [o.id, o.state]), [[id, 'sent']]);
      const kept = JSON.parse(readFileSync(join(t.dir, 'msg', `${id}.json`), 'utf8'));
      assert.equal(kept.message, undefined, 'a sent message body is deleted');
      assert.equal(kept.id, id, 'its file stays, as the reservation of the id');
    } finally {
      await t.cleanup();
    }
  });

  test('a message the engine refuses is refused at enqueue, and nothing is stored; a bad raw envelope fails its first attempt', async () => {
    const t = setup();
    try {
      await assert.rejects(t.outbox.enqueue({ from: 'not an address', to: 'bob@example.org', text: 'x' }), (e) => e instanceof SmtpError && e.code === 'EINPUT');
      assert.deepEqual(await t.outbox.list(), []);
      // A raw message's envelope is checked when the engine sees it: at
      // enqueue, or at the latest when it is submitted, where the first
      // attempt fails for good (EINPUT is not retryable).
      let id;
      try {
        id = await t.outbox.enqueue({ raw: 'Subject: x\r\n\r\nx', envelope: { from: 'ann@example.com', to: ['bad address'] } });
      } catch (error) {
        assert.equal(error.code, 'EINPUT');
        return;
      }
      await t.outbox.work();
      const s = await settled(t.outbox, id);
      assert.equal(s.state, 'failed');
      assert.equal(s.attempts, 1);
      assert.equal(s.error.code, 'EINPUT');
    } finally {
      await t.cleanup();
    }
  });

  test('4xx: deferred with back-off, then sent; the attempts and the last error are reported', async () => {
    const t = setup();
    try {
      tempFailures.set('spool/4xx', 2);
      const id = await t.outbox.enqueue(msg('spool/4xx'));
      await t.outbox.work();
      const s = await settled(t.outbox, id);
      assert.equal(s.state, 'sent');
      assert.equal(s.attempts, 3);
      assert.equal(smtp.count('spool/4xx'), 1);
      const deferred = t.outcomes.filter((o) => o.state === 'deferred');
      assert.equal(deferred.length, 2);
      assert.equal(deferred[0].error.reply.code, 451);
      assert.match(deferred[0].reply, /^451 /);
      assert.ok(deferred[0].nextAttemptAt > deferred[0].updatedAt, 'a back-off before the next attempt');
    } finally {
      await t.cleanup();
    }
  });

  test('5xx: failed at once, with the reason, in the dead-letter list; retry(id) sends it again', async () => {
    const t = setup();
    try {
      const id = await t.outbox.enqueue(msg('spool/5xx', { to: ['reject-me@example.org'] }));
      await t.outbox.work();
      const s = await settled(t.outbox, id);
      assert.equal(s.state, 'failed');
      assert.equal(s.attempts, 1);
      assert.equal(s.error.code, 'ERECIPIENTS');
      assert.match(s.reply, /^550 /);
      assert.deepEqual((await t.outbox.deadLetters()).map((d) => d.id), [id]);
      // A decision: try again (still 5xx, so failed again, with attempts counted on).
      await t.outbox.retry(id);
      await waitFor(async () => (await t.outbox.status(id)).attempts === 2 && (await t.outbox.status(id)).state === 'failed');
    } finally {
      await t.cleanup();
    }
  });

  test('connection failures are retried until maxAttempts, then failed with the reason', async () => {
    // A port nobody listens on.
    const t = setup({ port: 1, retry: { ...FAST, maxAttempts: 3 } });
    try {
      const id = await t.outbox.enqueue(msg('spool/refused'));
      await t.outbox.work();
      const s = await settled(t.outbox, id);
      assert.equal(s.state, 'failed');
      assert.equal(s.attempts, 3);
      assert.equal(s.error.code, 'ECONNECT');
      assert.match(s.error.message, /gave up after 3 attempts/);
      await waitFor(() => t.outcomes.length === 3);
      assert.deepEqual(t.outcomes.map((o) => o.state), ['deferred', 'deferred', 'failed']);
    } finally {
      await t.cleanup();
    }
  });

  test('maxAge: a message whose next attempt would come after maxAge is failed', async () => {
    const t = setup({ port: 1, retry: { ...FAST, initialDelay: 300, maxDelay: 1000, jitter: 0, maxAge: 200 } });
    try {
      const id = await t.outbox.enqueue(msg('spool/too-old'));
      await t.outbox.work();
      const s = await settled(t.outbox, id);
      assert.equal(s.state, 'failed');
      assert.equal(s.attempts, 1);
      assert.match(s.error.message, /retry.maxAge/);
    } finally {
      await t.cleanup();
    }
  });

  test('no reply after the end of data: unknown, never retried by itself; discard() or retry() decide', async () => {
    const t = setup({ timeouts: { dataEnd: 300 } });
    try {
      holdSubjects = new Set(['spool/unknown-1', 'spool/unknown-2']);
      const a = await t.outbox.enqueue(msg('spool/unknown-1'));
      const b = await t.outbox.enqueue(msg('spool/unknown-2'));
      await t.outbox.work();
      const [sa, sb] = [await settled(t.outbox, a), await settled(t.outbox, b)];
      for (const s of [sa, sb]) {
        assert.equal(s.state, 'unknown');
        assert.equal(s.error.deliveryState, 'unknown');
        assert.equal(s.error.code, 'ETIMEDOUT');
      }
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(smtp.dataEnds.filter((m) => m.subject === 'spool/unknown-1').length, 1, 'not sent again by itself');
      holdSubjects = new Set();
      const discarded = await t.outbox.discard(a, { reason: 'checked: it arrived' });
      assert.equal(discarded.state, 'failed');
      assert.equal(discarded.error.code, 'EDISCARDED');
      await t.outbox.retry(b);
      const again = await settled(t.outbox, b);
      assert.equal(again.state, 'sent');
      assert.equal(smtp.count('spool/unknown-2'), 1);
      await assert.rejects(t.outbox.retry(b), /applies to a message that is/);
      await assert.rejects(t.outbox.retry('nope'), /has no message nope/);
    } finally {
      holdSubjects = new Set();
      await t.cleanup();
    }
  });

  test('atLeastOnce: true sends an unknown message again by itself', async () => {
    const t = setup({ timeouts: { dataEnd: 300 }, atLeastOnce: true });
    try {
      holdSubjects = new Set(['spool/at-least-once']);
      const id = await t.outbox.enqueue(msg('spool/at-least-once'));
      await t.outbox.work();
      await waitFor(() => smtp.dataEnds.filter((m) => m.subject === 'spool/at-least-once').length >= 1);
      holdSubjects = new Set();
      const s = await settled(t.outbox, id);
      assert.equal(s.state, 'sent');
      assert.equal(s.attempts, 2);
    } finally {
      holdSubjects = new Set();
      await t.cleanup();
    }
  });

  test('an id given as an idempotency key is stored once; delay holds the first attempt back; discard cancels', async () => {
    const t = setup();
    try {
      const first = await t.outbox.enqueue(msg('spool/idempotent'), { id: 'order-42' });
      const second = await t.outbox.enqueue(msg('spool/idempotent'), { id: 'order-42' });
      assert.equal(first, 'order-42');
      assert.equal(second, 'order-42');
      const later = await t.outbox.enqueue(msg('spool/delayed'), { delay: 60_000 });
      await t.outbox.work();
      assert.equal((await settled(t.outbox, 'order-42')).state, 'sent');
      assert.equal(smtp.count('spool/idempotent'), 1);
      const waiting = await t.outbox.status(later);
      assert.equal(waiting.state, 'queued');
      assert.ok(waiting.nextAttemptAt > Date.now() + 50_000);
      assert.equal((await t.outbox.discard(later)).state, 'failed');
      assert.equal(smtp.count('spool/delayed'), 0);
      await assert.rejects(t.outbox.enqueue(msg('x'), { id: '../etc' }), /not usable/);
    } finally {
      await t.cleanup();
    }
  });

  test('an idempotency key is remembered after sent and failed (keepSent / keepFailed), then pruned and free again', async () => {
    const t = setup();
    try {
      await t.outbox.enqueue(msg('spool/key-sent'), { id: 'key-sent' });
      await t.outbox.enqueue(msg('spool/key-failed', { to: ['reject-key@example.org'] }), { id: 'key-failed' });
      await t.outbox.work();
      assert.equal((await settled(t.outbox, 'key-sent')).state, 'sent');
      assert.equal((await settled(t.outbox, 'key-failed')).state, 'failed');
      // The same keys again: nothing is stored, nothing is sent again.
      assert.equal(await t.outbox.enqueue(msg('spool/key-sent-again'), { id: 'key-sent' }), 'key-sent');
      assert.equal(await t.outbox.enqueue(msg('spool/key-failed-again'), { id: 'key-failed' }), 'key-failed');
      await new Promise((r) => setTimeout(r, 300));
      assert.equal((await t.outbox.status('key-sent')).state, 'sent');
      assert.equal((await t.outbox.status('key-failed')).state, 'failed');
      assert.equal(smtp.count('spool/key-sent'), 1);
      assert.equal(smtp.dataEnds.filter((m) => /^spool\/key-.*-again$/.test(m.subject)).length, 0);
      assert.deepEqual(readdirSync(join(t.dir, 'queue')), []);
      await t.outbox.stop();

      // Past their retention (the clock moved on), prune() deletes both records and frees the ids.
      const store = spoolStore({ dir: t.dir, keepSent: 0, keepFailed: 0 });
      const later = spoolStore({ dir: t.dir, keepSent: 60_000, keepFailed: 60_000 });
      await later.prune();
      assert.ok(await later.get('key-sent'), 'kept while younger than keepSent');
      await new Promise((r) => setTimeout(r, 20));
      await store.prune();
      assert.equal(await store.get('key-sent'), null);
      assert.equal(await store.get('key-failed'), null);
      assert.deepEqual(readdirSync(join(t.dir, 'msg')), []);
      await store.close();
      await later.close();
      assert.equal(await t.outbox.enqueue(msg('spool/key-sent-new'), { id: 'key-sent' }), 'key-sent');
      assert.equal((await t.outbox.status('key-sent')).state, 'queued');
      assert.throws(() => spoolStore({ dir: t.dir, keepSend: 1 }), /spoolStore has no option keepSend/);
      assert.throws(() => spoolStore({ dir: t.dir, keepFailed: 'long' }), /keepFailed must be a number/);
    } finally {
      await t.cleanup();
    }
  });

  test('streams (raw and attachments) are read at enqueue and sent byte for byte', async () => {
    const t = setup();
    try {
      const raw = 'From: ann@example.com\r\nTo: bob@example.org\r\nSubject: spool/raw-stream\r\n\r\nstreamed body\r\n';
      const a = await t.outbox.enqueue({ raw: Readable.from([raw.slice(0, 20), raw.slice(20)]), envelope: { from: 'ann@example.com', to: ['bob@example.org'] } });
      const b = await t.outbox.enqueue(
        msg('spool/attachment', { attachments: [{ filename: 'a.bin', content: new Uint8Array([0, 1, 2, 255]) }, { filename: 'b.txt', content: Readable.from(['x', 'y']) }] }),
      );
      await t.outbox.work();
      assert.equal((await settled(t.outbox, a)).state, 'sent');
      assert.equal((await settled(t.outbox, b)).state, 'sent');
      assert.equal(smtp.count('spool/raw-stream'), 1);
      assert.equal(smtp.count('spool/attachment'), 1);
    } finally {
      await t.cleanup();
    }
  });

  test('two worker processes share one spool: 300 messages, each sent exactly once', async () => {
    const dir = tempDir('wasmtp-outbox-shared-');
    const client = createClient({ host: '127.0.0.1', port: smtp.port, security: 'none' });
    const outbox = createOutbox({ client, store: spoolStore({ dir }) });
    const workers = [];
    try {
      const ids = [];
      for (let i = 0; i < 300; i++) ids.push(await outbox.enqueue(msg(`spool/shared/${i}`)));
      const config = { store: { kind: 'spool', dir, pollInterval: 50 }, smtp: { port: smtp.port }, retry: FAST, concurrency: 8, report: true };
      workers.push(startWorker(config), startWorker(config));
      await waitFor(() => workers.reduce((n, w) => n + w.lines.filter((l) => l.startsWith('OUTCOME')).length, 0) >= 300, 60_000, '300 outcomes');
      for (const id of ids) assert.equal((await outbox.status(id)).state, 'sent');
      for (let i = 0; i < 300; i++) assert.equal(smtp.count(`spool/shared/${i}`), 1, `message ${i}`);
      const per = workers.map((w) => w.lines.filter((l) => l.startsWith('OUTCOME')).length);
      assert.ok(per.every((n) => n > 0), `both processes sent some (${per})`);
    } finally {
      await Promise.all(workers.map((w) => w.stop()));
      await outbox.close();
      await client.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
