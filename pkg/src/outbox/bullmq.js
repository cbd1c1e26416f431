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
// failed and unknown → failed (the record says which). A worker's saves are
// fenced by its BullMQ lock (a Lua check of the lock token), so a worker
// that lost its lock cannot save "committing" and never sends the end of
// data of a message another worker now holds.
//
// Consistency: status() reads the record and the BullMQ state in one Lua
// script (one snapshot; two reads could straddle a worker's step). A
// decision (retry, discard, markSent) is a compare-and-set of the record
// in Lua that refuses while a worker holds the job, then the job is moved
// to match (retry of a failed job, promotion of a delayed one); the id is
// kept in a small set until then, so a process that dies in between
// leaves the move to the next prune().
//
// Retention: sent jobs are removed `keepSent` after sending (BullMQ's
// removeOnComplete, and prune()), failed ones `keepFailed` after they
// failed (prune()); until then enqueue() with that id adds nothing (the
// jobId is taken). `unknown` jobs wait for a decision and are never removed.

import { SmtpError } from '../errors.js';

export const BULLMQ_DEFAULTS = Object.freeze({
  queueName: 'wasmtp-outbox',
  /** How long a worker's lock on a job lasts (renewed while it works), ms; a dead worker's job waits this long. */
  lockDuration: 30_000,
  /** How often workers look for jobs whose worker died (ms). */
  stalledInterval: 30_000,
  /** Sent jobs, and their ids, are removed from Redis this long after sending (ms). */
  keepSent: 7 * 24 * 3600_000,
  /** Failed jobs (dead letters), and their ids, are removed this long after they failed (ms). */
  keepFailed: 30 * 24 * 3600_000,
});

/** Options that are not numbers. */
const OTHER_OPTIONS = ['connection', 'queueName', 'prefix'];

/** How often workers prune (ms). */
const PRUNE_EVERY = 60_000;

/**
 * @param {{ connection: object, queueName?: string, prefix?: string, lockDuration?: number, stalledInterval?: number, keepSent?: number, keepFailed?: number }} options
 */
