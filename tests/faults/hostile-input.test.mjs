// Hostile input: CR, LF, NUL and over-long values in addresses, display
// names, header names and values, the EHLO name, attachment filenames and
// DSN parameters give EINPUT, and nothing reaches the server: no connection
// at all (or, where noted, nothing after EHLO but QUIT).
//
// Over-long display names (> 256 characters), subjects (> 998), filenames
// (> 255) and header values (> 8 KiB) are EINPUT too. Long values within
// those limits are encoded and folded (RFC 2047 / RFC 2231): the message is
// delivered well-formed (no line over 78 bytes, no header field but the
// builder's own, the value intact).

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { simpleParser } from '../../pkg/node_modules/mailparser/index.js';
import { startFakeServer } from '../kit/fake-server.mjs';
import { client, passwordAuth, rejectsWith, settle, useSecretScanner } from '../kit/harness.mjs';
import { respond } from '../kit/responder.mjs';

useSecretScanner();

const long = (n, c = 'a') => c.repeat(n);
const base = { from: 'ann@example.com', to: ['bob@example.org'], subject: 'hello', text: 'body' };
const raw = (envelope) => ({ raw: 'Subject: x\r\n\r\nx\r\n', envelope: { from: 'ann@example.com', to: ['bob@example.org'], ...envelope } });
const INJECT = { CR: '\r', LF: '\n', CRLF: '\r\n', NUL: '\0' };

/** A server that accepts everything (a hostile value must never get that far). */
async function acceptingServer() {
  const stored = [];
  const server = await startFakeServer({ script: () => [respond({ capabilities: ['PIPELINING', '8BITMIME', 'DSN', 'SMTPUTF8'], onStore: (m) => stored.push(m.body) })] });
  return { server, stored };
}

/** Sends `message` (or verifies, with client `options`); expects EINPUT and no connection at all. */
async function refusedBeforeConnecting(message, { options = {}, what } = {}) {
  const { server } = await acceptingServer();
  // STARTTLS + credentials configured: a leak would have something to leak.
  const c = client(server.port, { security: 'none', allowInsecureAuth: false, ...options });
  try {
    const err = await rejectsWith(message ? c.send(message) : c.verify(), { code: 'EINPUT' }, what);
    assert.ok(err.hint || err.detail.length > 20, 'the error says what is wrong');
    await settle(c.close(), 'close()');
    assert.equal(server.connections.length, 0, `${what}: the client connected (${JSON.stringify(server.connections.map((k) => k.describe()))})`);
    return err;
  } finally {
    await server.close();
  }
}

/** For raw envelopes, checked only once a connection is up: EINPUT, and nothing after EHLO but QUIT. */
async function refusedAfterEhlo(message, what) {
  const { server, stored } = await acceptingServer();
  const c = client(server.port, { security: 'none' });
  try {
    await rejectsWith(c.send(message), { code: 'EINPUT', deliveryState: 'not-sent' }, what);
    await settle(c.close(), 'close()');
    assert.equal(stored.length, 0);
    for (const conn of server.connections) {
      const after = conn.commandsAfter(/^EHLO /).map((k) => k.text);
      assert.ok(after.every((line) => line === 'QUIT'), `${what}: after EHLO the client sent ${JSON.stringify(after)}`);
    }
  } finally {
    await server.close();
  }
}

describe('CR, LF and NUL: EINPUT, no connection', { concurrency: 8 }, () => {
  for (const [name, bad] of Object.entries(INJECT)) {
    const cases = {
      'from address': { ...base, from: `ann${bad}@example.com` },
      'from address, injected command': { ...base, from: `ann@example.com>${bad}RCPT TO:<evil@example.net` },
      'to address': { ...base, to: [`bob@example.org${bad}DATA`] },
      'cc address': { ...base, cc: [`${bad}carol@example.org`] },
      'bcc address': { ...base, bcc: [`dave@exa${bad}mple.org`] },
      'reply-to address': { ...base, replyTo: `r@example.org${bad}Bcc: evil@example.net` },
      'display name (from)': { ...base, from: `Ann${bad}Bcc: evil@example.net <ann@example.com>` },
      'display name (to, quoted)': { ...base, to: [`"Bob${bad}X" <bob@example.org>`] },
      'header name': { ...base, headers: { [`X-Tag${bad}Bcc`]: 'v' } },
      'header value': { ...base, headers: { 'X-Tag': `v${bad}Bcc: evil@example.net` } },
      subject: { ...base, subject: `Hi${bad}Bcc: evil@example.net` },
      'message id': { ...base, messageId: `<a@example.com>${bad}Bcc: x@example.net` },
      'attachment filename': { ...base, attachments: [{ filename: `a${bad}Content-Type: text/html.pdf`, content: 'x' }] },
      'attachment content type': { ...base, attachments: [{ filename: 'a.pdf', content: 'x', contentType: `text/plain${bad}X: y` }] },
      'attachment content id': { ...base, attachments: [{ filename: 'a.png', content: 'x', cid: `c${bad}X: y` }] },
      'DSN NOTIFY': raw({ dsn: { notify: [`success${bad}`] } }),
      'DSN RET': raw({ dsn: { ret: `full${bad}` } }),
    };
    for (const [field, message] of Object.entries(cases)) {
      test(`${name} in the ${field}`, () => refusedBeforeConnecting(message, { what: `${name} in ${field}` }));
    }
    test(`${name} in the EHLO name`, () =>
      refusedBeforeConnecting(null, { options: { clientName: `client${bad}.test`, auth: passwordAuth, security: 'starttls' }, what: `${name} in EHLO name` }));
    for (const [field, envelope] of Object.entries({
      'raw envelope from': { from: `ann@example.com${bad}RSET` },
      'raw envelope to': { to: [`bob@example.org${bad}`] },
      'DSN ENVID': { dsn: { envid: `id${bad}RCPT TO:<evil@example.net>` } },
    })) {
      test(`${name} in the ${field}: EINPUT, nothing after EHLO but QUIT`, () => refusedAfterEhlo(raw(envelope), `${name} in ${field}`));
      test(
        `${name} in the ${field}: refused before connecting`,
        () => refusedBeforeConnecting(raw(envelope), { what: `${name} in ${field}` }),
      );
    }
  }
});

