// The main API is strict: unknown keys (nodemailer's names included) and
// values of the wrong type are EINPUT before anything connects; null means
// absent; `envelope` on a structured message decides MAIL FROM / RCPT TO;
// tls.minVersion is enforced. Checked against a real smtp-server, with
// what it received.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { createClient, SmtpError } from '../src/index.js';
import { testCertificates } from './helpers/certs.js';
import { startServer } from './helpers/server.js';

const { ca } = testCertificates();
const HOST = '127.0.0.1';

/** Asserts `fn` throws (or rejects with) EINPUT whose message matches `pattern`. */
async function refused(fn, pattern) {
  await assert.rejects(
    async () => fn(),
    (error) => {
      assert.ok(error instanceof SmtpError, String(error));
      assert.equal(error.code, 'EINPUT', error.message);
      assert.match(error.message, pattern);
      return true;
    },
  );
}

describe('createClient options', () => {
  const cases = [
    [{ requireTLS: true }, /requireTLS.*security: 'starttls'/],
    [{ secure: true }, /secure.*security: 'tls'/],
    [{ ignoreTLS: true }, /ignoreTLS.*security: 'none'/],
    [{ name: 'mx.example.com' }, /`name`.*clientName/],
    [{ connectionTimeout: 1000 }, /timeouts: \{ connect \}/],
    [{ greetingTimeout: 1000 }, /timeouts: \{ greeting \}/],
    [{ socketTimeout: 1000 }, /timeouts: \{ command \}/],
    [{ maxConnections: 2 }, /pool: \{ maxConnections \}/],
    [{ logger: true }, /onTranscript/],
    [{ hots: 'x' }, /`hots`.*not a known key.*host, port/],
    [{ tls: { maxVersion: 'TLSv1.2' } }, /maxVersion/],
    [{ tls: { minVersion: 'TLSv1' } }, /tls.minVersion.*TLSv1.2/],
    [{ auth: { user: 'a', pass: 'b', type: 'login' } }, /auth.type/],
    [{ auth: { user: 'ann\r\nRSET', pass: 'b' } }, /auth.user contains a line break/],
    [{ auth: { user: 'ann\0', pass: 'b' } }, /auth.user contains a line break or NUL/],
    [{ timeouts: { socket: 5 } }, /`socket`.*timeouts/],
    [{ pool: { maxMessages: 5 } }, /maxMessagesPerConnection/],
    [{ port: '25' }, /port is the string "25"/],
    [{ clientName: 42 }, /clientName is number 42/],
    [{ timeouts: { command: '5000' } }, /timeouts.command is the string/],
    [{ allowInsecureAuth: 'yes' }, /allowInsecureAuth/],
    [{ tls: { ca: 42 } }, /tls.ca/],
  ];
  for (const [extra, pattern] of cases) {
    test(`refuses ${JSON.stringify(extra).replace(/\\u0000/, '\\0')}`, async () => {
      await refused(() => createClient({ host: HOST, port: 25, ...extra }), pattern);
    });
  }

  test('undefined and null mean absent', async () => {
    const server = await startServer({ tls: 'none' });
    try {
      const client = createClient({
        host: HOST,
        port: server.port,
        security: 'none',
        auth: null,
        tls: null,
        clientName: undefined,
        timeouts: null,
        pool: undefined,
        requireTLS: undefined,
      });
      await client.send({ from: 'ann@example.com', to: 'bob@example.org', text: 'hi' });
      await client.close();
      assert.equal(server.messages.length, 1);
    } finally {
      await server.close();
    }
  });
});

