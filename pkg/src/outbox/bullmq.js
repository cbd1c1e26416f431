// The outbox on BullMQ (Redis), for more than one machine: any number of
// worker processes share one queue. `bullmq` (and `ioredis`) are optional
// peer dependencies, loaded on first use.
//
// One BullMQ job per message (jobId = the outbox id): job data holds the
// message and its first record; the current record lives in the job's
// progress field (`updateProgress`, one small Redis write, durable as far
// as Redis is: use appendonly). BullMQ's lock keeps one worker per job;
// a worker that dies leaves its job "stalled", and BullMQ moves it back to
// wait after `lockDuration`: the outbox then finds the saved record
// ("sending": tried again; "committing": `unknown`). Outcomes map onto
// BullMQ states: sent → completed; deferred → delayed (moveToDelayed);
// failed and unknown → failed (the record says which).

import { SmtpError } from '../errors.js';

export const BULLMQ_DEFAULTS = Object.freeze({
  queueName: 'wasmtp-outbox',
  /** How long a worker's lock on a job lasts (renewed while it works), ms; a dead worker's job waits this long. */
  lockDuration: 30_000,
  /** How often workers look for jobs whose worker died (ms). */
  stalledInterval: 30_000,
  /** Sent jobs are removed from Redis this long after sending (ms). */
  keepSent: 7 * 24 * 3600_000,
});

/**
 * @param {{ connection: object, queueName?: string, prefix?: string, lockDuration?: number, stalledInterval?: number, keepSent?: number }} options
 */
export function bullmqStore(options = {}) {
  if (!options.connection) {
    throw SmtpError.input('bullmqStore needs a Redis connection.', "pass bullmqStore({ connection: { host: '127.0.0.1', port: 6379 } }) or an ioredis instance.");
  }
  const opts = { ...BULLMQ_DEFAULTS };
  for (const [k, v] of Object.entries(options)) if (v !== undefined) opts[k] = v;
  return new BullStore(opts);
}

let bullmq = null;
function lib() {
  bullmq ??= import('bullmq').catch((error) => {
    bullmq = null;
    throw SmtpError.input(
      `bullmqStore needs the bullmq package (${error.message}).`,
      'npm install bullmq ioredis',
    );
  });
  return bullmq;
}

const FINISHED = ['sent', 'failed', 'unknown'];

class BullStore {
  constructor(opts) {
    this.kind = 'bullmq';
    this.#opts = opts;
  }

  #opts;
  #queue = null;
  #workers = new Set();