describe('over-long values: EINPUT, no connection', { concurrency: 8 }, () => {
  const cases = {
    'local part of 65 bytes': { ...base, from: `${long(65)}@example.com` },
    'domain label of 64 bytes': { ...base, to: [`bob@${long(64)}.example.org`] },
    'address of 300 bytes': { ...base, to: [`bob@${long(60)}.${long(60)}.${long(60)}.${long(60)}.${long(50)}.org`] },
    'header name of 1000 bytes': { ...base, headers: { [`X-${long(1000)}`]: 'v' } },
    'display name of 2000 bytes': { ...base, from: `${long(2000, 'A')} <ann@example.com>` },
    'subject of 5000 non-ASCII characters': { ...base, subject: long(5000, 'é') },
    'header value of 10000 bytes': { ...base, headers: { 'X-Tag': long(10000) } },
    'attachment filename of 2000 bytes': { ...base, attachments: [{ filename: `${long(2000)}.pdf`, content: 'x' }] },
  };
  for (const [label, message] of Object.entries(cases)) test(label, () => refusedBeforeConnecting(message, { what: label }));
  test('EHLO name of 300 bytes', () => refusedBeforeConnecting(null, { options: { clientName: `${long(60)}.${long(60)}.${long(60)}.${long(60)}.${long(50)}` }, what: 'long EHLO name' }));
  test('DSN ENVID of 500 bytes: EINPUT, nothing after EHLO but QUIT', () => refusedAfterEhlo(raw({ dsn: { envid: long(500) } }), 'long ENVID'));
  test('DSN ENVID of 500 bytes: refused before connecting', () =>
    refusedBeforeConnecting(raw({ dsn: { envid: long(500) } }), { what: 'long ENVID' }));
});

describe('long values within the limits are folded, never an over-long line or an extra header', { concurrency: 4 }, () => {
  const name = `${'Ann '.repeat(63)}Ann`;
  const cases = {
    'display name of 255 characters': [{ ...base, from: `${name} <ann@example.com>` }, (p) => assert.equal(p.from.value[0].name, name)],
    'subject of 998 non-ASCII characters': [{ ...base, subject: long(998, 'é') }, (p) => assert.equal(p.subject, long(998, 'é'))],
    'header value of 5000 bytes without a space': [{ ...base, headers: { 'X-Tag': long(5000) } }, (p) => assert.ok(p.headers.has('x-tag'))],
    'attachment filename of 255 characters': [
      { ...base, attachments: [{ filename: `${long(251)}.pdf`, content: 'x' }] },
      (p) => assert.equal(p.attachments[0].filename, `${long(251)}.pdf`),
    ],
  };
  for (const [label, [message, check]] of Object.entries(cases)) {
    test(label, async () => {
      const { server, stored } = await acceptingServer();
      const c = client(server.port, { security: 'none' });
      try {
        const sent = await settle(c.send(message), label);
        assert.equal(sent.ok, true, sent.error?.message);
        await settle(c.close(), 'close()');
        assert.equal(stored.length, 1);
        const text = stored[0].toString('latin1');
        const longest = Math.max(...text.split('\r\n').map((l) => l.length));
        assert.ok(longest <= 78, `a line of ${longest} bytes`);
        const parsed = await simpleParser(stored[0]);
        const expected = ['date', 'from', 'to', 'message-id', 'subject', 'mime-version', 'content-type', 'content-transfer-encoding', 'x-tag'];
        for (const name of parsed.headers.keys()) assert.ok(expected.includes(name), `unexpected header ${name}`);
        assert.ok(!parsed.headers.has('bcc'));
        check(parsed);
      } finally {
        await server.close();
      }
    });
  }
});
