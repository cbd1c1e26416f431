// The outbox on Cloudflare: a Queue carries the work, a D1 table holds
// each message and its record. The fetch handler enqueues (a row, then a
// queue message { id }); the queue() handler calls outbox.consume(batch).
//
// Why D1 and not the queue alone: a queue message cannot be asked for its
// status, cannot wait for a decision (`unknown`), and cannot record
// "committing" before the end of data. D1 is strongly consistent, so a
// redelivered message always sees the last record saved.
//
// One consumer at a time holds a row: a claim is a compare-and-set on the
// row's version `v` that also sets a lease (`leaseMs`, by default the 15
// minutes a queue consumer may run). Every save is a compare-and-set too,
// so a consumer that lost its claim cannot overwrite the record. Queue
// redeliveries after a crash find "sending" (tried again once the lease
// is over) or "committing" (`unknown`). Deferred messages go back to the
// queue as a new message with delaySeconds (at most 12 hours per hop), so
// the queue's own max_retries is not used up by the retry policy.
//
// Idempotency: the id is the row's primary key (INSERT OR IGNORE), so
// enqueue() with an id that has a row stores nothing. sweep() deletes sent
// rows `keepSent` after sending and failed rows `keepFailed` after they
// failed; `unknown` rows wait for a decision and are never deleted.

import { SmtpError } from '../errors.js';

export const CLOUDFLARE_DEFAULTS = Object.freeze({
  table: 'wasmtp_outbox',
  /** How long a consumer holds a message it is sending (ms). */
  leaseMs: 15 * 60_000,
  /** Sent rows, and their ids, are deleted by sweep() this long after sending (ms). */
  keepSent: 7 * 24 * 3600_000,
  /** Failed rows (dead letters), and their ids, are deleted by sweep() this long after they failed (ms). */
  keepFailed: 30 * 24 * 3600_000,
});

/** Longest queue delay per message (Cloudflare Queues: 12 hours). */
const MAX_DELAY_S = 43_200;

/**
 * @param {{ queue: object, db: object, table?: string, leaseMs?: number, keepSent?: number, keepFailed?: number }} options
 *   queue: the producer binding (env.OUTBOX); db: a D1 binding (env.OUTBOX_DB)
 */
export function cloudflareQueueStore(options = {}) {
  if (!options.queue || typeof options.queue.send !== 'function') {
    throw SmtpError.input('cloudflareQueueStore needs a queue producer binding.', 'pass { queue: env.OUTBOX } ([[queues.producers]] in wrangler.toml).');
  }
  if (!options.db || typeof options.db.prepare !== 'function') {
    throw SmtpError.input('cloudflareQueueStore needs a D1 database binding.', 'pass { db: env.OUTBOX_DB } ([[d1_databases]] in wrangler.toml).');
  }
  const opts = { ...CLOUDFLARE_DEFAULTS };
  for (const [k, v] of Object.entries(options)) if (v !== undefined) opts[k] = v;
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(opts.table)) throw SmtpError.input(`the table name ${opts.table} is not usable.`, 'use letters, digits and _.');
  return new CloudflareStore(opts);
}

const schemaReady = new WeakMap();
const SETTLED = ['sent', 'failed', 'unknown'];

class CloudflareStore {
  constructor(opts) {
    this.kind = 'cloudflare';
    this.#opts = opts;
    this.#db = opts.db;
    this.#queue = opts.queue;
    this.#t = opts.table;
  }

  #opts;
  #db;
  #queue;
  #t;

