// A client that sends nothing: every message is built exactly as `send`
// would build it and kept in memory, for testing mail code without a
// server (what nodemailer's jsonTransport / streamTransport are for).

import { loadEngine } from './engine.js';
import { SmtpError } from './errors.js';
import { buildMessage } from './message.js';

/**
 * Creates a capturing client: `send` resolves like a real one (every
 * recipient accepted) and appends { envelope, messageId, raw } to
 * `client.messages`. Mistakes in a message reject with the same EINPUT
 * errors as a real client.
 */
export function createTestClient() {
  return new TestClient();
}

class TestClient {
  /** Every message sent so far: { envelope: { from, to }, messageId, raw: Uint8Array }. */
  messages = [];
  #closed = false;

  async send(message) {
    if (this.#closed) {
      throw new SmtpError({ code: 'ECLOSED', phase: 'mail', message: 'the client is closed; the message was not sent.', hint: 'create a new client, or send before calling close().' });
    }
    const engine = await loadEngine('core');
    const built = await buildMessage(engine, message);
    this.messages.push(built);
    const queueId = `captured-${this.messages.length}`;
    return { messageId: built.messageId, accepted: [...built.envelope.to], rejected: [], response: `250 2.0.0 Ok: queued as ${queueId}`, queueId };
  }

  /** Resolves like a server with every extension and no TLS. */
  async verify() {
    return { capabilities: { domain: 'capture', esmtp: true, extensions: [], auth: [], pipelining: true, chunking: false, eightBitMime: true, smtpUtf8: true, dsn: true, starttls: false, requireTls: false, enhancedStatusCodes: true }, tls: null, authMethod: null, greeting: '220 capture' };
  }

  async close() {
    this.#closed = true;
  }
}
