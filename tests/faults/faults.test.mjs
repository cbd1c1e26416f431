// Fault injection at every phase of a STARTTLS + AUTH submission: the
// server closes (FIN), resets (RST), stalls forever, or sends garbage at
// connect, greeting, EHLO, STARTTLS, the TLS handshake, AUTH, MAIL, RCPT,
// DATA, mid-body, after the end of data (before its reply) and QUIT.
// Each case: the right code, phase and deliveryState; stalls end through
// the configured (short) time-outs; never a success without the final 2xx.
// Then the pool: a message whose delivery is unknown is never re-sent.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { EHLO, GREET, caps } from '../kit/dialogs.mjs';
import { refusedPort, startFakeServer, startUnacceptingListener } from '../kit/fake-server.mjs';
import { closeAtByte } from '../kit/script.mjs';
import { SHORT_TIMEOUTS, assertSmtpError, client, passwordAuth, rawMessage, settle, since, useSecretScanner } from '../kit/harness.mjs';
import { respond } from '../kit/responder.mjs';

useSecretScanner();

const T = SHORT_TIMEOUTS.command; // every time-out is the same in these tests
/** A stall must end through its time-out: not before, and not long after (generous: shared CI cores). */
const STALL_SLACK_MS = 8000;

/**
 * The dialog, as [fault point, server step]: a fault at a point replaces
 * the server's step there and everything after it.
 */
function dialog({ pipelining }) {
  return [
    ['greeting', GREET],
    [null, EHLO],
    ['ehlo', caps('STARTTLS')],
    [null, 'C: STARTTLS'],
    ['starttls', 'S: 220 2.0.0 Ready to start TLS'],
    ['tls', 'TLS'],
    [null, EHLO],
    [null, caps('AUTH PLAIN', ...(pipelining ? ['PIPELINING'] : []))],
    [null, 'C~ ^AUTH PLAIN \\S+$'],
    ['auth', 'S: 235 2.7.0 ok'],
    [null, 'C~ ^MAIL FROM:<ann@example.com>'],
    ['mail', 'S: 250 2.1.0 ok'],
    [null, 'C~ ^RCPT TO:<bob@example.org>'],
    ['rcpt', 'S: 250 2.1.5 ok'],
    [null, 'C: DATA'],
    ['data', 'S: 354 go ahead'],
    ['body', 'BODY'],
    ['dataEnd', 'S: 250 2.0.0 ok queued as F1'],
    [null, 'C: QUIT'],
    ['quit', 'S: 221 2.0.0 bye\nCLOSE'],
  ];
}

const FAULT_STEPS = {
  close: 'CLOSE',
  reset: 'RESET',
  stall: 'STALL',
  // A garbage line (random bytes, then CRLF): without a line end, a client
  // rightly waits for the rest of the reply (that is a stall).
  garbage: 'GARBAGE 40\nS+ \\r\\n\nSTALL',
};

function scriptFor(point, fault, opts) {
  const steps = [];
  for (const [at, step] of dialog(opts)) {
    if (at === point) {
      if (point === 'body') steps.push('READ 2048', fault === 'stall' ? 'FREEZE' : FAULT_STEPS[fault]);
      else if (point === 'tls' && fault === 'garbage') steps.push('HANDSHAKE-GARBAGE 64', 'STALL');
      // Before the greeting, the fault waits until the client saw its connection open.
      else if (point === 'greeting') steps.push('DELAY 100', FAULT_STEPS[fault]);
      else steps.push(FAULT_STEPS[fault]);
      return steps.join('\n');
    }
    steps.push(step);
  }
  throw new Error(`no point ${point}`);
}

const EXPECTED_CODE = { close: 'ECLOSED', reset: 'ECLOSED', stall: 'ETIMEDOUT', garbage: 'EPROTOCOL' };
const PHASE = { greeting: 'greeting', ehlo: 'ehlo', starttls: 'starttls', auth: 'auth', mail: 'mail', rcpt: 'rcpt', data: 'data', body: 'data', dataEnd: 'data' };

/** A body that never ends by itself: 8 KiB of lines, then it waits until `release()`. */
function gatedBody() {
  let release;
  const gate = new Promise((resolve) => {
    release = resolve;
  });
  async function* chunks() {
    yield 'Subject: gated\r\n\r\n' + 'x'.repeat(76).concat('\r\n').repeat(100);
    await gate;
  }
  return { body: chunks(), release };
}

