// Odd reply codes (220, 221, 354, 421, 500, 501, 502, 504, 530, 550, 554)
// as the answer to the greeting, EHLO, HELO, STARTTLS, RSET and QUIT, over
// real sockets: each ends in a defined outcome (the dialog goes on by the
// rules, or a named error with its phase and delivery state) and never
// hangs. The client's time-outs are the defaults (a minute and more), so an
// outcome within seconds is never a time-out covering for a hang.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { EHLO, GREET, HELO, QUIT, SENSITIVE, caps, transaction } from '../kit/dialogs.mjs';
import { startFakeServer } from '../kit/fake-server.mjs';
import { assertSmtpError, client, passwordAuth, rawMessage, settle, since, useSecretScanner } from '../kit/harness.mjs';

useSecretScanner();

const CODES = [220, 221, 354, 421, 500, 501, 502, 504, 530, 550, 554];
/** A positive completion that is not 221 ("closing", the end of the session anywhere but after QUIT). */
const positive = (code) => code >= 200 && code < 300 && code !== 221;
/** An outcome must come well before any default time-out (60 s). */
const BOUND_MS = 10_000;

const TLS_UP = 'TLS\nC: EHLO client.test\nS: 250-mx.test\nS: 250 AUTH PLAIN\nC~ ^AUTH PLAIN \\S+$\nS: 235 ok';

/**
 * Each stage: the script up to the odd reply, what follows when the reply
 * lets the dialog go on, the client options, and the expected outcome.
 */
const STAGES = {
  greeting: {
    options: { security: 'starttls', auth: passwordAuth },
    before: '',
    onward: `${EHLO}\n${caps('STARTTLS')}\nC: STARTTLS\nS: 220 go\n${TLS_UP}\n${transaction()}\n${QUIT}`,
    expect: (code) =>
      code === 220 ? 'delivered'
      : code === 221 ? { code: 'ECLOSED', phase: 'greeting' }
      : [421, 550, 554].includes(code) ? { code: 'ECONNECT', phase: 'greeting', retryable: code === 421 }
      : { code: 'EPROTOCOL', phase: 'greeting' },
  },
  ehlo: {
    options: { security: 'starttls', auth: passwordAuth },
    before: `${GREET}\n${EHLO}`,
    onward: '',
    // A 2xx without STARTTLS in it is an EHLO that offers no STARTTLS.
    expect: (code) =>
      positive(code) ? { code: 'ESTARTTLS_UNAVAILABLE', phase: 'starttls', fromReply: false }
      : code === 221 || code === 421 ? { code: 'ECLOSED', phase: 'ehlo' }
      : { code: 'ESTARTTLS_UNAVAILABLE', phase: 'ehlo' },
  },
  helo: {
    // Only where security allows the HELO fallback at all ('none').
    options: { security: 'none' },
    before: `${GREET}\n${EHLO}\nS: 502 5.5.2 EHLO not implemented\n${HELO}`,
    onward: `${transaction()}\n${QUIT}`,
    expect: (code) =>
      positive(code) ? 'delivered'
      : code === 221 || code === 421 ? { code: 'ECLOSED', phase: 'ehlo' }
      : { code: 'EPROTOCOL', phase: 'ehlo' },
  },
  starttls: {
    options: { security: 'starttls', auth: passwordAuth },
    before: `${GREET}\n${EHLO}\n${caps('STARTTLS', 'AUTH PLAIN')}\nC: STARTTLS`,
    onward: `${TLS_UP}\n${transaction()}\n${QUIT}`,
    expect: (code) =>
      code === 220 ? 'delivered'
      : code === 221 || code === 421 ? { code: 'ECLOSED', phase: 'starttls' }
      : { code: 'ESTARTTLS_UNAVAILABLE', phase: 'starttls' },
  },
  rset: {
    // The first message's DATA is refused (451) after MAIL was accepted, so
    // the second message starts with RSET; the odd code answers that RSET.
    options: { security: 'none', pool: { maxConnections: 1 } },
    first: true,
    before: `${GREET}\n${EHLO}\n${caps('8BITMIME')}\nC~ ^MAIL FROM:\nS: 250 ok\nC~ ^RCPT TO:\nS: 250 ok\nC: DATA\nS: 451 4.3.0 try later\nC: RSET`,
    onward: `${transaction({ to: ['carol@example.org'] })}\n${QUIT}`,
    // 221 / 421: the connection is gone before the second message was sent,
    // so the client sends it again on a fresh connection (the retry rule).
    retryScript: `${GREET}\n${EHLO}\n${caps('8BITMIME')}\n${transaction({ to: ['carol@example.org'], queueId: 'R2' })}\n${QUIT}`,
    expect: (code) =>
      positive(code) ? 'delivered'
      : code === 221 || code === 421 ? 'delivered-on-retry'
      : { code: 'EPROTOCOL', phase: 'mail' },
  },
  quit: {
    options: { security: 'none' },
    quit: true,
    before: `${GREET}\n${EHLO}\n${caps('8BITMIME')}\n${transaction()}\nC: QUIT`,
    onward: '',
    expect: () => 'closed',
  },
};

