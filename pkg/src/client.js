// createClient(): the public API over the pool, the driver and a transport.

import { loadEngine } from './engine.js';
import { SmtpError, toSmtpError } from './errors.js';
import { prepareMessage } from './message.js';
import { engineOptions, normalizeOptions } from './options.js';
import { Pool } from './pool.js';
import { Session } from './session.js';

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
  #closing = false;

  constructor(opts) {
    this.#opts = opts;
    this.#pool = new Pool({ openSession: () => this.#openSession(), limits: opts.pool });
  }

  /**
   * Sends one message. Resolves after the server's final 2xx with
   * { messageId, accepted, rejected, response, queueId }.
   */
  send(message) {
    if (this.#closing) return Promise.reject(closedClientError());
    // The message is checked (by the engine) before it takes a connection.
    const prepared = loadEngine().then((engine) => prepareMessage(engine, message));
    this.#preparing.add(prepared);
    const done = () => this.#preparing.delete(prepared);
    prepared.then(done, done);
    return prepared.then((p) => this.#pool.run((session) => this.#sendOn(session, p, 1)));
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

  /** Lets queued and in-flight messages finish, then closes every connection. */
  async close() {
    this.#closing = true;
    await Promise.allSettled([...this.#preparing]);
    await this.#pool.close();
  }

  async #openSession() {
    const engine = await loadEngine();
    let built;
    try {
      built = engineOptions(engine, this.#opts);
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
      });
    } catch (thrown) {
      throw toSmtpError(thrown);
    } finally {
      built.options.free();
    }
  }

  async #sendOn(session, prepared, attempt) {
    const reused = session.warm;
    const { envelope, body } = prepared.attempt();
    try {
      const delivery = await session.submit(envelope, body);
      return { messageId: prepared.messageId, ...delivery };
    } catch (error) {
      // A warm connection the server had dropped (idle time-out, 421
      // shutting down): nothing was sent, so one retry on a fresh one is
      // safe, when the body can be read again.
      if (!(attempt === 1 && reused && isStaleConnection(error) && prepared.canRetry())) throw error;
      return this.#pool.run((fresh) => this.#sendOn(fresh, prepared, attempt + 1));
    }
  }
}

function closedClientError() {
  return new SmtpError({
    code: 'ECLOSED',
    phase: 'mail',
    message: 'the client is closed; the message was not sent.',
    hint: 'create a new client, or send before calling close().',
  });
}

function isStaleConnection(error) {
  return (
    error instanceof SmtpError &&
    error.deliveryState === 'not-sent' &&
    (error.code === 'ECLOSED' || error.reply?.code === 421)
  );
}
