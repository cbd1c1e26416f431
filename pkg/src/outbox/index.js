// createOutbox(): don't send from the request path. `enqueue` stores the
// message durably and returns its id; workers send it later with retries;
// `status` tells what became of it. Runtime-neutral: the store does the
// I/O (a spool directory, BullMQ on Redis, Cloudflare Queues with D1).
//
// A store offers (see spool.js, bullmq.js, cloudflare.js):
//   add(record, message)        → Promise<boolean>   false: the id exists already
//   get(id)                     → Promise<record | null>
//   list({ state, limit })      → Promise<record[]>
//   update(id, change)          → Promise<record | null>   change(record) → the next record (or throws)
//   consume(processJob, { concurrency }) → Promise<{ stop() }>   (Cloudflare: consumeBatch)
//   close?()
// and `processJob(job)` gets { record, message(), save(record), finish(record) }:
// the store guarantees that one job at a time holds a message, that `save`
// is durable when it resolves, and that a job whose process died comes
// back with the last record saved.
//
// The one rule that keeps a message from being sent twice: "committing"
// is saved (durably) before the end of data is handed to the engine (the
// client's `beforeDataEnd`). A message found in "committing" after a
// crash may have been accepted: it becomes `unknown`, and only an explicit
// retry(id) (or `atLeastOnce: true`) sends it again.

import { loadEngine } from '../engine.js';
import { SmtpError } from '../errors.js';
import { prepareMessage } from '../message.js';
import { checkId, decodeMessage, encodeMessage, newId } from './codec.js';
import { afterFailure, expired, replyText, retryPolicy, scheduleRetry, storedError } from './policy.js';

/**
 * @param {object} options see index.d.ts (OutboxOptions)
 * @param {{ defaultStore?: () => object }} [platform] set by the entry point
 */
export function createOutbox(options, platform = {}) {
  if (options === null || typeof options !== 'object') {
    throw SmtpError.input('createOutbox needs an options object.', 'pass { client } (and store, retry).');
  }
  const { client, retry, atLeastOnce = false, onOutcome } = options;
  if (!client || typeof client.send !== 'function') {
    throw SmtpError.input('createOutbox needs a client.', 'pass { client: createClient({ host, ... }) }.');
  }
  const store = options.store ?? platform.defaultStore?.();
  if (!store || typeof store.add !== 'function') {
    throw SmtpError.input(
      'createOutbox needs a store here.',
      'pass store: cloudflareQueueStore({ queue: env.OUTBOX, db: env.OUTBOX_DB }) on Workers, or spoolStore({ dir }) / bullmqStore({ connection }) on Node.',
    );
  }
  if (onOutcome !== undefined && typeof onOutcome !== 'function') {
    throw SmtpError.input('onOutcome must be a function.', 'pass onOutcome: (status) => { ... }.');
  }
  return new Outbox({ client, store, policy: retryPolicy(retry), atLeastOnce: atLeastOnce === true, onOutcome });
}

class Outbox {
  #client;
  #store;
  #policy;
  #atLeastOnce;
  #onOutcome;
  #consumer = null;

  constructor({ client, store, policy, atLeastOnce, onOutcome }) {
    this.#client = client;
    this.#store = store;
    this.#policy = policy;
    this.#atLeastOnce = atLeastOnce;
    this.#onOutcome = onOutcome;
  }

  /** The store (spool, BullMQ, Cloudflare), for its own extras. */
  get store() {
    return this.#store;
  }

  /**
   * Checks the message, stores it durably and resolves with its id. With
   * `options.id` (an idempotency key) an id already in the outbox is not
   * stored again. `options.delay` (ms) holds the first attempt back.
   */
  async enqueue(message, options = {}) {
    const id = options.id === undefined ? newId() : checkId(options.id);
    const delay = options.delay ?? 0;
    if (typeof delay !== 'number' || !(delay >= 0)) throw SmtpError.input('enqueue() delay must be a number of ms, 0 or more.', 'pass { delay: 60000 }.');
    const stored = await encodeMessage(message);
    const messageId = await checkMessage(stored);
    // A structured message keeps its Message-ID across attempts.
    if (stored.raw === undefined && stored.messageId === undefined && messageId) stored.messageId = messageId;
    const now = Date.now();
    const record = { id, state: 'queued', attempts: 0, createdAt: now, updatedAt: now, nextAttemptAt: now + delay, messageId };
    await this.#store.add(record, stored);
    return id;
  }

