// A small pool of sessions for concurrent `send` calls: messages queue here,
// go to a warm connection when one has room (several per connection, so the
// engine pipelines them), and new connections open up to `maxConnections`.
// Connections retire after `maxMessagesPerConnection` messages or
// `idleTimeout` ms without work.

import { SmtpError } from './errors.js';

/** Messages one connection may have in flight at once (the engine pipelines them). */
const PIPELINE_DEPTH = 8;

export class Pool {
  /**
   * @param {object} args
   * @param {() => Promise<import('./session.js').Session>} args.openSession
   * @param {{maxConnections: number, maxMessagesPerConnection: number, idleTimeout: number}} args.limits
   */
  constructor({ openSession, limits }) {
    this.#openSession = openSession;
    this.#limits = limits;
  }

  #openSession;
  #limits;
  /** Sessions open or opening. */
  #sessions = new Set();
  #opening = 0;
  /** Messages waiting for a connection: { run(session) → Promise, fail(error) }. */
  #queue = [];
  #idleTimers = new Map();
  #closing = false;

  /**
   * Runs `task(session)` on a pooled connection once one has room; resolves
   * or rejects with its outcome.
   */
  run(task) {
    if (this.#closing) {
      return Promise.reject(
        new SmtpError({
          code: 'ECLOSED',
          phase: 'mail',
          message: 'the client is closed; the message was not sent.',
          hint: 'create a new client, or send before calling close().',
        }),
      );
    }
    return new Promise((resolve, reject) => {
      this.#queue.push({ task, resolve, reject });
      this.#schedule();
    });
  }

  /** Waits for queued and in-flight messages, then ends every connection with QUIT. */
  async close() {
    this.#closing = true;
    while (this.#queue.length > 0 || [...this.#sessions].some((s) => s.inFlight > 0) || this.#opening > 0) {
      await this.#changed();
    }
    await Promise.all([...this.#sessions].map((s) => this.#retire(s)));
  }

  #schedule() {
    while (this.#queue.length > 0) {
      const session = this.#pickSession();
      if (session) {
        this.#assign(this.#queue.shift(), session);
        continue;
      }
      // Open connections for the messages that no warm one can take yet.
      if (this.#sessions.size + this.#opening < this.#limits.maxConnections && this.#connecting() < this.#queue.length) {
        this.#open();
        continue;
      }
      break;
    }
  }

  /** Connections on their way to ready. */
  #connecting() {
    let n = this.#opening;
    for (const s of this.#sessions) if (s.info === null && !s.isClosed) n += 1;
    return n;
  }

  /** The usable connection with the fewest messages in flight, if one has room. */
  #pickSession() {
    let best = null;
    for (const s of this.#sessions) {
      if (!s.usable || s.retiring || s.inFlight >= PIPELINE_DEPTH) continue;
      if (s.submitted >= this.#limits.maxMessagesPerConnection) continue;
      if (!best || s.inFlight < best.inFlight) best = s;
    }
    return best;
  }

  #assign(entry, session) {
    this.#stopIdleTimer(session);
    session.setKeepAlive(true);
    if (session.submitted + 1 >= this.#limits.maxMessagesPerConnection) session.retiring = true;
    entry.task(session).then(entry.resolve, entry.reject);
  }

  async #open() {
    this.#opening += 1;
    let session;
    try {
      session = await this.#openSession();
    } catch (error) {
      // Options the engine refused: every queued message would fail the same way.
      this.#opening -= 1;
      this.#failQueue(error);
      this.#notify();
      return;
    }
    this.#opening -= 1;
    this.#sessions.add(session);
    session.onChange = () => this.#onSessionChange(session);
    session.ready.then(
      () => this.#onSessionChange(session),
      (error) => {
        this.#sessions.delete(session);
        // The set-up failed (refused, certificate, credentials...). Opening
        // another connection would most likely fail the same way, so none is
        // opened here: waiting messages fail with this error unless another
        // connection is still on its way.
        if (![...this.#sessions].some((s) => s.usable) && this.#connecting() === 0) this.#failQueue(error);
        this.#notify();
      },
    );
  }

  #onSessionChange(session) {
    if (session.isClosed) {
      this.#sessions.delete(session);
      this.#stopIdleTimer(session);
      // A set-up failure is handled by the `ready` rejection above.
      if (session.info === null) return;
    } else if (session.inFlight === 0 && session.usable) {
      if (session.retiring) this.#retire(session);
      else this.#startIdleTimer(session);
    }
    this.#notify();
    this.#schedule();
  }

  #startIdleTimer(session) {
    if (this.#idleTimers.has(session) || this.#queue.length > 0) return;
    // An idle pooled connection must not keep a script alive that forgot close().
    session.setKeepAlive(false);
    const timer = setTimeout(() => this.#retire(session), this.#limits.idleTimeout);
    timer.unref?.();
    this.#idleTimers.set(session, timer);
  }

  #stopIdleTimer(session) {
    clearTimeout(this.#idleTimers.get(session));
    this.#idleTimers.delete(session);
  }

  #retire(session) {
    this.#stopIdleTimer(session);
    session.retiring = true;
    session.setKeepAlive(true);
    return session.quit();
  }

  #failQueue(error) {
    for (const entry of this.#queue.splice(0)) entry.reject(error);
  }

  // Waiters for any change (used by close()).
  #waiters = [];

  #changed() {
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  #notify() {
    for (const resolve of this.#waiters.splice(0)) resolve();
  }
}