  async #q() {
    if (!this.#queue) {
      const { Queue } = await lib();
      this.#queue ??= new Queue(this.#opts.queueName, { connection: this.#opts.connection, ...this.#prefix() });
    }
    return this.#queue;
  }

  /** BullMQ's key prefix, only when one was given (BullMQ's default otherwise). */
  #prefix() {
    return this.#opts.prefix === undefined ? {} : { prefix: this.#opts.prefix };
  }

  /** The BullMQ Queue (for dashboards, metrics, clean-up). */
  queue() {
    return this.#q();
  }

  async add(record, message) {
    const queue = await this.#q();
    if (await queue.getJob(record.id)) return false;
    await queue.add(
      'message',
      { message, record },
      {
        jobId: record.id,
        delay: Math.max(0, (record.nextAttemptAt ?? 0) - Date.now()),
        // Store failures mid-way (Redis unreachable) are retried by BullMQ;
        // the outbox's own policy decides everything else.
        attempts: 1000,
        backoff: { type: 'fixed', delay: 5000 },
        removeOnComplete: { age: Math.ceil(this.#opts.keepSent / 1000) },
        removeOnFail: false,
      },
    );
    return true;
  }

  async get(id) {
    const job = await (await this.#q()).getJob(id);
    return job ? this.#record(job) : null;
  }

  async list({ state, limit = 1000 } = {}) {
    const types = {
      queued: ['waiting', 'prioritized'],
      deferred: ['delayed', 'waiting'],
      sending: ['active'],
      sent: ['completed', 'failed'],
      failed: ['failed'],
      unknown: ['failed'],
    }[state] ?? ['waiting', 'delayed', 'active', 'completed', 'failed'];
    const jobs = await (await this.#q()).getJobs(types, 0, -1, true);
    const out = [];
    for (const job of jobs) {
      const record = await this.#record(job);
      if (state && (record.state === 'committing' ? 'sending' : record.state) !== state) continue;
      out.push(record);
      if (out.length >= limit) break;
    }
    return out.sort((a, b) => a.createdAt - b.createdAt);
  }

  async update(id, change) {
    const job = await (await this.#q()).getJob(id);
    if (!job) return null;
    const bullState = await job.getState();
    if (bullState === 'active') {
      throw new SmtpError({
        code: 'EBUSY',
        phase: 'mail',
        message: `the outbox message ${id} is being sent; it cannot be changed now.`,
        hint: 'wait for the attempt to finish (status() shows its outcome), then decide.',
      });
    }
    const next = change(await this.#record(job, bullState));
    await job.updateProgress(next);
    const again = next.state === 'queued' || next.state === 'deferred';
    if (bullState === 'failed' || bullState === 'completed') {
      if (again) await job.retry(bullState);
    } else if (bullState === 'delayed' && (next.state === 'queued' || !again)) {
      // Due now, or settled: a worker takes it at once (and moves it to failed).
      await job.promote();
    }
    return next;
  }

  async consume(processJob, { concurrency = 8 } = {}) {
    const { Worker, DelayedError, UnrecoverableError } = await lib();
    const o = this.#opts;
    const worker = new Worker(
      o.queueName,
      async (job, token) => {
        let outcome = null;
        await processJob({
          record: await this.#record(job, 'active'),
          message: async () => job.data.message,
          save: (record) => job.updateProgress(record),
          finish: async (record) => {
            await job.updateProgress(record);
            outcome = record;
          },
        });
        if (!outcome || outcome.state === 'sent') return outcome?.result ?? null;
        if (outcome.state === 'queued' || outcome.state === 'deferred') {
          await job.moveToDelayed(Math.max(Date.now(), outcome.nextAttemptAt ?? 0), token);
          throw new DelayedError();
        }
        throw new UnrecoverableError(`${outcome.state}: ${outcome.error?.message ?? ''}`);
      },
      {
        connection: o.connection,
        ...this.#prefix(),
        concurrency,
        lockDuration: o.lockDuration,
        stalledInterval: o.stalledInterval,
        // Our record counts attempts; BullMQ must not give up on a stalled job by itself.
        maxStalledCount: 1000,
        autorun: true,
      },
    );
    worker.on('error', () => {}); // connection trouble: ioredis reconnects, jobs wait
    this.#workers.add(worker);
    await worker.waitUntilReady();
    return {
      stop: async () => {
        this.#workers.delete(worker);
        await worker.close();
      },
      worker,
    };
  }

  async close() {
    await Promise.all([...this.#workers].map((w) => w.close()));
    this.#workers.clear();
    await this.#queue?.close();
    this.#queue = null;
  }

  /**
   * The current record: the progress field when set, else the first one.
   * A job BullMQ failed by itself (e.g. it stalled too often) while the
   * record says it was in flight is reported for what it is.
   */
  async #record(job, bullState) {
    const progress = job.progress;
    const record = progress && typeof progress === 'object' && typeof progress.state === 'string' ? progress : job.data.record;
    if (FINISHED.includes(record.state)) return record;
    const state = bullState ?? (await job.getState());
    if (state !== 'failed') return record;
    const afterData = record.state === 'committing';
    return {
      ...record,
      state: afterData ? 'unknown' : 'failed',
      error: {
        code: 'EWORKER_LOST',
        phase: afterData ? 'data' : 'mail',
        message: `BullMQ failed the job: ${job.failedReason}`,
        retryable: !afterData,
        deliveryState: afterData ? 'unknown' : 'not-sent',
      },
    };
  }
}