  /** What became of a message: its status, or null when the outbox has no such id. */
  async status(id) {
    const record = await this.#store.get(checkId(id));
    return record ? publicStatus(record) : null;
  }

  /** Messages in one state (failed: the dead-letter list), oldest first. */
  async list({ state, limit = 100 } = {}) {
    if (state !== undefined && !STATES.includes(state)) {
      throw SmtpError.input(`there is no outbox state "${state}".`, `use one of ${STATES.join(', ')}.`);
    }
    return (await this.#store.list({ state, limit })).map(publicStatus);
  }

  /** The dead-letter list: messages that failed for good (see retry()). */
  deadLetters({ limit = 100 } = {}) {
    return this.list({ state: 'failed', limit });
  }

  /** Starts workers in this process: at most `concurrency` messages in flight. */
  async work({ concurrency = 8 } = {}) {
    if (this.#consumer) throw SmtpError.input('this outbox is already working.', 'call stop() before work() again.');
    if (!Number.isInteger(concurrency) || concurrency < 1) {
      throw SmtpError.input('work() concurrency must be a whole number of at least 1.', 'pass { concurrency: 8 }.');
    }
    if (typeof this.#store.consume !== 'function') {
      throw SmtpError.input(
        'this store has no workers of its own: its platform delivers the messages.',
        'on Cloudflare Workers, call outbox.consume(batch) from the queue() handler.',
      );
    }
    this.#consumer = await this.#store.consume((job) => this.#process(job), { concurrency });
  }

  /** Stops the workers; resolves when the messages in flight are settled. */
  async stop() {
    const consumer = this.#consumer;
    this.#consumer = null;
    await consumer?.stop();
  }

  /** Stops the workers and lets go of the store (heartbeat, Redis connections). */
  async close() {
    await this.stop();
    await this.#store.close?.();
  }

  /**
   * Cloudflare Queues: handles one batch of the queue() handler (each
   * message is acked, or retried later by the queue).
   */
  async consume(batch, { concurrency } = {}) {
    if (typeof this.#store.consumeBatch !== 'function') {
      throw SmtpError.input('consume(batch) is for the Cloudflare Queues store.', 'on Node, start workers with outbox.work().');
    }
    await this.#store.consumeBatch(batch, (job) => this.#process(job), { concurrency });
  }

  /**
   * Sends an `unknown`, `failed` or `deferred` message again, now, with a
   * fresh budget of attempts and age. For `unknown` this is the explicit
   * decision that a duplicate is acceptable.
   */
  async retry(id) {
    return this.#decide(id, ['unknown', 'failed', 'deferred', 'queued'], 'retry', (r, now) => ({
      ...r,
      state: 'queued',
      nextAttemptAt: now,
      attemptsBefore: r.attempts,
      since: now,
      updatedAt: now,
    }));
  }

  /** Gives up on a message that is `unknown`, queued or deferred: it becomes `failed` (EDISCARDED). */
  async discard(id, { reason } = {}) {
    return this.#decide(id, ['unknown', 'queued', 'deferred'], 'discard', (r, now) => ({
      ...r,
      state: 'failed',
      nextAttemptAt: undefined,
      updatedAt: now,
      error: {
        code: 'EDISCARDED',
        phase: r.error?.phase ?? 'mail',
        message: reason ? `discarded: ${reason}` : 'discarded with outbox.discard().',
        retryable: false,
        deliveryState: r.state === 'unknown' ? 'unknown' : 'not-sent',
        previous: r.error,
      },
    }));
  }

  /** Records that an `unknown` message did arrive (checked by hand): it becomes `sent`. */
  async markSent(id) {
    return this.#decide(id, ['unknown'], 'markSent', (r, now) => ({
      ...r,
      state: 'sent',
      nextAttemptAt: undefined,
      updatedAt: now,
      reply: r.reply,
      markedSent: true,
    }));
  }

  async #decide(id, from, verb, change) {
    checkId(id);
    const next = await this.#store.update(id, (record) => {
      if (!from.includes(record.state)) throw wrongState(id, record.state, verb, from);
      return change(record, Date.now());
    });
    if (!next) throw notFound(id);
    return publicStatus(next);
  }

  /** One message, held by this job: the whole life of one attempt. */
  async #process(job) {
    const policy = this.#policy;
    let record = job.record;
    const now = Date.now();
    switch (record.state) {
      case 'queued':
      case 'deferred':
        break;
      case 'committing': {
        // The process died after "committing" was saved: the end of data
        // may have reached the server, which may have accepted it.
        const error = lostWorker(true);
        record = this.#atLeastOnce
          ? scheduleRetry({ ...record, error }, policy, now, 0)
          : { ...record, state: 'unknown', error, nextAttemptAt: undefined, updatedAt: now };
        return this.#settle(job, record);
      }
      case 'sending': {
        // The process died during an attempt, before the end of data: the
        // server cannot have the message. Counted as an attempt; again now.
        record = scheduleRetry({ ...record, error: lostWorker(false) }, policy, now, 0);
        if (record.state === 'failed') return this.#settle(job, record);
        break;
      }
      default:
        // Settled while it waited in the queue (a decision, or a duplicate
        // delivery from the queue): nothing to send.
        return job.finish(record);
    }
    if ((record.nextAttemptAt ?? 0) > now + 1000) return job.finish(record); // delivered early by the queue
    if (now - (record.since ?? record.createdAt) > policy.maxAge) {
      return this.#settle(job, expired(record, policy, now));
    }
    const used = record.attempts - (record.attemptsBefore ?? 0);
    if (used >= policy.maxAttempts) return this.#settle(job, scheduleRetry(record, policy, now, 0));

    record = { ...record, state: 'sending', attempts: record.attempts + 1, nextAttemptAt: undefined, updatedAt: now };
    await job.save(record);
    let message;
    try {
      message = decodeMessage(await job.message());
    } catch (error) {
      if (error?.code !== 'ENOMESSAGE') throw error; // a store failure: the store tries again
      const missing = { code: 'EINTERNAL', phase: 'mail', message: error.message, retryable: false, deliveryState: 'not-sent' };
      return this.#settle(job, { ...record, state: 'failed', error: missing, updatedAt: Date.now() });
    }
    // send() can settle while its beforeDataEnd is still saving (the
    // connection dropped meanwhile): the outcome is saved only after that
    // save, or the late "committing" would overwrite it.
    let committing = null;
    try {
      const result = await this.#client.send(message, {
        // Direct delivery (mx: true): a retry goes to the recipients still deferred only.
        ...(record.pendingRecipients ? { recipients: record.pendingRecipients } : {}),
        beforeDataEnd: () => {
          record = { ...record, state: 'committing', updatedAt: Date.now() };
          const saving = (committing ?? Promise.resolve()).catch(() => {}).then(() => job.save(record));
          committing = saving;
          return saving;
        },
      });
      // Direct delivery: a domain whose recipients were refused may have
      // started its "committing" save before the refusal came back.
      await committing?.catch(() => {});
      const deferred = partialDeferral(record, result);
      if (deferred) return this.#settle(job, scheduleRetry(deferred, policy, Date.now()));
      record = {
        ...record,
        state: 'sent',
        pendingRecipients: undefined,
        result: record.delivered ? { ...storedResult(result), accepted: [...record.delivered, ...result.accepted] } : storedResult(result),
        reply: result.response,
        error: undefined,
        nextAttemptAt: undefined,
        updatedAt: Date.now(),
      };
    } catch (error) {
      await committing?.catch(() => {});
      record = afterFailure(record, storedError(error), { policy, atLeastOnce: this.#atLeastOnce, now: Date.now() });
    }
    return this.#settle(job, record);
  }

  async #settle(job, record) {
    await job.finish(record);
    if (this.#onOutcome) {
      try {
        await this.#onOutcome(publicStatus(record));
      } catch {
        // A reporting callback must not break the worker.
      }
    }
  }
}

