// The outbox's embedded store: a spool directory, like an MTA's queue. No
// server; crash-safe; shared safely by several worker processes on one
// machine.
//
//   msg/<id>.json            the message, written once at enqueue. It also
//                            reserves the id (the idempotency key): once the
//                            message is sent its content is dropped, but the
//                            file stays until the record is pruned
//   queue/<id>.json          its record while queued or deferred (nextAttemptAt inside)
//   active/<id>.<owner>.json its record while a process holds it (a worker
//                            sending it, a decision, pruning)
//   sent/ failed/ unknown/   <id>.json, the record once settled (or parked: unknown)
//   workers/<owner>          a heartbeat per process: { pid, host }, touched every few seconds
//   tmp/                     files being written; <id>.<token>.stage, the first
//                            record of an enqueue until it is renamed into queue/
//
// The invariant, true at every instant (tests/outbox checks it with the
// workers frozen): an enqueued id has exactly one record file, in exactly
// one of queue/ active/ sent/ failed/ unknown/, and its msg/ file. A record
// only ever moves by one rename(2), which is atomic: a worker takes a
// message by renaming its record into active/ under its own name (exactly
// one process can), changes it there by writing a new version in place
// (write to tmp/, fsync, rename over it), and lets go of it by renaming it
// to the directory of its new state. Nothing is ever written to a new place
// and then deleted from the old one, so no window exists where a second
// copy could be taken, or where the record is nowhere.
//
// A file in active/ whose owner is gone (its pid is dead, or its heartbeat
// is older than `staleAfter`) is taken over and goes through the same path
// as any claimed message: the outbox makes "sending" a retry and
// "committing" (the end of data may have gone out) `unknown`.
//
// Retention: a sent record (and the id's reservation) is deleted
// `keepSent` after sending, a failed one `keepFailed` after it failed;
// until then enqueue() with that id stores nothing. `unknown` records wait
// for a decision and are never deleted.

import { link, mkdir, open, readdir, readFile, rename, stat, unlink, utimes } from 'node:fs/promises';
import { hostname } from 'node:os';
import { basename, join, resolve } from 'node:path';

import { SmtpError } from '../errors.js';

const DIRS = ['tmp', 'msg', 'queue', 'active', 'sent', 'failed', 'unknown', 'workers'];
/** Where a record lives, by state. */
const HOME = { queued: 'queue', deferred: 'queue', sending: 'active', committing: 'active', sent: 'sent', failed: 'failed', unknown: 'unknown' };
const SETTLED = ['sent', 'failed', 'unknown'];
const RECORD_DIRS = ['queue', 'active', ...SETTLED];

export const SPOOL_DEFAULTS = Object.freeze({
  /** How often idle workers look for due messages (ms); enqueue in the same process wakes them at once. */
  pollInterval: 500,
  /** A worker whose heartbeat is older than this is gone; its messages are taken over (ms). */
  staleAfter: 60_000,
  /** Sent records, and their ids, are deleted this long after sending (ms). */
  keepSent: 7 * 24 * 3600_000,
  /** Failed records (dead letters), and their ids, are deleted this long after they failed (ms). */
  keepFailed: 30 * 24 * 3600_000,
});

/** A stage file of an enqueue that stopped half-way is completed after this long (ms). */
const STALE_TMP = 3600_000;

/**
 * The embedded store: a spool directory.
 * @param {{ dir: string, pollInterval?: number, staleAfter?: number, keepSent?: number, keepFailed?: number }} options
 */
export function spoolStore(options = {}) {
  const given = typeof options === 'string' ? { dir: options } : (options ?? {});
  if (typeof given.dir !== 'string' || given.dir === '') {
    throw SmtpError.input('spoolStore needs a directory.', "pass spoolStore({ dir: './outbox' }).");
  }
  const opts = { ...SPOOL_DEFAULTS };
  for (const [key, value] of Object.entries(given)) {
    if (value === undefined || key === 'dir') continue;
    if (!(key in SPOOL_DEFAULTS)) {
      throw SmtpError.input(`spoolStore has no option ${key}.`, `use dir, ${Object.keys(SPOOL_DEFAULTS).join(', ')}.`);
    }
    if (typeof value !== 'number' || !(value >= 0)) {
      throw SmtpError.input(`spoolStore ${key} must be a number of ms, 0 or more.`, `pass for example ${key}: ${SPOOL_DEFAULTS[key]}.`);
    }
    opts[key] = value;
  }
  return new Spool({ ...opts, dir: given.dir });
}

