// Authentication: each SASL mechanism against a real server, over TLS; the
// refusal to send credentials in clear text; wrong credentials.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { createClient, SmtpError } from '../src/index.js';
import { testCertificates } from './helpers/certs.js';
import { PASS, TOKEN, USER, startServer } from './helpers/server.js';

const { ca } = testCertificates();
const envelope = { from: 'ann@example.com', to: ['bob@example.org'] };
const raw = 'From: ann@example.com\r\nTo: bob@example.org\r\nSubject: auth\r\n\r\nauthenticated\r\n';

describe('AUTH over STARTTLS', () => {
  let server;
  before(async () => {
    server = await startServer({ tls: 'starttls', authMethods: ['PLAIN', 'LOGIN', 'CRAM-MD5', 'XOAUTH2'] });
  });
  after(() => server.close());

  const cases = [
    { method: 'PLAIN', auth: { user: USER, pass: PASS } },
    { method: 'LOGIN', auth: { user: USER, pass: PASS, method: 'LOGIN' } },
    { method: 'CRAM-MD5', auth: { user: USER, pass: PASS, method: 'CRAM-MD5' } },
    { method: 'XOAUTH2', auth: { user: USER, accessToken: TOKEN } },
  ];
  for (const { method, auth } of cases) {
    test(`${method}: authenticates, sends, and never logs the secret`, async () => {
      const lines = [];
      const client = createClient({
        host: '127.0.0.1',
        port: server.port,
        security: 'starttls',
        tls: { ca },
        auth,
        onTranscript: (l) => lines.push(l.text),
      });
      try {
        const info = await client.verify();
        assert.equal(info.authMethod, method);
        await client.send({ raw, envelope });
        const got = server.messages.at(-1);
        assert.equal(got.user, USER);
        assert.equal(got.raw.toString(), raw);
        const log = lines.join('\n');
        assert.ok(!log.includes(PASS) && !log.includes(TOKEN), log);
        assert.ok(!log.includes(Buffer.from(`\0${USER}\0${PASS}`).toString('base64')), log);
      } finally {
        await client.close();
      }
    });
  }

  test('wrong password: EAUTH with the server reply', async () => {
    const client = createClient({
      host: '127.0.0.1',
      port: server.port,
      security: 'starttls',
      tls: { ca },
      auth: { user: USER, pass: 'wrong' },
    });
    await assert.rejects(client.send({ raw, envelope }), (err) => {
      assert.ok(err instanceof SmtpError);
      assert.equal(err.code, 'EAUTH');
      assert.equal(err.phase, 'auth');
      assert.equal(err.reply.code, 535);
      assert.ok(err.hint);
      return true;
    });
    await client.close();
  });

  test('an unknown method name is EINPUT', async () => {
    const client = createClient({
      host: '127.0.0.1',
      port: server.port,
      tls: { ca },
      auth: { user: USER, pass: PASS, method: 'NTLM' },
    });
    await assert.rejects(client.verify(), { code: 'EINPUT' });
    await client.close();
  });
});

describe('AUTH over plaintext', () => {
  let server;
  before(async () => {
    server = await startServer({ tls: 'none' });
  });
  after(() => server.close());

  test('credentials are not sent without allowInsecureAuth (EAUTH_INSECURE), even on loopback', async () => {
    const lines = [];
    const client = createClient({
      host: '127.0.0.1',
      port: server.port,
      security: 'none',
      auth: { user: USER, pass: PASS },
      onTranscript: (l) => lines.push(`${l.dir} ${l.text}`),
    });
    await assert.rejects(client.send({ raw, envelope }), (err) => {
      assert.equal(err.code, 'EAUTH_INSECURE');
      assert.equal(err.phase, 'auth');
      assert.match(err.hint, /allowInsecureAuth/);
      assert.match(err.message, /allowInsecureAuth/);
      return true;
    });
    assert.equal(server.authAttempts, 0);
    assert.ok(!lines.some((l) => l.startsWith('C AUTH')), lines.join('\n'));
    await client.close();
  });

  test('allowInsecureAuth: true lets a local test server authenticate', async () => {
    const client = createClient({
      host: '127.0.0.1',
      port: server.port,
      security: 'none',
      allowInsecureAuth: true,
      auth: { user: USER, pass: PASS },
    });
    try {
      await client.send({ raw, envelope });
      assert.equal(server.messages.at(-1).user, USER);
    } finally {
      await client.close();
    }
  });
});