/**
 * Direct delivery (mx: true) resolves when some recipients accepted and
 * others were deferred (4xx, or no host reachable): the record waits for a
 * retry to the deferred ones only (`pendingRecipients`), the accepted ones
 * kept in `delivered` so that they are never sent to again. Null otherwise.
 */
function partialDeferral(record, result) {
  if (!Array.isArray(result.deferred) || result.deferred.length === 0) return null;
  const firstDeferred = result.recipients?.find((r) => r.status === 'deferred');
  return {
    ...record,
    pendingRecipients: [...result.deferred],
    delivered: [...(record.delivered ?? []), ...result.accepted],
    result: storedResult(result),
    error: firstDeferred?.error ? storedError(firstDeferred.error) : undefined,
    reply: firstDeferred?.reply ?? result.response,
    updatedAt: Date.now(),
  };
}

/** A send result as a record keeps it (per-recipient errors as plain fields). */
function storedResult(result) {
  if (!Array.isArray(result.recipients)) return { ...result };
  return { ...result, recipients: result.recipients.map((r) => ({ ...r, error: r.error ? storedError(r.error) : undefined })) };
}

const STATES = ['queued', 'sending', 'sent', 'deferred', 'failed', 'unknown'];

/** What status() shows: "committing" is part of "sending". */
export function publicStatus(record) {
  const status = {
    id: record.id,
    state: record.state === 'committing' ? 'sending' : record.state,
    attempts: record.attempts,
    createdAt: record.createdAt,
    updatedAt: record.updatedAt,
  };
  if (record.state === 'committing') status.dataSent = true;
  if (record.nextAttemptAt !== undefined && (record.state === 'queued' || record.state === 'deferred')) status.nextAttemptAt = record.nextAttemptAt;
  if (record.messageId !== undefined) status.messageId = record.messageId;
  if (record.error) status.error = record.error;
  const reply = record.reply ?? replyText(record.error?.reply);
  if (reply !== undefined) status.reply = reply;
  if (record.result) status.result = record.result;
  if (record.pendingRecipients && record.state !== 'sent') status.pendingRecipients = [...record.pendingRecipients];
  if (record.markedSent) status.markedSent = true;
  return status;
}