  #schema() {
    let ready = schemaReady.get(this.#db)?.[this.#t];
    if (!ready) {
      ready = (async () => {
        await this.#db
          .prepare(
            `CREATE TABLE IF NOT EXISTS ${this.#t} (id TEXT PRIMARY KEY, state TEXT NOT NULL, v INTEGER NOT NULL, lease_until INTEGER NOT NULL DEFAULT 0, created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL, record TEXT NOT NULL, message TEXT)`,
          )
          .run();
        await this.#db.prepare(`CREATE INDEX IF NOT EXISTS ${this.#t}_state ON ${this.#t} (state, created_at)`).run();
      })();
      ready.catch(() => delete schemaReady.get(this.#db)?.[this.#t]);
      schemaReady.set(this.#db, { ...schemaReady.get(this.#db), [this.#t]: ready });
    }
    return ready;
  }

  async add(record, message) {
    await this.#schema();
    const inserted = await this.#db
      .prepare(`INSERT OR IGNORE INTO ${this.#t} (id, state, v, lease_until, created_at, updated_at, record, message) VALUES (?, ?, 1, 0, ?, ?, ?, ?)`)
      .bind(record.id, record.state, record.createdAt, record.updatedAt, JSON.stringify(record), JSON.stringify(message))
      .run();
    if (inserted.meta.changes === 0) {
      // Enqueued before (an idempotency key): make sure a queue message exists while it waits.
      const row = await this.#row(record.id);
      if (row && (row.state === 'queued' || row.state === 'deferred')) await this.#send(record.id, 0).catch(() => {});
      return false;
    }
    try {
      await this.#send(record.id, (record.nextAttemptAt ?? 0) - Date.now());
    } catch (error) {
      await this.#db.prepare(`DELETE FROM ${this.#t} WHERE id = ? AND v = 1`).bind(record.id).run().catch(() => {});
      throw error;
    }
    return true;
  }

  async get(id) {
    await this.#schema();
    const row = await this.#row(id);
    return row ? JSON.parse(row.record) : null;
  }

  async list({ state, limit = 1000 } = {}) {
    await this.#schema();
    const states = state === undefined ? null : state === 'sending' ? ['sending', 'committing'] : [state];
    const where = states ? `WHERE state IN (${states.map(() => '?').join(', ')})` : '';
    const { results } = await this.#db
      .prepare(`SELECT record FROM ${this.#t} ${where} ORDER BY created_at LIMIT ?`)
      .bind(...(states ?? []), limit)
      .all();
    return results.map((r) => JSON.parse(r.record));
  }

  async update(id, change) {
    await this.#schema();
    for (let tries = 0; tries < 5; tries++) {
      const row = await this.#row(id);
      if (!row) return null;
      const record = JSON.parse(row.record);
      if ((row.state === 'sending' || row.state === 'committing') && row.lease_until > Date.now()) {
        throw new SmtpError({
          code: 'EBUSY',
          phase: 'mail',
          message: `the outbox message ${id} is being sent; it cannot be changed now.`,
          hint: 'wait for the attempt to finish (status() shows its outcome), then decide.',
        });
      }
      const next = change(record);
      if (!(await this.#cas(id, row.v, next, 0))) continue;
      if (next.state === 'queued' || next.state === 'deferred') await this.#send(id, (next.nextAttemptAt ?? 0) - Date.now());
      return next;
    }
    throw new SmtpError({ code: 'EBUSY', phase: 'mail', message: `the outbox message ${id} kept changing; try again.` });
  }

  /** The queue() handler's work: each message of the batch is acked or retried. */
  async consumeBatch(batch, processJob, { concurrency = 10 } = {}) {
    await this.#schema();
    const messages = [...batch.messages];
    const run = async () => {
      for (let m = messages.shift(); m; m = messages.shift()) await this.#one(m, processJob);
    };
    await Promise.all(Array.from({ length: Math.max(1, Math.min(concurrency, messages.length)) }, run));
  }

  /**
   * A safety net for a Cron Trigger: queues again messages that wait with
   * no queue message (a Worker stopped between the row and the send) or
   * whose consumer vanished, and deletes sent rows older than keepSent and
   * failed rows older than keepFailed.
   * Duplicate queue messages are harmless (the claim is a compare-and-set).
   */
  async sweep({ olderThan = 10 * 60_000 } = {}) {
    await this.#schema();
    const now = Date.now();
    const { results } = await this.#db
      .prepare(
        `SELECT id, record, state, lease_until FROM ${this.#t} WHERE (state IN ('queued', 'deferred') AND updated_at < ?) OR (state IN ('sending', 'committing') AND lease_until < ?) LIMIT 1000`,
      )
      .bind(now - olderThan, now)
      .all();
    let requeued = 0;
    for (const row of results) {
      const record = JSON.parse(row.record);
      const due = row.state === 'queued' || row.state === 'deferred' ? (record.nextAttemptAt ?? 0) : 0;
      if (due - now > olderThan) continue;
      await this.#send(row.id, due - now);
      requeued += 1;
    }
    await this.#db
      .prepare(`DELETE FROM ${this.#t} WHERE (state = 'sent' AND updated_at < ?) OR (state = 'failed' AND updated_at < ?)`)
      .bind(now - this.#opts.keepSent, now - this.#opts.keepFailed)
      .run();
    return { requeued };
  }

  // ----- internals

  #row(id) {
    return this.#db.prepare(`SELECT id, state, v, lease_until, record, message FROM ${this.#t} WHERE id = ?`).bind(id).first();
  }

  /** Writes `record` if the row is still at version `v`. */
  async #cas(id, v, record, leaseUntil, dropMessage = false) {
    const result = await this.#db
      .prepare(
        `UPDATE ${this.#t} SET state = ?, v = v + 1, lease_until = ?, updated_at = ?, record = ?${dropMessage ? ', message = NULL' : ''} WHERE id = ? AND v = ?`,
      )
      .bind(record.state, leaseUntil, Date.now(), JSON.stringify(record), id, v)
      .run();
    return result.meta.changes === 1;
  }

  #send(id, delayMs) {
    const delaySeconds = Math.min(MAX_DELAY_S, Math.max(0, Math.ceil(delayMs / 1000)));
    return this.#queue.send({ id }, delaySeconds > 0 ? { delaySeconds } : undefined);
  }

  /** Hands the message back to the queue for later (a new message, so max_retries is not used up). */
  async #later(message, id, delayMs) {
    try {
      await this.#send(id, delayMs);
      message.ack();
    } catch {
      message.retry({ delaySeconds: Math.min(MAX_DELAY_S, Math.max(1, Math.ceil(delayMs / 1000))) });
    }
  }

  async #one(message, processJob) {
    const id = message.body?.id;
    if (typeof id !== 'string') return message.ack(); // not ours
    const row = await this.#row(id);
    if (!row) return message.ack(); // discarded or cleaned up
    const record = JSON.parse(row.record);
    const now = Date.now();
    if (SETTLED.includes(row.state)) return message.ack();
    if ((row.state === 'sending' || row.state === 'committing') && row.lease_until > now) {
      // Another consumer holds it (a duplicate delivery): look again after its lease.
      return this.#later(message, id, row.lease_until - now + 1000);
    }
    if ((row.state === 'queued' || row.state === 'deferred') && (record.nextAttemptAt ?? 0) > now + 1000) {
      return this.#later(message, id, record.nextAttemptAt - now);
    }
    // The claim: version and lease in one compare-and-set.
    let v = row.v;
    if (!(await this.#cas(id, v, record, now + this.#opts.leaseMs))) return message.ack(); // another consumer won it
    v += 1;
    let outcome = null;
    const job = {
      record,
      message: async () => {
        if (row.message === null) throw Object.assign(new Error(`the message ${id} has no content in D1`), { code: 'ENOMESSAGE' });
        return JSON.parse(row.message);
      },
      save: async (next) => {
        if (!(await this.#cas(id, v, next, Date.now() + this.#opts.leaseMs))) throw lostClaim(id);
        v += 1;
      },
      finish: async (next) => {
        if (!(await this.#cas(id, v, next, 0, next.state === 'sent'))) throw lostClaim(id);
        v += 1;
        outcome = next;
      },
    };
    try {
      await processJob(job);
    } catch {
      // A store failure mid-way: let go of the lease so the redelivery
      // deals with it at once ("sending" again, "committing" unknown).
      await this.#db.prepare(`UPDATE ${this.#t} SET lease_until = 0 WHERE id = ? AND v = ?`).bind(id, v).run().catch(() => {});
      return message.retry({ delaySeconds: 5 });
    }
    if (outcome && (outcome.state === 'queued' || outcome.state === 'deferred')) {
      return this.#later(message, id, (outcome.nextAttemptAt ?? 0) - Date.now());
    }
    message.ack();
  }
}

function lostClaim(id) {
  return new SmtpError({
    code: 'EBUSY',
    phase: 'mail',
    message: `the outbox message ${id} changed under this consumer (its lease ran out?); the record was left as the other writer set it.`,
  });
}
