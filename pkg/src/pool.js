// A small pool of sessions for concurrent `send` calls: messages queue here,
// go to a warm connection when one has room (several per connection, so the
// engine pipelines them), and new connections open up to `maxConnections`.
// Connections retire after `maxMessagesPerConnection` messages or
// `idleTimeout` ms without work. A retiring connection is replaced make-
// before-break: once its remaining messages will take about as long as a
// connection takes to set up (and at the latest in the last tenth of its
// budget), it gives up its place among `maxConnections`, so its successor
// connects (greeting, TLS, AUTH) while it sends its last messages, and its
// QUIT is off the critical path. One connection hands over at a time, so
// the pool holds at most `maxConnections` + 1 connections: the extra one is
// finishing while its successor starts (as a closing one could before).
// An optional token bucket (`rate` messages per second, `rateBurst` at
// once) paces the messages across the pool.
//
// Scheduling only: which bytes go out and what a reply means is decided by
// the engine in each session.

import { closedClientError, monotonicNow as now } from './util.js';

/**
 * The message (counted from 1) by which a connection hands its place in the
 * pool to a successor at the latest: the last tenth of its budget.
 */
function latestHandover(maxMessages) {
  return Math.max(1, maxMessages - Math.floor(maxMessages / 10));
}

/** Messages a connection finishes before its rate is trusted for a hand-over. */
const MIN_FINISHED_FOR_RATE = 8;

/**
 * A token bucket: `rate` tokens per second, at most `burst` saved up.
 * Starts full, so the first `burst` messages go at once.
 */
export class TokenBucket {
  constructor(rate, burst = 1) {
    this.rate = rate;
    this.burst = burst;
    this.tokens = burst;
    this.at = now();
  }

  #refill() {
    const t = now();
    this.tokens = Math.min(this.burst, this.tokens + ((t - this.at) * this.rate) / 1000);
    this.at = t;
  }

  /** Takes a token if one is there. */
  tryTake() {
    this.#refill();
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }

  /** Whether a token is there (without taking it). */
  ready() {
    this.#refill();
    return this.tokens >= 1;
  }

  /** Milliseconds until the next token. */
  wait() {
    this.#refill();
    return this.tokens >= 1 ? 0 : Math.ceil(((1 - this.tokens) * 1000) / this.rate);
  }
}

export class Pool {
  /**
   * @param {object} args
   * @param {() => Promise<import('./session.js').Session>} args.openSession
   * @param {{maxConnections: number, maxMessagesPerConnection: number, idleTimeout: number, rate?: number, rateBurst?: number}} args.limits
   */
  constructor({ openSession, limits }) {
    this.#openSession = openSession;
    this.#limits = limits;
    if (limits.rate !== undefined) this.#bucket = new TokenBucket(limits.rate, limits.rateBurst ?? 1);
  }

  #openSession;
  #limits;
  /** Sessions open or opening. */
  #sessions = new Set();
  /** The session past its hand-over point, if any: still sending, but its place in `maxConnections` is free. */
  #handingOver = null;
  /** When each session took its first message (for its rate of finished messages). */
  #firstAssigned = new WeakMap();
  /** How long the last connection took from opening to ready (ms), once one did. */
  #setupMs = null;
  /** Off once a successor failed to set up beside its predecessor (a server that limits connections). */
  #makeBeforeBreak = true;
  #opening = 0;
  /** Messages waiting for a connection: { task(session) → Promise, resolve, reject, seq }, oldest first. */
  #queue = [];
  /** Tasks handed to a session whose promise has not settled (a retry keeps its first task open). */
  #active = 0;
  #seq = 0;
  #idleTimers = new Map();
  #closing = false;
  /** The rate limit, when `rate` is set; and the timer waiting for its next token. */
  #bucket = null;
  #tokenTimer = null;

  /**
   * Runs `task(session)` on a pooled connection once one has room; resolves
   * or rejects with its outcome.
   */
  run(task) {
    if (this.#closing) {
      return Promise.reject(closedClientError());
    }
    return new Promise((resolve, reject) => {
      this.#queue.push({ task, resolve, reject, seq: this.#seq++ });
      this.#schedule();
    });
  }

  /**
   * Runs `task` again for a message whose connection went away before it
   * was sent (also while closing: close() waits for it). It goes ahead of
   * messages queued after it, so the sending order is kept.
   * @param {number} seq the `seq` passed to the first task
   */
  retry(task, seq) {
    return new Promise((resolve, reject) => {
      const entry = { task, resolve, reject, seq };
      const at = this.#queue.findIndex((e) => e.seq > seq);
      if (at === -1) this.#queue.push(entry);
      else this.#queue.splice(at, 0, entry);
      this.#schedule();
    });
  }