/** Checks a stored message with the engine (as send() would); returns its Message-ID. */
async function checkMessage(stored) {
  const engine = await loadEngine('core');
  const prepared = prepareMessage(engine, decodeMessage(stored));
  if (stored.raw !== undefined) return prepared.messageId;
  // A structured message is built once through the MIME builder, which
  // checks every part (and frees the builder at the end).
  const { envelope, body } = prepared.attempt();
  envelope.free();
  while ((await body.next()) !== null);
  return prepared.messageId;
}

function lostWorker(afterData) {
  return afterData
    ? {
        code: 'EWORKER_LOST',
        phase: 'data',
        message:
          'the worker stopped after the end of data was handed to the connection and before the reply was recorded: the server may or may not have accepted the message.',
        hint: 'check the recipient mailbox or the server log, then outbox.retry(id) (may duplicate) or outbox.markSent(id) / outbox.discard(id).',
        retryable: false,
        deliveryState: 'unknown',
      }
    : {
        code: 'EWORKER_LOST',
        phase: 'mail',
        message: 'the worker stopped during an attempt, before the end of data: the server cannot have the message.',
        retryable: true,
        deliveryState: 'not-sent',
      };
}

function notFound(id) {
  return SmtpError.input(`the outbox has no message ${id}.`, 'pass an id returned by enqueue().');
}

function wrongState(id, state, verb, from) {
  const shown = state === 'committing' ? 'sending' : state;
  return new SmtpError({
    code: state === 'sending' || state === 'committing' ? 'EBUSY' : 'EINPUT',
    phase: 'mail',
    message: `${verb}(${id}) applies to a message that is ${from.join(', ')}; this one is ${shown}.`,
    hint: shown === 'sending' ? 'wait for the attempt to finish.' : 'see status(id).',
  });
}