export function bullmqStore(options = {}) {
  if (!options?.connection) {
    throw SmtpError.input('bullmqStore needs a Redis connection.', "pass bullmqStore({ connection: { host: '127.0.0.1', port: 6379 } }) or an ioredis instance.");
  }
  const opts = { ...BULLMQ_DEFAULTS };
  for (const [k, v] of Object.entries(options)) {
    if (v === undefined) continue;
    if (!(k in BULLMQ_DEFAULTS) && !OTHER_OPTIONS.includes(k)) {
      throw SmtpError.input(`bullmqStore has no option ${k}.`, `use ${[...OTHER_OPTIONS, ...Object.keys(BULLMQ_DEFAULTS).filter((o) => o !== 'queueName')].join(', ')}.`);
    }
    if (!OTHER_OPTIONS.includes(k) && k !== 'queueName' && (typeof v !== 'number' || !(v >= 0))) {
      throw SmtpError.input(`bullmqStore ${k} must be a number of ms, 0 or more.`, `pass for example ${k}: ${BULLMQ_DEFAULTS[k]}.`);
    }
    opts[k] = v;
  }
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
/** Record states a worker saves just before it moves its job on (see update()). */
const SETTLED_WHILE_HELD = ['sent', 'failed', 'unknown', 'deferred'];
/** How long a decision waits for such a worker to let go of the job. */
const RELEASE_WAIT_MS = 5000;
/** Attempts of a decision's compare-and-set, 50 ms apart when the job was moving. */
const DECIDE_TRIES = 100;

// The job's record and BullMQ state in one atomic read (the state checks
// are those of BullMQ's own getState script).
// KEYS: job, completed, failed, delayed, prioritized, active, wait, paused, waiting-children; ARGV: id
const SNAPSHOT = `
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
local id = ARGV[1]
local state = 'unknown'
if redis.call('ZSCORE', KEYS[2], id) then state = 'completed'
elseif redis.call('ZSCORE', KEYS[3], id) then state = 'failed'
elseif redis.call('ZSCORE', KEYS[4], id) then state = 'delayed'
elseif redis.call('ZSCORE', KEYS[5], id) then state = 'prioritized'
elseif redis.call('LPOS', KEYS[6], id) then state = 'active'
elseif redis.call('LPOS', KEYS[7], id) or redis.call('LPOS', KEYS[8], id) then state = 'waiting'
elseif redis.call('ZSCORE', KEYS[9], id) then state = 'waiting-children'
end
local progress = redis.call('HGET', KEYS[1], 'progress') or ''
local data = ''
if progress == '' or string.sub(progress, 1, 1) ~= '{' then data = redis.call('HGET', KEYS[1], 'data') or '' end
return { state, progress, data, redis.call('HGET', KEYS[1], 'failedReason') or '' }
`;

// A decision's compare-and-set: the record changes only if it is still the
// one read and no worker holds the job; the id is noted until the job is moved.
// KEYS: job, active, pending; ARGV: id, expected progress, new progress
const DECIDE = `
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
if redis.call('LPOS', KEYS[2], ARGV[1]) then return 0 end
if (redis.call('HGET', KEYS[1], 'progress') or '') ~= ARGV[2] then return 0 end
redis.call('HSET', KEYS[1], 'progress', ARGV[3])
redis.call('SADD', KEYS[3], ARGV[1])
return 1
`;

// A worker's save, fenced by its lock: a worker whose lock ran out (and whose
// job another worker may hold now) cannot overwrite the record, so it never
// goes on to send the end of data.
// KEYS: job, its lock; ARGV: the worker's lock token, the record
const SAVE_LOCKED = `
if redis.call('GET', KEYS[2]) ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'progress', ARGV[2])
return 1
`;

// Removes a failed job past its retention if its record is still the one read.
// KEYS: job, failed; ARGV: id, expected progress
const REMOVE_FAILED = `
if not redis.call('ZSCORE', KEYS[2], ARGV[1]) then return 0 end
if (redis.call('HGET', KEYS[1], 'progress') or '') ~= ARGV[2] then return 0 end
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('DEL', KEYS[1], KEYS[1] .. ':logs')
return 1
`;

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

  /** The Redis client of the queue (BullMQ 6: through its backend; 5: queue.client). */
  async #redis() {
    const queue = await this.#q();
    return queue.getBackend ? queue.getBackend().client : queue.client;
  }

  /** The set of ids whose decision is saved but whose job may not be moved yet. */
  #pendingKey(queue) {
    return queue.toKey('wasmtp-decided');
  }

  /** The BullMQ Queue (for dashboards, metrics, clean-up). */
  queue() {
    return this.#q();
  }

  async add(record, message) {
    const queue = await this.#q();
    if ((await (await this.#redis()).exists(queue.toKey(record.id))) === 1) return false;
    // BullMQ adds nothing when the jobId exists (the check above only saves the work).
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
    const snapshot = await this.#snapshot(id);
    return snapshot ? recordOf(snapshot) : null;
  }

  async list({ state, limit = 1000 } = {}) {
    const types = {
      queued: ['waiting', 'prioritized', 'delayed', 'failed'],
      deferred: ['delayed', 'waiting', 'failed'],
      sending: ['active', 'waiting'],
      sent: ['completed', 'failed'],
      failed: ['failed', 'delayed', 'waiting'],
      unknown: ['failed'],
    }[state] ?? ['waiting', 'prioritized', 'delayed', 'active', 'completed', 'failed'];
    const queue = await this.#q();
    const ids = [...new Set(await queue.getRanges(types, 0, -1, true))];
    const out = [];
    for (let at = 0; at < ids.length; at += 100) {
      const records = (await Promise.all(ids.slice(at, at + 100).map((id) => this.get(id)))).filter(Boolean);
      for (const record of records) if (!state || (record.state === 'committing' ? 'sending' : record.state) === state) out.push(record);
    }
    return out.sort((a, b) => a.createdAt - b.createdAt).slice(0, limit);
  }

  async update(id, change) {
    const queue = await this.#q();
    const redis = await this.#redis();
    for (let tries = 0; tries < DECIDE_TRIES; tries++) {
      const snapshot = await this.#snapshot(id);
      if (!snapshot) return null;
      if (snapshot.state === 'active') {
        // A worker holds the job. When the record already shows how its
        // attempt ended, that worker is only moving the job on: wait for it
        // rather than refuse a decision status() already invites.
        if (SETTLED_WHILE_HELD.includes(recordOf(snapshot).state) && (await this.#settledJobReleased(id))) continue;
        throw busy(id);
      }
      const next = change(recordOf(snapshot));
      const done = await redis.eval(DECIDE, 3, queue.toKey(id), queue.keys.active, this.#pendingKey(queue), id, snapshot.progress, JSON.stringify(next));
      if (done === -1) return null;
      if (done === 0) {
        // Changed meanwhile, or still in BullMQ's active list while a worker
        // moves it on: look again in a moment.
        await new Promise((resolve) => setTimeout(resolve, 50));
        continue;
      }
      await this.#align(id);
      return next;
    }
    throw busy(id);
  }

  async consume(processJob, { concurrency = 8 } = {}) {
    const { Worker, DelayedError, UnrecoverableError } = await lib();
    const o = this.#opts;
    const queue = await this.#q();
    const redis = await this.#redis();
    const save = async (job, token, record) => {
      const jobKey = queue.toKey(job.id);
      if ((await redis.eval(SAVE_LOCKED, 2, jobKey, `${jobKey}:lock`, token, JSON.stringify(record))) !== 1) throw lostLock(job.id);
    };
    const worker = new Worker(
      o.queueName,
      async (job, token) => {
        let outcome = null;
        await processJob({
          record: currentRecord(job.progress, job.data),
          message: async () => job.data.message,
          save: (record) => save(job, token, record),
          finish: async (record) => {
            await save(job, token, record);
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
    const pruning = setInterval(() => this.prune().catch(() => {}), PRUNE_EVERY);
    pruning.unref?.();
    return {
      stop: async () => {
        clearInterval(pruning);
        this.#workers.delete(worker);
        await worker.close();
      },
      worker,
    };
  }

  /**
   * Finishes decisions whose job was not moved yet (the deciding process
   * died), removes sent jobs older than keepSent and failed ones older than
   * keepFailed (never `unknown` ones). Workers call it every minute.
   */
  async prune({ limit = 5000 } = {}) {
    const queue = await this.#q();
    const redis = await this.#redis();
    for (const id of await redis.smembers(this.#pendingKey(queue))) await this.#align(id);
    const now = Date.now();
    await queue.clean(this.#opts.keepSent, limit, 'completed');
    // Failed jobs are scored by when they finished; markSent ones are "sent".
    const oldest = now - Math.min(this.#opts.keepSent, this.#opts.keepFailed);
    const ids = await redis.zrangebyscore(queue.keys.failed, '-inf', oldest, 'LIMIT', 0, limit);
    for (const id of ids) {
      const snapshot = await this.#snapshot(id);
      if (!snapshot || snapshot.state !== 'failed') continue;
      const record = recordOf(snapshot);
      const keep = record.state === 'sent' ? this.#opts.keepSent : record.state === 'failed' ? this.#opts.keepFailed : Infinity;
      if (now - (record.updatedAt ?? now) <= keep) continue;
      await redis.eval(REMOVE_FAILED, 2, queue.toKey(id), queue.keys.failed, id, snapshot.progress);
    }
  }

  async close() {
    await Promise.all([...this.#workers].map((w) => w.close()));
    this.#workers.clear();
    await this.#queue?.close();
    this.#queue = null;
  }

  /** { state, progress, data, failedReason } of one job, read atomically; null when there is no such job. */
  /** Waits (a few seconds at most) for a worker to release a job whose outcome it has saved. */
  async #settledJobReleased(id) {
    for (let waited = 0; waited < RELEASE_WAIT_MS; waited += 50) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      const snapshot = await this.#snapshot(id);
      if (!snapshot || snapshot.state !== 'active') return true;
    }
    return false;
  }

  async #snapshot(id) {
    const queue = await this.#q();
    const k = queue.keys;
    const redis = await this.#redis();
    const reply = await redis.eval(SNAPSHOT, 9, queue.toKey(id), k.completed, k.failed, k.delayed, k.prioritized, k.active, k.wait, k.paused, k['waiting-children'], id);
    if (!reply) return null;
    const [state, progress, data, failedReason] = reply;
    return { state, progress, data, failedReason };
  }

  /** Moves a job to where its record says it belongs (after a decision). */
  async #align(id) {
    const queue = await this.#q();
    const snapshot = await this.#snapshot(id);
    if (snapshot) {
      const record = recordOf(snapshot);
      const again = record.state === 'queued' || record.state === 'deferred';
      const job = await queue.getJob(id);
      try {
        if (again && (snapshot.state === 'failed' || snapshot.state === 'completed')) await job?.retry(snapshot.state);
        // Due now, or settled: a worker takes it at once (and settles it).
        else if (snapshot.state === 'delayed' && (record.state === 'queued' || !again)) await job?.promote();
      } catch {
        // Moved meanwhile (by another process doing the same): nothing left to do.
      }
    }
    await (await this.#redis()).srem(this.#pendingKey(queue), id);
  }
}

/** The job's current record: the progress field when set, else the first one (in the job data). */
function currentRecord(progress, data) {
  const record = progress && typeof progress === 'object' && typeof progress.state === 'string' ? progress : data?.record;
  if (!record) throw new Error('an outbox job without a record (not written by the outbox?)');
  return record;
}

/**
 * The record in a snapshot. A job BullMQ failed by itself (e.g. it stalled
 * too often) while the record says it was in flight is reported for what it is.
 */
function recordOf({ state, progress, data, failedReason }) {
  const saved = parse(progress);
  const record = currentRecord(saved, saved?.state ? null : parse(data));
  if (FINISHED.includes(record.state) || state !== 'failed') return record;
  if (record.state !== 'sending' && record.state !== 'committing') return record; // a decision being applied
  const afterData = record.state === 'committing';
  return {
    ...record,
    state: afterData ? 'unknown' : 'failed',
    error: {
      code: 'EWORKER_LOST',
      phase: afterData ? 'data' : 'mail',
      message: `BullMQ failed the job: ${failedReason}`,
      retryable: !afterData,
      deliveryState: afterData ? 'unknown' : 'not-sent',
    },
  };
}

function parse(text) {
  if (!text) return null;
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}

function lostLock(id) {
  return new SmtpError({
    code: 'EBUSY',
    phase: 'mail',
    message: `this worker's lock on the outbox message ${id} ran out (the process was frozen longer than lockDuration?); the record was left as the worker now holding it sets it.`,
  });
}

function busy(id) {
  return new SmtpError({
    code: 'EBUSY',
    phase: 'mail',
    message: `the outbox message ${id} is being sent; it cannot be changed now.`,
    hint: 'wait for the attempt to finish (status() shows its outcome), then decide.',
  });
}