  /** Waits for queued and in-flight messages, then ends every connection with QUIT. */
  async close() {
    this.#closing = true;
    while (this.#queue.length > 0 || this.#active > 0 || [...this.#sessions].some((s) => s.inFlight > 0) || this.#opening > 0) {
      await this.#changed();
    }
    clearTimeout(this.#tokenTimer);
    this.#tokenTimer = null;
    const quits = [...this.#sessions].map((s) => this.#retire(s));
    this.#quitsAsked = true;
    this.#notify();
    await Promise.all(quits);
  }

  /**
   * Resolves once close() has asked every connection to QUIT and each QUIT
   * is written (or its connection is gone), without waiting for the replies.
   */
  async quitsWritten() {
    while (!this.#quitsAsked) await this.#changed();
    await Promise.all([...this.#sessions].map((s) => s.quitWritten));
  }

  #quitsAsked = false;

  #schedule() {
    while (this.#queue.length > 0) {
      // Paced: nothing is dispatched (nor opened for) until the next token.
      if (this.#bucket && !this.#bucket.ready()) {
        this.#waitForToken();
        break;
      }
      const session = this.#pickSession();
      if (session) {
        this.#bucket?.tryTake();
        this.#assign(this.#queue.shift(), session);
        continue;
      }
      // Open connections for the messages that no warm one can take yet
      // (when paced, only for those a token is there for).
      const queued = this.#bucket ? Math.min(this.#queue.length, Math.floor(this.#bucket.tokens)) : this.#queue.length;
      // Messages a connection that hands over can still take need no successor.
      const waiting = queued - this.#handingOverRoom();
      if (this.#placesTaken() < this.#limits.maxConnections && this.#connecting() < waiting) {
        this.#open();
        continue;
      }
      break;
    }
    if (this.#queue.length === 0) this.#armIdleTimers();
  }

  /** Every idle connection gets its idle timer (one skipped while messages were waiting gets it now). */
  #armIdleTimers() {
    for (const s of this.#sessions) {
      if (s.usable && !s.retiring && s.inFlight === 0) this.#startIdleTimer(s);
    }
  }

  #waitForToken() {
    if (this.#tokenTimer) return;
    this.#tokenTimer = setTimeout(() => {
      this.#tokenTimer = null;
      this.#schedule();
    }, this.#bucket.wait());
  }

  /** Connections that count against `maxConnections`: opening, open, and not handing over. */
  #placesTaken() {
    return this.#opening + this.#sessions.size - (this.#handingOver ? 1 : 0);
  }

  /** Messages the connection that hands over may still take. */
  #handingOverRoom() {
    const s = this.#handingOver;
    return s && s.usable && !s.retiring ? this.#limits.maxMessagesPerConnection - s.submitted : 0;
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
      if (!s.usable || s.retiring || s.inFlight >= s.pipelineWindow) continue;
      if (s.submitted >= this.#limits.maxMessagesPerConnection) continue;
      if (!best || s.inFlight < best.inFlight) best = s;
    }
    return best;
  }

  #assign(entry, session) {
    this.#stopIdleTimer(session);
    session.setKeepAlive(true);
    if (!this.#firstAssigned.has(session)) this.#firstAssigned.set(session, now());
    if (this.#timeToHandOver(session)) this.#handingOver = session;
    if (session.submitted + 1 >= this.#limits.maxMessagesPerConnection) session.retiring = true;
    this.#active += 1;
    let outcome;
    try {
      outcome = Promise.resolve(entry.task(session, entry.seq));
    } catch (error) {
      outcome = Promise.reject(error);
    }
    outcome
      .then(entry.resolve, entry.reject)
      .finally(() => {
        this.#active -= 1;
        this.#notify();
      });
  }

  /**
   * Whether `session`, about to take another message, should let a successor
   * start: when its remaining budget, at the rate it has finished messages so
   * far, lasts no longer than the last connection's set-up took; at the
   * latest in the last tenth of the budget. One session hands over at a
   * time, so the pool never holds more than `maxConnections` + 1
   * connections.
   */
  #timeToHandOver(session) {
    if (!this.#makeBeforeBreak || this.#handingOver !== null) return false;
    const max = this.#limits.maxMessagesPerConnection;
    if (session.submitted + 1 >= latestHandover(max)) return true;
    // Finished messages give the rate: assignments come in bursts (a window at once).
    const finished = session.submitted - session.inFlight;
    const elapsed = now() - this.#firstAssigned.get(session);
    if (this.#setupMs === null || finished < MIN_FINISHED_FOR_RATE || elapsed <= 0) return false;
    const remainingMs = ((max - finished) * elapsed) / finished;
    return remainingMs <= this.#setupMs;
  }

  async #open() {
    const opened = now();
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
      () => {
        this.#setupMs = now() - opened;
        this.#onSessionChange(session);
      },
      (error) => {
        this.#sessions.delete(session);
        // A successor refused while its predecessor still sends: the server
        // may count connections (a 421 "too many connections"). The
        // predecessors take their places back and replacements wait for
        // them to close, as without make-before-break, from now on.
        if (this.#handingOver !== null) {
          this.#makeBeforeBreak = false;
          this.#handingOver = null;
        }
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
      if (session === this.#handingOver) this.#handingOver = null;
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