for (const [stage, spec] of Object.entries(STAGES)) {
  describe(`odd replies to ${stage}`, { concurrency: 6 }, () => {
    for (const code of CODES) {
      const expected = spec.expect(code);
      const label = typeof expected === 'string' ? expected : `${expected.code} (${expected.phase})`;
      test(`${code} → ${label}`, async () => {
        const reply = `S: ${code} ${code === 220 ? 'mx.test odd but positive' : 'odd reply'}`;
        const script = [spec.before, reply, positive(code) || (stage === 'greeting' && code === 220) ? spec.onward : ''].join('\n');
        const scripts = spec.retryScript ? [script, spec.retryScript] : [script];
        const server = await startFakeServer({ scripts });
        const c = client(server.port, spec.options);
        const started = performance.now();
        try {
          if (spec.first) {
            const first = await settle(c.send(rawMessage(['bob@example.org'])), 'the first send');
            assert.equal(first.ok, false);
            assert.equal(first.error.code, 'EMESSAGE');
          }
          const sent = await settle(c.send(rawMessage(spec.first ? ['carol@example.org'] : ['bob@example.org'])), `${stage}/${code} send`);
          const closed = await settle(c.close(), 'close()');
          assert.equal(closed.ok, true);
          const elapsed = since(started);
          assert.ok(elapsed < BOUND_MS, `${stage}/${code} took ${elapsed} ms`);

          const conn = await server.connection(0);
          const done = await settle(conn.done, 'the client releasing the connection', BOUND_MS);
          assert.equal(done.ok, true);

          if (expected === 'delivered' || expected === 'closed' || expected === 'delivered-on-retry') {
            assert.equal(sent.ok, true, `${stage}/${code}: ${sent.error?.message}\n${conn.describe()}`);
            assert.deepEqual(sent.value.accepted, [spec.first ? 'carol@example.org' : 'bob@example.org']);
            const holders = server.connections.filter((k) => k.messages.length > 0 && k.messages.some((m) => !/^$/.test(m)));
            const copies = server.connections.reduce((n, k) => n + k.messages.length, 0);
            assert.equal(copies, 1, `the message reached the server exactly once (${holders.length} connections)`);
            if (expected === 'delivered-on-retry') {
              assert.equal(server.connections.length, 2, 'sent again on a fresh connection');
              assert.equal(server.connections[1].messages.length, 1);
            }
            if (expected === 'closed') assert.equal(conn.stoppedAt, conn.steps.length, 'the client sent QUIT');
          } else {
            assert.equal(sent.ok, false, `${stage}/${code} should fail`);
            const err = sent.error;
            assertSmtpError(err);
            assert.equal(err.code, expected.code, err.message);
            assert.equal(err.phase, expected.phase, err.message);
            assert.equal(err.deliveryState, 'not-sent', err.message);
            if (expected.retryable !== undefined) assert.equal(err.retryable, expected.retryable, err.message);
            if (expected.fromReply !== false) {
              assert.equal(err.reply?.code, code, `the reply is reported: ${err.message}`);
              assert.ok(err.message.includes(String(code)), `the message names the server's reply: ${err.message}`);
            }
            assert.equal(server.connections.reduce((n, k) => n + k.messages.length, 0), 0, 'no message reached the server');
            if (stage !== 'rset') {
              const bad = conn.commands.filter((k) => SENSITIVE.test(k.text) && !(stage === 'helo' && /^HELO/.test(k.text)));
              assert.deepEqual(bad, [], conn.describe());
            }
          }
        } finally {
          await server.close();
        }
      });
    }
  });
}