/** A 64 MiB body, produced lazily (larger than every socket buffer on the path). */
async function* hugeBody() {
  yield 'Subject: huge\r\n\r\n';
  const block = 'y'.repeat(510).concat('\r\n').repeat(128);
  for (let i = 0; i < 1024; i++) yield block;
}

/** Resolves when `check()` holds, or after `ms` (the caller asserts). */
async function until(check, ms) {
  const deadline = Date.now() + ms;
  while (!check() && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
}

async function runCase(point, fault, { pipelining = false } = {}) {
  const server = await startFakeServer({ script: scriptFor(point, fault, { pipelining }) });
  const c = client(server.port, { security: 'starttls', auth: passwordAuth, timeouts: SHORT_TIMEOUTS });
  let gate = null;
  let message = rawMessage();
  if (point === 'body') {
    if (fault === 'stall') message = { raw: hugeBody(), envelope: message.envelope };
    else {
      gate = gatedBody();
      message = { raw: gate.body, envelope: message.envelope };
    }
  }
  const started = performance.now();
  try {
    const sent = await settle(c.send(message), `${point}/${fault} send`);
    const elapsed = since(started);
    const closed = await settle(c.close(), 'close()');
    assert.equal(closed.ok, true);
    const conn = await server.connection(0);
    // close() resolves once every outcome is known and QUIT is written; the
    // server reads the QUIT a moment later.
    if (point === 'quit') await until(() => conn.sent(/^QUIT$/), 2000);
    return { sent, elapsed, conn, server };
  } finally {
    gate?.release();
    await server.close();
  }
}

for (const pipelining of [false, true]) {
  const points = pipelining ? ['mail', 'rcpt', 'data', 'body', 'dataEnd'] : ['greeting', 'ehlo', 'starttls', 'auth', 'mail', 'rcpt', 'data', 'body', 'dataEnd'];
  describe(`faults in a STARTTLS + AUTH submission${pipelining ? ' (PIPELINING)' : ''}`, { concurrency: 8 }, () => {
    for (const point of points) {
      for (const fault of Object.keys(FAULT_STEPS)) {
        const unknown = point === 'dataEnd';
        const code = EXPECTED_CODE[fault];
        test(`${point}: ${fault} → ${code} (${PHASE[point]}), ${unknown ? 'unknown' : 'not-sent'}`, async () => {
          const { sent, elapsed, conn } = await runCase(point, fault, { pipelining });
          assert.equal(sent.ok, false, `${point}/${fault}: a success was reported without the final 2xx\n${conn.describe()}`);
          const err = sent.error;
          assertSmtpError(err);
          assert.equal(err.code, code, err.message);
          assert.equal(err.phase, PHASE[point], err.message);
          assert.equal(err.deliveryState, unknown ? 'unknown' : 'not-sent', err.message);
          if (unknown) assert.match(err.hint, /may or may not|check/i, 'the hint says the message may have arrived');
          if (fault === 'stall') {
            assert.ok(elapsed >= T - 100, `the stall ended after ${elapsed} ms, before the ${T} ms time-out`);
            assert.ok(elapsed < T + STALL_SLACK_MS, `the stall took ${elapsed} ms with a ${T} ms time-out`);
          }
          assert.deepEqual(conn.failures, [], 'the client kept to the script up to the fault');
          // Nothing sensitive after a failed TLS set-up; nothing after a failure at all but QUIT.
          if (['greeting', 'ehlo', 'starttls'].includes(point)) assert.ok(!conn.sent(/^(AUTH|MAIL|RCPT|DATA)/), conn.describe());
        });
      }
    }
  });
}

describe('faults at connect, in the TLS handshake and at QUIT', { concurrency: 8 }, () => {
  test('connect: refused → ECONNECT (connect), not-sent, retryable', async () => {
    const port = await refusedPort();
    const c = client(port, { security: 'starttls', auth: passwordAuth, timeouts: SHORT_TIMEOUTS });
    const sent = await settle(c.send(rawMessage()));
    assert.equal(sent.ok, false);
    assertSmtpError(sent.error);
    assert.equal(sent.error.code, 'ECONNECT');
    assert.equal(sent.error.phase, 'connect');
    assert.equal(sent.error.deliveryState, 'not-sent');
    assert.equal(sent.error.retryable, true);
    await c.close();
  });

  test('connect: stall (SYN never answered) → ETIMEDOUT (connect) at the connect time-out', async () => {
    const listener = await startUnacceptingListener();
    assert.ok(listener, 'python3 is needed for a listener that never accepts (scripts/setup.sh installs it)');
    try {
      const c = client(listener.port, { security: 'starttls', auth: passwordAuth, timeouts: SHORT_TIMEOUTS });
      const started = performance.now();
      const sent = await settle(c.send(rawMessage()));
      const elapsed = since(started);
      assert.equal(sent.ok, false);
      assertSmtpError(sent.error);
      assert.equal(sent.error.code, 'ETIMEDOUT', sent.error.message);
      assert.equal(sent.error.phase, 'connect');
      assert.equal(sent.error.deliveryState, 'not-sent');
      assert.ok(elapsed >= T - 100 && elapsed < T + STALL_SLACK_MS, `${elapsed} ms`);
      await settle(c.close(), 'close()');
    } finally {
      listener.close();
    }
  });

  test('connect: reset right after the accept → ECONNECT (connect) or ECLOSED (greeting), not-sent', async () => {
    // On loopback the RST can arrive before the client saw its connect complete.
    const server = await startFakeServer({ script: 'RESET' });
    const c = client(server.port, { security: 'starttls', auth: passwordAuth, timeouts: SHORT_TIMEOUTS });
    const sent = await settle(c.send(rawMessage()));
    assert.equal(sent.ok, false);
    assertSmtpError(sent.error);
    assert.ok(
      (sent.error.code === 'ECONNECT' && sent.error.phase === 'connect') || (sent.error.code === 'ECLOSED' && sent.error.phase === 'greeting'),
      sent.error.message,
    );
    assert.equal(sent.error.deliveryState, 'not-sent');
    await c.close();
    await server.close();
  });

  const TLS_EXPECT = {
    close: ['ETLS', 'ECLOSED'],
    reset: ['ETLS', 'ECLOSED'],
    stall: ['ETIMEDOUT'],
    garbage: ['ETLS', 'ETLS_PORT_MISMATCH', 'EPROTOCOL'],
  };
  for (const fault of Object.keys(FAULT_STEPS)) {
    test(`TLS handshake after STARTTLS: ${fault} → ${TLS_EXPECT[fault].join(' or ')}, not-sent, nothing sensitive`, async () => {
      const { sent, elapsed, conn } = await runCase('tls', fault);
      assert.equal(sent.ok, false);
      const err = sent.error;
      assertSmtpError(err);
      assert.ok(TLS_EXPECT[fault].includes(err.code), err.message);
      assert.ok(['starttls', 'tls'].includes(err.phase), err.message);
      assert.equal(err.deliveryState, 'not-sent');
      if (fault === 'stall') assert.ok(elapsed >= T - 100 && elapsed < T + STALL_SLACK_MS, `${elapsed} ms`);
      assert.ok(!conn.sent(/^(AUTH|MAIL|RCPT|DATA)/), conn.describe());
    });
  }

  test(
    'a message that fails mid-body cancels (and unlocks) its ReadableStream body',
    async () => {
      const server = await startFakeServer({ script: `${GREET}\n${EHLO}\nS: 250 mx.test\nC~ ^MAIL\nS: 250 ok\nC~ ^RCPT\nS: 250 ok\nC: DATA\nS: 354 go\nREAD 100\nCLOSE` });
      let cancelled = false;
      let sentFirst = false;
      const stream = new ReadableStream({
        pull(controller) {
          if (sentFirst) return new Promise(() => {}); // a source that has nothing more for now
          sentFirst = true;
          controller.enqueue(new TextEncoder().encode(`Subject: x\r\n\r\n${'y'.repeat(500)}\r\n`));
        },
        cancel() {
          cancelled = true;
        },
      });
      const c = client(server.port, { security: 'none', timeouts: SHORT_TIMEOUTS });
      const sent = await settle(c.send({ raw: stream, envelope: rawMessage().envelope }));
      assert.equal(sent.error?.code, 'ECLOSED');
      await settle(c.close());
      await server.close();
      assert.equal(cancelled, true, 'the stream was cancelled');
      assert.equal(stream.locked, false, 'the stream was released');
    },
  );

  test(
    'every failure of the STARTTLS handshake reports the same phase (a stall included)',
    async () => {
      const phases = new Set();
      for (const fault of Object.keys(FAULT_STEPS)) phases.add((await runCase('tls', fault)).sent.error?.phase);
      assert.deepEqual([...phases], ['starttls']);
    },
  );

  test(
    'garbage in answer to the ClientHello after STARTTLS is not reported as a port mix-up telling a starttls user to use starttls',
    async () => {
      const { sent } = await runCase('tls', 'garbage');
      assert.notEqual(sent.error.code, 'ETLS_PORT_MISMATCH', sent.error.message);
      assert.doesNotMatch(sent.error.hint ?? '', /use security: 'starttls'/);
    },
  );

  for (const fault of Object.keys(FAULT_STEPS)) {
    test(`QUIT: ${fault} → the delivered message stays delivered, close() ends`, async () => {
      const { sent, conn } = await runCase('quit', fault);
      assert.equal(sent.ok, true, sent.error?.message);
      assert.deepEqual(sent.value.accepted, ['bob@example.org']);
      assert.equal(conn.messages.length, 1);
      assert.ok(conn.sent(/^QUIT$/), conn.describe());
    });
  }
});

// ----- the pool: "unknown" is never silently re-sent ------------------------------

describe('the pool never re-sends a message whose delivery is unknown', { concurrency: 4 }, () => {
  /**
   * Sends `count` messages (X-Seq: i) through a pool; the server's policy
   * decides per point. Returns outcomes by seq and the stored copies by seq.
   */
  async function poolRun({ count, policy, pipelining = true, maxConnections = 1, timeouts }) {
    const stored = new Map();
    const server = await startFakeServer({
      script: () => [
        respond({
          capabilities: pipelining ? ['PIPELINING', '8BITMIME'] : ['8BITMIME'],
          policy,
          onStore: (m) => {
            const seq = Number(/^X-Seq: (\d+)/m.exec(m.body.toString('latin1'))?.[1]);
            stored.set(seq, (stored.get(seq) ?? 0) + 1);
          },
        }),
      ],
    });
    const c = client(server.port, { security: 'none', pool: { maxConnections }, timeouts });
    const outcomes = await Promise.all(
      Array.from({ length: count }, (_, i) =>
        settle(c.send(rawMessage(['bob@example.org'], `Subject: ${i}\r\nX-Seq: ${i}\r\n\r\nbody ${i}\r\n`)), `message ${i}`),
      ),
    );
    await settle(c.close(), 'close()');
    await server.close();
    return { outcomes, stored, connections: server.connections.length };
  }

  /** Drops the connection after the end of data of the n-th message stored on connection `onConn`. */
  const dropAfterEndOfData = (n, how = 'close', onConn = 0) => (point, ctx) =>
    point === 'final' && ctx.conn.index === onConn && ctx.transactions === n ? how : undefined;

  for (const [label, policy, timeouts] of [
    ['connection closed after the end of data (the server stored it)', dropAfterEndOfData(2, 'close'), undefined],
    ['connection reset after the end of data (the server stored it)', dropAfterEndOfData(2, 'reset'), undefined],
    ['the final reply never comes (dataEnd time-out; the server stored it)', dropAfterEndOfData(2, 'stall'), SHORT_TIMEOUTS],
    [
      'connection closed after the end of data, before the server stored it',
      (point, ctx) => (point === 'stored?' && ctx.conn.index === 0 && ctx.transactions === 2 ? 'close' : undefined),
      undefined,
    ],
  ]) {
    for (const pipelining of [true, false]) {
      test(`${label}${pipelining ? ', pipelined' : ''}: reported unknown once, never re-sent; the others arrive once`, async () => {
        const count = 6;
        const { outcomes, stored, connections } = await poolRun({ count, policy, pipelining, timeouts });
        const unknown = outcomes.map((o, i) => [o, i]).filter(([o]) => !o.ok && o.error.deliveryState === 'unknown');
        assert.equal(unknown.length, 1, `exactly one unknown: ${outcomes.map((o) => (o.ok ? 'ok' : `${o.error.code}/${o.error.deliveryState}`)).join(', ')}`);
        const [[unknownOutcome, seq]] = unknown;
        assert.equal(seq, 1, 'the second message is the one whose reply was lost');
        assertSmtpError(unknownOutcome.error);
        assert.equal(unknownOutcome.error.phase, 'data');
        // Never re-sent: the server holds at most the one copy it got before the drop.
        const expectedCopies = label.includes('before the server stored it') ? 0 : 1;
        assert.equal(stored.get(seq) ?? 0, expectedCopies, `copies of the unknown message at the server`);
        for (const [i, o] of outcomes.entries()) {
          if (i === seq) continue;
          if (o.ok) {
            assert.equal(stored.get(i), 1, `message ${i} reported accepted: it arrived exactly once`);
            continue;
          }
          // Only a time-out leaves messages behind the lost reply failed (not
          // re-sent by the pool, which retries closes only): never stored, and said so.
          assert.ok(label.includes('time-out'), `message ${i}: ${o.error.message}`);
          assert.equal(o.error.deliveryState, 'not-sent', o.error.message);
          assert.equal(stored.get(i) ?? 0, 0, `message ${i} failed not-sent: the server must not have it`);
        }
        assert.ok(connections >= 2, 'the messages after the drop went out on a fresh connection');
      });
    }
  }

  test(
    'messages queued behind a lost final reply fail not-sent with an error about themselves, not "may or may not have been accepted"',
    async () => {
      const { outcomes } = await poolRun({ count: 4, policy: dropAfterEndOfData(1, 'stall'), timeouts: SHORT_TIMEOUTS });
      assert.equal(outcomes[0].error?.deliveryState, 'unknown');
      for (const o of outcomes.slice(1).filter((o) => !o.ok)) {
        assert.equal(o.error.deliveryState, 'not-sent');
        assert.doesNotMatch(`${o.error.detail} ${o.error.hint}`, /may or may not have been accepted|after its end/, o.error.message);
      }
    },
  );

  test('the first message on a connection, unknown: not re-sent either', async () => {
    const { outcomes, stored } = await poolRun({ count: 1, policy: dropAfterEndOfData(1, 'close') });
    assert.equal(outcomes[0].ok, false);
    assert.equal(outcomes[0].error.deliveryState, 'unknown');
    assert.equal(stored.get(0), 1);
  });

  test('not-sent messages behind a drop are re-sent and arrive exactly once', async () => {
    // The connection drops when the third message's MAIL arrives: messages
    // 3.. were never sent (not-sent) and go out again on a fresh connection.
    const policy = (point, ctx) => (point === 'mail' && ctx.conn.index === 0 && ctx.transactions === 2 ? 'close' : undefined);
    const { outcomes, stored } = await poolRun({ count: 6, policy });
    for (const [i, o] of outcomes.entries()) {
      assert.equal(o.ok, true, `message ${i}: ${o.error?.message}`);
      assert.equal(stored.get(i), 1, `message ${i} arrived exactly once`);
    }
  });
});

// ----- a close at any byte ---------------------------------------------------------

describe('a close at any byte of a reply', { concurrency: 16 }, () => {
  const GREETING = '220-mx.test ESMTP\r\n220 ready\r\n';
  const EHLO_REPLY = '250-mx.test\r\n250-8BITMIME\r\n250 SIZE 1000000\r\n';
  const FINAL = '250-2.0.0 ok\r\n250 2.0.0 queued as Z9\r\n';
  const HEAD = 'C: EHLO client.test';
  const TX = 'C~ ^MAIL FROM:\nS: 250 ok\nC~ ^RCPT TO:\nS: 250 ok\nC: DATA\nS: 354 go\nBODY';
  const cases = [
    ['greeting', GREETING, (k) => closeAtByte(GREETING, k), { code: 'ECLOSED', phase: 'greeting', deliveryState: 'not-sent' }],
    ['EHLO reply', EHLO_REPLY, (k) => `S: 220 mx\n${HEAD}\n${closeAtByte(EHLO_REPLY, k)}`, { code: 'ECLOSED', phase: 'ehlo', deliveryState: 'not-sent' }],
    // Even "250 2.0.0 queued" without its line end is no success: unknown.
    ['final reply after the end of data', FINAL, (k) => `S: 220 mx\n${HEAD}\nS: 250 mx\n${TX}\n${closeAtByte(FINAL, k)}`, { code: 'ECLOSED', phase: 'data', deliveryState: 'unknown' }],
  ];
  for (const [label, text, script, expected] of cases) {
    test(`${label}: closed after each of its ${text.length} bytes → ${expected.code} (${expected.phase}), ${expected.deliveryState}; never a success`, async () => {
      for (let k = 0; k < text.length; k++) {
        const server = await startFakeServer({ script: script(k) });
        const c = client(server.port, { security: 'none', timeouts: SHORT_TIMEOUTS });
        const sent = await settle(c.send(rawMessage()), `${label} closed at byte ${k}`);
        await settle(c.close(), 'close()');
        await server.close();
        assert.equal(sent.ok, false, `${label} closed at byte ${k}: success reported without the whole final reply`);
        for (const [key, value] of Object.entries(expected)) assert.equal(sent.error[key], value, `byte ${k}: ${sent.error.message}`);
      }
    });
  }
});
