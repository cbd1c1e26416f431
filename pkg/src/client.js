// createClient(): the public API over the pool, the driver and a transport.

import { normalizeDkim, signMessage } from './dkim.js';
import { loadEngine } from './engine.js';
import { SmtpError, toSmtpError } from './errors.js';
import { prepareMessageAsync } from './message.js';
import { connectionToken } from './oauth2.js';
import { defaultClientName, engineOptions, normalizeOptions } from './options.js';
import { Pool } from './pool.js';
import { Session } from './session.js';
import { closedClientError } from './util.js';

/**
 * Creates a client. Nothing connects until the first `send` or `verify`.
 * @param {object} options see index.d.ts (ClientOptions)
 * @param {object} [defaultTransport] the runtime's transport (set by the entry point)
 */
export function createClient(options, defaultTransport) {
  return new Client(normalizeOptions(options, defaultTransport));
}

class Client {
  #opts;
  #pool;
  /** Sends still being checked, not yet queued in the pool (close() waits for them). */
  #preparing = new Set();
  /** Sends whose outcome is not known yet (close() resolves once they are). */
  #sending = new Set();
  #closing = false;
  /** Messages settled per connection (successes and failures), for the retry rule. */
  #outcomes = new WeakMap();

  constructor(opts) {
    this.#opts = opts;
    this.#pool = new Pool({ openSession: () => this.#openSession(), limits: opts.pool });
  }

  /**
   * Sends one message. Resolves after the server's final 2xx with
   * { messageId, accepted, rejected, response, queueId }.
   * `options.beforeDataEnd` is awaited before the end of data goes out
   * (on every attempt): the outbox records "committing" there.
   * `options.dkim` (keys, or false) replaces the client's `dkim` for this message.
   */
  send(message, options) {
    if (this.#closing) return Promise.reject(closedClientError());
    const beforeDataEnd = options?.beforeDataEnd;
    if (beforeDataEnd !== undefined && typeof beforeDataEnd !== 'function') {
      return Promise.reject(SmtpError.input('send() options.beforeDataEnd must be a function.', 'pass beforeDataEnd: async () => { ... }, or leave it out.'));
    }
    let dkim = this.#opts.dkim;
    try {
      if (options?.dkim !== undefined) dkim = normalizeDkim(options.dkim, 'send() options.dkim');
    } catch (error) {
      return Promise.reject(error);
    }
    // The message is checked (by the engine) and signed before it takes a
    // connection; bodies given as a stream, file or URL are read first.
    const prepared = loadEngine(this.#opts.engine).then(async (engine) => {
      const p = await prepareMessageAsync(engine, message);
      if (dkim) await signMessage(p, dkim);
      return p;
    });
    this.#preparing.add(prepared);
    const done = () => this.#preparing.delete(prepared);
    prepared.then(done, done);
    // A spooled stream (dkim.js) is removed once the message has settled.
    const sending = prepared.then((p) =>
      this.#pool.run((session, seq) => this.#sendOn(session, p, 1, seq, beforeDataEnd)).finally(() => p.release?.()),
    );
    this.#sending.add(sending);
    const settled = () => this.#sending.delete(sending);
    sending.then(settled, settled);
    return sending;
  }

  /** Connects, runs TLS, EHLO and AUTH, then QUITs: resolves with what was established. */
  async verify() {
    const session = await this.#openSession();
    try {
      const info = await session.ready;
      return { capabilities: info.capabilities, tls: info.tls, authMethod: info.authMethod, greeting: info.greeting };
    } finally {
      await session.quit();
    }
  }

  /**
   * Lets queued and in-flight messages finish, then closes every connection
   * (QUIT). Resolves once every message's outcome is known, without waiting
   * for the QUIT replies, which end within a few seconds in the background.
   */
  async close() {
    this.#closing = true;
    await Promise.allSettled([...this.#preparing]);
    const closed = this.#pool.close();
    closed.catch(() => {}); // a failed QUIT after every outcome is known concerns nobody
    // Once every outcome is known and every QUIT is written, the QUIT
    // replies concern nobody: they end within a few seconds in the background.
    const outcomesKnown = Promise.allSettled([...this.#sending]).then(() => this.#pool.quitsWritten());
    await Promise.race([closed, outcomesKnown]);
  }

  async #openSession() {
    const engine = await loadEngine(this.#opts.engine);
    const clientName = this.#opts.clientName ?? (await defaultClientName());
    // With a token provider: the cached token, or one fetched now.
    const { token, renew } = await connectionToken(this.#opts);
    let built;
    try {
      built = engineOptions(engine, { ...this.#opts, clientName, currentAccessToken: token });
    } catch (thrown) {
      throw toSmtpError(thrown);
    }
    try {
      return new Session({
        engine,
        engineOptions: built.options,
        target: built.target,
        transport: this.#opts.transport,
        onTranscript: this.#opts.onTranscript,
        renewAccessToken: renew,
      });
    } catch (thrown) {
      throw toSmtpError(thrown);
    } finally {
      built.options.free();
    }
  }

  async #sendOn(session, prepared, attempt, seq, beforeDataEnd) {
    const { envelope, body } = prepared.attempt();
    try {
      const delivery = await session.submit(envelope, body, { beforeDataEnd });
      this.#countOutcome(session);
      const { from, to } = prepared.envelopeInfo();
      return { messageId: prepared.messageId, envelope: { from, to: [...to] }, ...delivery };
    } catch (error) {
      // Outcomes settle in the order the engine reports them, so the first
      // message to fail on a connection sees no earlier outcome.
      const earlier = this.#countOutcome(session);
      // The connection went away before this message was sent (421, or a
      // close: an idle time-out, a per-connection limit, another message's
      // failure). The server cannot have it, so it goes out again on a fresh
      // connection, when the body can be read again, and when this
      // connection had dealt with an earlier message: the first message to
      // fail on a connection takes the failure, so every retry round settles
      // at least one message and a broken server cannot cause a loop.
      // "unknown" (the end of data sent, no reply) is never retried.
      const retry =
        earlier > 0 && attempt < MAX_ATTEMPTS && isConnectionLost(error) && prepared.canRetry();
      if (!retry) throw error;
      return this.#pool.retry((fresh) => this.#sendOn(fresh, prepared, attempt + 1, seq, beforeDataEnd), seq);
    }
  }

  /** Counts an outcome on `session`; returns how many came before it. */
  #countOutcome(session) {
    const before = this.#outcomes.get(session) ?? 0;
    this.#outcomes.set(session, before + 1);
    return before;
  }
}

/** Attempts per message when connections keep going away under it. */
const MAX_ATTEMPTS = 10;

/** Not sent, because the connection closed (or the server said 421, closing). */
function isConnectionLost(error) {
  return (
    error instanceof SmtpError &&
    error.deliveryState === 'not-sent' &&
    (error.code === 'ECLOSED' || error.reply?.code === 421)
  );
}