class Spool {
  constructor(opts) {
    this.kind = 'spool';
    this.dir = resolve(opts.dir);
    this.#opts = opts;
    this.#owner = `${process.pid}-${randomHex(6)}`;
  }

  #opts;
  #owner;
  #host = hostname();
  #ready = null;
  #heartbeat = null;
  #dirHandles = new Map();
  #tmpCounter = 0;
  #wakers = new Set();

  // ----- the store interface (see outbox/index.js)

  /**
   * Stores a new message durably. Resolves false when the id exists already.
   *
   * The first record is staged in tmp/ (where no worker looks), then the
   * message is linked into msg/<id>.json, which fails if the id is taken:
   * the reservation. The message file names the stage, and the stage is
   * renamed into queue/ once: by this call, or by a later enqueue of the
   * same id (or pruning) when this one stopped half-way. A single rename
   * means two enqueues of one id can never both leave a record.
   */
  async add(record, message) {
    await this.#start();
    const { id } = record;
    const stage = `${id}.${this.#owner}.${this.#tmpCounter++}.stage`;
    await this.#writeFile(this.#path('tmp', stage), JSON.stringify({ ...record, v: 1 }));
    const tmp = await this.#writeTmp(`${id}.msg`, JSON.stringify({ id, createdAt: record.createdAt, stage, message }));
    let reserved = true;
    try {
      await link(tmp, this.#path('msg', `${id}.json`));
    } catch (error) {
      if (error.code !== 'EEXIST') {
        await unlink(this.#path('tmp', stage)).catch(() => {});
        throw error;
      }
      reserved = false;
    } finally {
      await unlink(tmp).catch(() => {});
    }
    if (!reserved) {
      await unlink(this.#path('tmp', stage)).catch(() => {});
      // The id is taken. An earlier enqueue of it may have stopped between
      // the reservation and the rename into queue/: finish it.
      await this.#completeEnqueue(id);
      return false;
    }
    await this.#syncDir('msg');
    await this.#completeEnqueue(id, stage);
    this.wake(id);
    return true;
  }

  /** The record, or null. Never null for an id whose enqueue resolved and whose record is not pruned. */
  async get(id) {
    await this.#start();
    return (await this.#locate(id))?.record ?? null;
  }

  /** Records in `state` (or all), oldest first, at most `limit`. */
  async list({ state, limit = 1000 } = {}) {
    await this.#start();
    const dirs = state ? [HOME[state]] : RECORD_DIRS;
    const out = [];
    for (const d of dirs) {
      if (!d) continue;
      for (const name of (await readdir(this.#path(d))).sort()) {
        const record = await readJson(this.#path(d, name));
        if (!record) continue;
        const matches = !state || record.state === state || (state === 'sending' && record.state === 'committing');
        if (matches) out.push(record);
        if (out.length >= limit) return out;
      }
    }
    return out;
  }

  /**
   * Changes a message's record while holding it (as a worker would):
   * `change(record)` returns the new record or throws. Resolves with the
   * new record, or null when there is no such message. Throws EBUSY when a
   * worker holds the message.
   */
  async update(id, change) {
    await this.#start();
    for (let tries = 0; tries < 50; tries++) {
      const found = await this.#locate(id);
      if (!found) return null;
      if (found.dir === 'active') {
        // A worker only glances at a queued message that is not due yet
        // (and puts it back at once); one that is sending is busy.
        if (found.record.state !== 'queued' && found.record.state !== 'deferred') throw busy(id, found.record.state);
        await pause(2);
        continue;
      }
      const held = await this.#claim(found.dir, found.name, id);
      if (!held) continue; // taken by a worker meanwhile: look again
      let next;
      try {
        next = change(held.record);
      } catch (error) {
        await rename(held.path, this.#path(found.dir, found.name));
        throw error;
      }
      await this.#settle(held, next);
      this.wake(id);
      return next;
    }
    throw busy(id, 'sending');
  }

  /**
   * Runs workers: `processJob(job)` for each message that is due, at most
   * `concurrency` at once. Resolves once started, with { stop() }.
   */
  async consume(processJob, { concurrency = 4 } = {}) {
    await this.#start();
    const worker = new SpoolWorker(this, processJob, concurrency, this.#opts);
    worker.run();
    return worker;
  }

  /** Wakes this process's idle workers (something became due: `id`, when known). */
  wake(id) {
    for (const wake of this.#wakers) wake(id);
  }

  /**
   * Stops the heartbeat and closes directory handles (workers must be
   * stopped first). Using the store again starts it again.
   */
  async close() {
    const ready = this.#ready;
    this.#ready = null;
    if (!ready) return;
    await ready.catch(() => {});
    clearInterval(this.#heartbeat);
    await unlink(this.#path('workers', this.#owner)).catch(() => {});
    const handles = [...this.#dirHandles.values()];
    this.#dirHandles.clear();
    for (const handle of handles) await handle.then((h) => h.close()).catch(() => {});
  }

  /**
   * Deletes sent records older than keepSent and failed ones older than
   * keepFailed, each with its message file (which frees the id), and old
   * temporary files. Workers call it every minute.
   */
  async prune() {
    await this.#start();
    const now = Date.now();
    for (const [dir, keep] of [
      ['sent', this.#opts.keepSent],
      ['failed', this.#opts.keepFailed],
    ]) {
      for (const name of await readdir(this.#path(dir))) {
        const info = await stat(this.#path(dir, name)).catch(() => null);
        if (!info || now - info.mtimeMs <= keep || !name.endsWith('.json')) continue;
        // Held while deciding (status() still finds it), so a decision that
        // moved it meanwhile is never deleted by mistake.
        const id = name.slice(0, -'.json'.length);
        const held = await this.#claim(dir, name, id);
        if (!held) continue;
        if (HOME[held.record.state] !== dir || now - (held.record.updatedAt ?? 0) <= keep) {
          await rename(held.path, this.#path(dir, name));
          continue;
        }
        // The record first, then the reservation: an id is never free while its record exists.
        await unlink(held.path);
        await unlink(this.#path('msg', `${id}.json`)).catch(() => {});
      }
    }
    for (const name of await readdir(this.#path('tmp'))) {
      const info = await stat(this.#path('tmp', name)).catch(() => null);
      if (!info || now - info.mtimeMs <= STALE_TMP) continue;
      const id = name.split('.')[0];
      if (name.endsWith('.stage') && (await readJson(this.#path('msg', `${id}.json`)))?.stage === name) {
        // An enqueue stopped between the reservation and the rename: the
        // message is stored, so it is sent (a retried enqueue would do the same).
        await this.#completeEnqueue(id, name);
      } else {
        await unlink(this.#path('tmp', name)).catch(() => {});
      }
    }
  }

  // ----- used by SpoolWorker

  get owner() {
    return this.#owner;
  }

  addWaker(wake) {
    this.#wakers.add(wake);
    return () => this.#wakers.delete(wake);
  }

  /** Queue file names (ids order = enqueue order). */
  async queued() {
    return (await readdir(this.#path('queue'))).filter((n) => n.endsWith('.json')).sort();
  }

  /** Takes `queue/<name>` for this process: { record, path, id } or null when another worker got it. */
  takeQueued(name) {
    return this.#claim('queue', name, name.slice(0, -'.json'.length));
  }

  /** Puts a message taken too early back (its nextAttemptAt is still ahead). */
  async putBack(held) {
    await rename(held.path, this.#path('queue', `${held.id}.json`));
  }

  /** Messages in active/ whose owner is gone, taken over by this process. */
  async takeOrphans() {
    const names = await readdir(this.#path('active'));
    const alive = new Map();
    const taken = [];
    for (const name of names) {
      const [id, owner] = name.split('.');
      if (owner === this.#owner || !owner) continue;
      if (!alive.has(owner)) alive.set(owner, await this.#ownerAlive(owner));
      if (alive.get(owner)) continue;
      const held = await this.#claim('active', name, id);
      if (held) taken.push(held);
    }
    // Heartbeats of gone workers with nothing left in active/.
    const busyOwners = new Set((await readdir(this.#path('active'))).map((n) => n.split('.')[1]));
    for (const owner of await readdir(this.#path('workers'))) {
      if (owner === this.#owner || busyOwners.has(owner)) continue;
      if (!alive.has(owner)) alive.set(owner, await this.#ownerAlive(owner));
      if (!alive.get(owner)) await unlink(this.#path('workers', owner)).catch(() => {});
    }
    return taken;
  }

  /** A held message's record as it is on disk now (after a failed attempt to process it). */
  async reread(held) {
    const record = await readJson(held.path);
    return record ? { id: held.id, path: held.path, record } : null;
  }

  /** A job for a held message (see outbox/index.js). */
  job(held) {
    let current = held.record;
    return {
      record: current,
      message: async () => {
        const stored = await readJson(this.#path('msg', `${held.id}.json`));
        if (!stored?.message) throw Object.assign(new Error(`the message file of ${held.id} is missing from the spool`), { code: 'ENOMESSAGE' });
        return stored.message;
      },
      save: async (record) => {
        current = { ...record, v: (current.v ?? 0) + 1 };
        await this.#write('active', basename(held.path), current);
      },
      finish: async (record) => {
        await this.#settle({ ...held, record: current }, record);
        current = record;
      },
    };
  }

  // ----- internals

  #path(...parts) {
    return join(this.dir, ...parts);
  }

  #start() {
    this.#ready ??= (async () => {
      // Messages are private: the directories are the owner's only.
      for (const d of DIRS) await mkdir(this.#path(d), { recursive: true, mode: 0o700 });
      await this.#beat();
      const every = Math.max(1000, Math.floor(this.#opts.staleAfter / 4));
      this.#heartbeat = setInterval(() => this.#beat().catch(() => {}), every);
      this.#heartbeat.unref?.();
    })();
    this.#ready.catch(() => {
      this.#ready = null;
    });
    return this.#ready;
  }

  async #beat() {
    const file = this.#path('workers', this.#owner);
    const now = new Date();
    try {
      await utimes(file, now, now);
    } catch {
      await this.#write('workers', this.#owner, { pid: process.pid, host: this.#host, startedAt: Date.now() });
    }
  }

  async #ownerAlive(owner) {
    const file = this.#path('workers', owner);
    const [info, beat] = await Promise.all([stat(file).catch(() => null), readJson(file)]);
    if (!info || !beat) return false;
    if (Date.now() - info.mtimeMs > this.#opts.staleAfter) return false;
    if (beat.host !== this.#host) return true;
    try {
      process.kill(beat.pid, 0);
      return true;
    } catch (error) {
      return error.code === 'EPERM';
    }
  }

  /** Renames the staged first record of `id` into queue/ (at most once: a second rename finds nothing). */
  async #completeEnqueue(id, stage) {
    stage ??= (await readJson(this.#path('msg', `${id}.json`)))?.stage;
    if (!stage) return;
    try {
      await rename(this.#path('tmp', stage), this.#path('queue', `${id}.json`));
    } catch (error) {
      if (error.code === 'ENOENT') return; // done already
      throw error;
    }
    await this.#syncDir('queue');
  }

  /** Renames dir/name into active/ under this process: the lock. */
  async #claim(dir, name, id) {
    await this.#start();
    const path = this.#path('active', `${id}.${this.#owner}.json`);
    try {
      await rename(this.#path(dir, name), path);
    } catch (error) {
      if (error.code === 'ENOENT') return null;
      throw error;
    }
    const record = await readJson(path);
    if (!record) {
      // Not JSON (written by something else): set aside where no one takes it, kept for a look.
      await rename(path, this.#path(dir, `${name}.unreadable`)).catch(() => {});
      return null;
    }
    return { id, path, record };
  }

  /**
   * Saves the held message's next record and lets go of it: the new
   * version replaces the held file in place (atomic), then one rename
   * moves it to the directory of its state. At every instant the record is
   * in exactly one place, old or new.
   */
  async #settle(held, next) {
    const record = { ...next, v: (held.record.v ?? 0) + 1 };
    await this.#write('active', basename(held.path), record);
    const home = HOME[next.state];
    if (home === 'active') return;
    await rename(held.path, this.#path(home, `${held.id}.json`));
    await this.#syncDir(home);
    // A sent message's content is not needed any more; its file stays, as the id's reservation.
    if (next.state === 'sent') await this.#write('msg', `${held.id}.json`, { id: held.id, createdAt: record.createdAt, sentAt: record.updatedAt });
  }

  /**
   * The record of `id`: { dir, name, path, record } or null. A record that
   * moves while the directories are read can be missed: while the id is
   * reserved (its message file exists) and its enqueue has finished, look
   * again.
   */
  async #locate(id) {
    const deadline = Date.now() + 2000;
    for (let tries = 0; ; tries++) {
      const found = await this.#locateOnce(id);
      if (found) return found;
      const reservation = await readJson(this.#path('msg', `${id}.json`));
      if (!reservation) return null;
      // The enqueue that reserved the id has not renamed its record into queue/ yet: not stored yet.
      if (reservation.stage && (await stat(this.#path('tmp', reservation.stage)).catch(() => null))) return null;
      if (Date.now() > deadline) return null;
      await pause(tries < 3 ? 0 : 2);
    }
  }

  async #locateOnce(id) {
    const candidates = [
      ...(await readdir(this.#path('active'))).filter((n) => n.startsWith(`${id}.`)).map((n) => ['active', n]),
      ...['queue', ...SETTLED].map((d) => [d, `${id}.json`]),
    ];
    let best = null;
    for (const [dir, name] of candidates) {
      const path = this.#path(dir, name);
      const record = await readJson(path);
      if (record && (!best || (record.v ?? 0) > (best.record.v ?? 0))) best = { dir, name, path, record };
    }
    return best;
  }

  async #writeFile(path, text) {
    const handle = await open(path, 'w', 0o600);
    try {
      await handle.writeFile(text);
      await handle.sync();
    } finally {
      await handle.close();
    }
  }

  async #writeTmp(name, text) {
    const tmp = this.#path('tmp', `${name}.${this.#owner}.${this.#tmpCounter++}`);
    await this.#writeFile(tmp, text);
    return tmp;
  }

  /** Writes dir/name atomically and durably (a new version replaces the old in one rename). */
  async #write(dir, name, value) {
    const tmp = await this.#writeTmp(name, JSON.stringify(value));
    await rename(tmp, this.#path(dir, name));
    await this.#syncDir(dir);
  }

  /** fsync of a directory: the renames into it are durable. One handle per directory, kept open. */
  async #syncDir(dir) {
    let handle = this.#dirHandles.get(dir);
    if (!handle) {
      handle = open(this.#path(dir), 'r');
      this.#dirHandles.set(dir, handle);
      handle.catch(() => this.#dirHandles.delete(dir));
    }
    await (await handle).sync();
  }
}

/** One process's workers on a spool. */
class SpoolWorker {
  constructor(spool, processJob, concurrency, opts) {
    this.#spool = spool;
    this.#processJob = processJob;
    this.#concurrency = concurrency;
    this.#opts = opts;
  }

  #spool;
  #processJob;
  #concurrency;
  #opts;
  #running = true;
  #inFlight = new Set();
  /** Queue file names seen with a nextAttemptAt ahead: name → { due, seen }. */
  #notBefore = new Map();
  /** The last listing of queue/, worked through from `at`. */
  #listing = { names: [], at: 0, read: 0 };
  /** Messages this process holds whose processing failed (a store error): tried again later. */
  #again = [];
  #wake = null;
  #done = null;
  #lastPrune = 0;
  #lastOrphanCheck = 0;

  run() {
    const unregister = this.#spool.addWaker((id) => {
      if (id !== undefined) this.#notBefore.delete(`${id}.json`);
      this.#listing.read = 0; // something new: list again
      this.#poke();
    });
    this.#done = this.#loop().finally(unregister);
  }

  async stop() {
    this.#running = false;
    this.#poke();
    await this.#done;
  }

  #poke() {
    const wake = this.#wake;
    this.#wake = null;
    wake?.();
  }

  async #loop() {
    while (this.#running) {
      let next;
      try {
        next = await this.#fill();
      } catch (error) {
        // A transient file-system failure: look again after a poll interval.
        next = Date.now() + this.#opts.pollInterval;
        this.#report(error);
      }
      if (!this.#running) break;
      const full = this.#inFlight.size >= this.#concurrency;
      const wait = full ? this.#opts.pollInterval : Math.max(0, Math.min(next - Date.now(), this.#opts.pollInterval));
      if (wait === 0) continue;
      await new Promise((resolve) => {
        const timer = setTimeout(resolve, wait);
        this.#wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.#wake = null;
    }
    await Promise.allSettled([...this.#inFlight]);
  }

  /** Starts due messages while there is room. Returns when to look again (ms since the epoch). */
  async #fill() {
    const now = Date.now();
    if (now - this.#lastPrune > 60_000) {
      this.#lastPrune = now;
      await this.#spool.prune();
    }
    if (now - this.#lastOrphanCheck >= this.#opts.pollInterval) {
      this.#lastOrphanCheck = now;
      for (const held of await this.#spool.takeOrphans()) this.#start(held);
      for (const held of this.#again.splice(0)) {
        if (now - held.failedAt < this.#opts.pollInterval) this.#again.push(held);
        else this.#start(await this.#spool.reread(held));
      }
    }
    let next = Infinity;
    const listing = this.#listing;
    if (listing.read >= listing.names.length || now - listing.at > this.#opts.pollInterval) {
      this.#listing = { names: await this.#spool.queued(), at: now, read: 0 };
      // Forget due times of messages no longer queued.
      const listed = new Set(this.#listing.names);
      for (const name of this.#notBefore.keys()) if (!listed.has(name)) this.#notBefore.delete(name);
    }
    const { names } = this.#listing;
    while (this.#listing.read < names.length) {
      if (!this.#running || this.#inFlight.size >= this.#concurrency) return now;
      const name = names[this.#listing.read++];
      const seen = this.#notBefore.get(name);
      // A due time read from another process's file may be out of date: trusted for 5 s.
      if (seen && seen.due > Date.now() && Date.now() - seen.seen < 5000) {
        next = Math.min(next, seen.due);
        continue;
      }
      const held = await this.#spool.takeQueued(name);
      if (!held) continue;
      const due = held.record.nextAttemptAt ?? 0;
      if (due > Date.now()) {
        await this.#spool.putBack(held);
        this.#notBefore.set(name, { due, seen: Date.now() });
        next = Math.min(next, due);
        continue;
      }
      this.#notBefore.delete(name);
      this.#start(held);
    }
    // Everything listed was looked at: list again at the next due time.
    this.#listing.read = names.length;
    return Math.min(next, now + this.#opts.pollInterval);
  }

  #start(held) {
    if (!held) return;
    const job = this.#spool.job(held);
    const running = Promise.resolve()
      .then(() => this.#processJob(job))
      .catch((error) => {
        // A store failure mid-way: the message stays held by this process
        // (in active/) and goes through the outbox again a little later,
        // which makes an interrupted "committing" `unknown`. Never lost.
        this.#report(error);
        this.#again.push({ ...held, failedAt: Date.now() });
      })
      .finally(() => {
        this.#inFlight.delete(running);
        this.#poke();
      });
    this.#inFlight.add(running);
  }

  #report(error) {
    if (process.env.WASMTP_OUTBOX_DEBUG) console.error('[wasmtp outbox]', error);
  }
}

function busy(id, state) {
  return new SmtpError({
    code: 'EBUSY',
    phase: 'mail',
    message: `the outbox message ${id} is being sent (${state}); it cannot be changed now.`,
    hint: 'wait for the attempt to finish (status() shows its outcome), then decide.',
  });
}

async function readJson(path) {
  try {
    return JSON.parse(await readFile(path, 'utf8'));
  } catch {
    return null;
  }
}

function pause(ms) {
  return new Promise((resolve) => (ms > 0 ? setTimeout(resolve, ms) : setImmediate(resolve)));
}

function randomHex(n) {
  return [...globalThis.crypto.getRandomValues(new Uint8Array(n))].map((b) => b.toString(16).padStart(2, '0')).join('');
}