describe('send() messages', () => {
  let server;
  let client;
  before(async () => {
    server = await startServer({ tls: 'none', hideDSN: false });
    client = createClient({ host: HOST, port: server.port, security: 'none' });
  });
  after(async () => {
    await client.close();
    await server.close();
  });
  const base = { from: 'ann@example.com', to: 'bob@example.org' };

  const refusedMessages = [
    [{ dsn: { notify: 'success' } }, /`dsn`.*envelope: \{ dsn/],
    [{ subjet: 'typo' }, /`subjet`.*not a known key/],
    [{ subject: 42 }, /subject is number 42/],
    [{ subject: { text: 'x' } }, /subject is an object/],
    [{ text: ['a'] }, /text is an array/],
    [{ headers: { 'X-Tag': { prepared: true, value: 'x' } } }, /X-Tag.*prepared/],
    [{ headers: { 'X-Count': 3 } }, /X-Count is number 3/],
    [{ attachments: [{ filename: 'a.txt', content: 'x', bogus: 1 }] }, /`bogus` in attachment 0/],
    [{ attachments: { filename: 'a.txt' } }, /attachments is an object/],
    [{ to: { name: 'Bob' } }, /to has no address/],
    [{ to: 42 }, /to is number 42/],
    [{ envelope: { to: [] } }, /envelope has no recipients/],
    [{ envelope: { dsn: { notify: [] } } }, /DSN notify is empty or has "never" next to a condition/],
    [{ envelope: { dsn: { notify: ['never', 'success'] } } }, /DSN notify is empty or has "never" next to a condition/],
    [{ envelope: { dsn: { notify: ['sometimes'] } } }, /notify "sometimes"/],
    [{ envelope: { dsn: { return: 'headers' } } }, /dsn.return.*ret/],
    [{ envelope: { size: 10 } }, /`size` in the envelope/],
  ];
  test('a raw message takes only its envelope', async () => {
    await refused(() => client.send({ raw: 'x', subject: 'y', envelope: { from: 'a@b.c', to: 'd@e.f' } }), /`subject` in a raw message.*`subject` cannot apply/);
  });
  for (const [extra, pattern] of refusedMessages) {
    test(`refuses ${JSON.stringify(extra)}`, async () => {
      const before = server.connections;
      await refused(() => client.send({ ...base, ...extra }), pattern);
      assert.equal(server.connections, before, 'nothing connected for a refused message');
    });
  }

  test('html: null, text: null and subject: null are absent, never the text "null"', async () => {
    await client.send({ ...base, subject: null, html: null, text: 'only text', cc: null, attachments: null, headers: null });
    const raw = server.messages.at(-1).raw.toString();
    assert.doesNotMatch(raw, /null/);
    assert.doesNotMatch(raw, /^Subject:/m);
    assert.match(raw, /Content-Type: text\/plain; charset=utf-8\r\n/);
    assert.doesNotMatch(raw, /text\/html/);
    await client.send({ ...base, text: null, html: '<p>x</p>' });
    assert.doesNotMatch(server.messages.at(-1).raw.toString(), /null|text\/plain/);
  });

  test('addresses as { name, address } objects and mixed arrays', async () => {
    await client.send({
      from: { name: 'Doe, Ann "A"', address: 'ann@example.com' },
      to: [{ name: 'Bob', address: 'bob@example.org' }, 'Carol <carol@example.org>', { address: 'dan@example.org' }],
      cc: { name: 'Éve', address: 'eve@example.org' },
      text: 'x',
    });
    const got = server.messages.at(-1);
    assert.equal(got.from, 'ann@example.com');
    assert.deepEqual(got.to, ['bob@example.org', 'carol@example.org', 'dan@example.org', 'eve@example.org']);
    const raw = got.raw.toString();
    assert.match(raw, /^From: "Doe, Ann \\"A\\"" <ann@example.com>\r\n/m);
    assert.match(raw, /^To: Bob <bob@example.org>, Carol <carol@example.org>,\s+dan@example.org\r\n/m);
    assert.match(raw, /^Cc: =\?UTF-8\?Q\?=C3=89ve\?= <eve@example.org>\r\n/m);
  });

  test('envelope on a structured message decides MAIL FROM and RCPT TO', async () => {
    await client.send({
      from: 'news@example.com',
      to: 'everyone-list@example.org',
      bcc: 'hidden@example.org',
      subject: 'bounce-tracked',
      text: 'x',
      envelope: { from: 'bounces+42@example.com', to: ['only-this-person@example.org'] },
    });
    const got = server.messages.at(-1);
    assert.equal(got.from, 'bounces+42@example.com');
    assert.deepEqual(got.to, ['only-this-person@example.org']);
    const raw = got.raw.toString();
    assert.match(raw, /^From: news@example.com\r\n/m);
    assert.match(raw, /^To: everyone-list@example.org\r\n/m);
    assert.doesNotMatch(raw, /hidden|bounces/);
  });

  test('envelope with only from keeps the recipients of the headers; cc and bcc in the envelope are recipients', async () => {
    await client.send({ ...base, cc: 'carol@example.org', text: 'x', envelope: { from: '' } });
    assert.equal(server.messages.at(-1).from, '');
    assert.deepEqual(server.messages.at(-1).to, ['bob@example.org', 'carol@example.org']);
    await client.send({ ...base, text: 'x', envelope: { to: 'a@example.org', cc: [{ address: 'b@example.org' }], bcc: 'c@example.org' } });
    assert.equal(server.messages.at(-1).from, 'ann@example.com');
    assert.deepEqual(server.messages.at(-1).to, ['a@example.org', 'b@example.org', 'c@example.org']);
  });

  test('DSN on a structured message: RET, ENVID and NOTIFY on the wire', async () => {
    await client.send({ ...base, text: 'x', envelope: { dsn: { ret: 'headers', envid: 'env-42', notify: ['success', 'failure'] } } });
    const got = server.messages.at(-1);
    assert.equal(got.mailArgs.RET, 'HDRS');
    assert.equal(got.mailArgs.ENVID, 'env-42');
    assert.deepEqual(got.rcptArgs.map((a) => a.NOTIFY), ['SUCCESS,FAILURE']);
    await client.send({ ...base, text: 'x', envelope: { dsn: { notify: ['never'] } } });
    assert.deepEqual(server.messages.at(-1).rcptArgs.map((a) => a.NOTIFY), ['NEVER']);
  });
});

describe('TLS: REQUIRETLS and tls.minVersion', () => {
  test('REQUIRETLS from the envelope of a structured message', async () => {
    const server = await startServer({ tls: 'starttls', hideREQUIRETLS: false });
    try {
      const client = createClient({ host: HOST, port: server.port, security: 'starttls', tls: { ca } });
      await client.send({ from: 'ann@example.com', to: 'bob@example.org', text: 'x', envelope: { requireTls: true } });
      await client.close();
      assert.equal(server.messages.at(-1).mailArgs.REQUIRETLS, true);
    } finally {
      await server.close();
    }
  });

  for (const security of ['starttls', 'tls']) {
    test(`minVersion TLSv1.3 refuses a TLS 1.2-only server (${security}), before any command`, async () => {
      const server = await startServer({ tls: security === 'tls' ? 'implicit' : 'starttls', maxVersion: 'TLSv1.2' });
      const lines = [];
      try {
        const client = createClient({
          host: HOST,
          port: server.port,
          security,
          tls: { ca, minVersion: 'TLSv1.3' },
          onTranscript: (line) => lines.push(`${line.dir} ${line.text}`),
        });
        await assert.rejects(client.send({ from: 'ann@example.com', to: 'bob@example.org', text: 'secret' }), (error) => {
          assert.equal(error.code, 'ETLS', error.message);
          assert.match(error.message, /TLSv1.2, below tls.minVersion TLSv1.3/);
          return true;
        });
        await client.close();
        assert.equal(server.messages.length, 0);
        assert.ok(!lines.some((l) => /^C (MAIL|AUTH)/.test(l)), lines.join('\n'));
        // TLS 1.2 is accepted when asked for.
        const relaxed = createClient({ host: HOST, port: server.port, security, tls: { ca, minVersion: 'TLSv1.2' } });
        await relaxed.send({ from: 'ann@example.com', to: 'bob@example.org', text: 'ok' });
        await relaxed.close();
        assert.equal(server.messages.length, 1);
      } finally {
        await server.close();
      }
    });
  }

  test('minVersion TLSv1.3 sends to a TLS 1.3 server', async () => {
    const server = await startServer({ tls: 'starttls' });
    try {
      const client = createClient({ host: HOST, port: server.port, security: 'starttls', tls: { ca, minVersion: 'TLSv1.3' } });
      const info = await client.verify();
      assert.equal(info.tls.version, 'TLSv1.3');
      await client.send({ from: 'ann@example.com', to: 'bob@example.org', text: 'x' });
      await client.close();
      assert.equal(server.messages.length, 1);
    } finally {
      await server.close();
    }
  });
});
