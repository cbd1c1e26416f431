// TLS: STARTTLS and implicit TLS with a private CA passed as tls.ca, and the
// failures a user meets first (no CA, no STARTTLS, the wrong port mode).

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { createClient, SmtpError } from '../src/index.js';
import { testCertificates } from './helpers/certs.js';
import { startServer } from './helpers/server.js';
import { EHLO_NAME } from './helpers/ehlo-name.js';

const { ca } = testCertificates();
const envelope = { from: 'ann@example.com', to: ['bob@example.org'] };
const raw = 'From: ann@example.com\r\nTo: bob@example.org\r\nSubject: tls\r\n\r\nover TLS\r\n';

describe('STARTTLS server', () => {
  let server;
  before(async () => {
    server = await startServer({ tls: 'starttls' });
  });
  after(() => server.close());

  test('upgrades with the private CA and sends', async () => {
    const lines = [];
    const client = createClient({
      host: '127.0.0.1',
      port: server.port,
      security: 'starttls',
      tls: { ca },
      onTranscript: (line) => lines.push(line),
    });
    try {
      const result = await client.send({ raw, envelope });
      assert.deepEqual(result.accepted, ['bob@example.org']);
      assert.equal(server.messages.at(-1).raw.toString(), raw);
      const texts = lines.map((l) => `${l.dir} ${l.text}`);
      const starttls = texts.indexOf('C STARTTLS');
      const tlsLine = texts.findIndex((t) => t.startsWith('tls ') && t.includes('certificate verified'));
      assert.ok(starttls >= 0 && tlsLine > starttls, texts.join('\n'));
      assert.equal(texts.filter((t) => t === `C EHLO ${EHLO_NAME}`).length, 2, 'EHLO again after TLS');
    } finally {
      await client.close();
    }
  });

  test('verify() reports the TLS facts and capabilities after the upgrade', async () => {
    const client = createClient({ host: 'localhost', port: server.port, security: 'starttls', tls: { ca } });
    const info = await client.verify();
    assert.equal(info.tls.authorized, true);
    assert.match(info.tls.version, /^TLSv1\.[23]$/);
    assert.ok(info.tls.cipher);
    assert.equal(info.authMethod, null);
    assert.equal(info.capabilities.starttls, false, 'STARTTLS is not offered again inside TLS');
    assert.ok(info.capabilities.extensions.includes('PIPELINING'));
    await client.close();
  });

  test('without the CA the certificate is refused (ECERT) and the hint names tls.ca', async () => {
    const client = createClient({ host: '127.0.0.1', port: server.port, security: 'starttls' });
    const before = server.messages.length;
    await assert.rejects(client.send({ raw, envelope }), (err) => {
      assert.ok(err instanceof SmtpError);
      assert.equal(err.code, 'ECERT');
      assert.equal(err.phase, 'starttls');
      assert.match(err.hint, /tls\.ca/);
      assert.match(err.message, /tls\.ca/, 'the message alone teaches the fix');
      assert.equal(err.deliveryState, 'not-sent');
      return true;
    });
    assert.equal(server.messages.length, before);
    await client.close();
  });

  test('rejectUnauthorized: false connects but reports authorized: false', async () => {
    const client = createClient({
      host: '127.0.0.1',
      port: server.port,
      security: 'starttls',
      tls: { rejectUnauthorized: false },
    });
    const info = await client.verify();
    assert.equal(info.tls.authorized, false);
    await client.close();
  });

  test('a name the certificate does not cover is refused (ECERT)', async () => {
    const client = createClient({
      host: '127.0.0.1',
      port: server.port,
      security: 'starttls',
      tls: { ca, servername: 'mail.example.net' },
    });
    await assert.rejects(client.verify(), { code: 'ECERT' });
    await client.close();
  });

  test('security "tls" against a STARTTLS port is named a port mix-up', async () => {
    const client = createClient({ host: '127.0.0.1', port: server.port, security: 'tls', tls: { ca } });
    await assert.rejects(client.verify(), (err) => {
      assert.equal(err.code, 'ETLS_PORT_MISMATCH');
      assert.match(err.hint, /starttls/);
      return true;
    });
    await client.close();
  });

  test('opportunistic upgrades when STARTTLS is offered', async () => {
    const client = createClient({ host: '127.0.0.1', port: server.port, security: 'opportunistic', tls: { ca } });
    const info = await client.verify();
    assert.equal(info.tls.authorized, true);
    await client.close();
  });

  test('"none" never sends STARTTLS even when offered', async () => {
    const lines = [];
    const client = createClient({
      host: '127.0.0.1',
      port: server.port,
      security: 'none',
      onTranscript: (l) => lines.push(l.text),
    });
    const info = await client.verify();
    assert.equal(info.tls, null);
    assert.ok(!lines.includes('STARTTLS'));
    await client.close();
  });
});

describe('implicit TLS server', () => {
  let server;
  before(async () => {
    server = await startServer({ tls: 'implicit' });
  });
  after(() => server.close());

  test('connects with TLS from the first byte and sends', async () => {
    const client = createClient({ host: '127.0.0.1', port: server.port, security: 'tls', tls: { ca } });
    try {
      const info = await client.verify();
      assert.equal(info.tls.authorized, true);
      const result = await client.send({ raw, envelope });
      assert.deepEqual(result.accepted, ['bob@example.org']);
      assert.equal(server.messages.at(-1).raw.toString(), raw);
    } finally {
      await client.close();
    }
  });

  test('without the CA: ECERT in phase tls', async () => {
    const client = createClient({ host: '127.0.0.1', port: server.port, security: 'tls' });
    await assert.rejects(client.verify(), (err) => {
      assert.equal(err.code, 'ECERT');
      assert.equal(err.phase, 'tls');
      return true;
    });
    await client.close();
  });
});

test('security "starttls" without STARTTLS offered fails before anything is sent (ESTARTTLS_UNAVAILABLE)', async () => {
  const server = await startServer({ tls: 'none' });
  const lines = [];
  const client = createClient({
    host: '127.0.0.1',
    port: server.port,
    security: 'starttls',
    auth: { user: 'ann', pass: 'secret' },
    onTranscript: (l) => lines.push(`${l.dir} ${l.text}`),
  });
  try {
    await assert.rejects(client.send({ raw, envelope }), (err) => {
      assert.equal(err.code, 'ESTARTTLS_UNAVAILABLE');
      assert.equal(err.phase, 'starttls');
      assert.ok(err.hint);
      return true;
    });
    assert.equal(server.messages.length, 0);
    assert.equal(server.authAttempts, 0);
    assert.ok(!lines.some((l) => /^C (AUTH|MAIL)/.test(l)), lines.join('\n'));
  } finally {
    await client.close();
    await server.close();
  }
});

test('bytes injected after the STARTTLS 220 are refused, never read as protected (EPROTOCOL)', async () => {
  // A scripted server: the 220 to STARTTLS carries an extra plaintext reply in the same segment.
  const { createServer } = await import('node:net');
  const server = createServer((socket) => {
    socket.on('error', () => {});
    socket.write('220 scripted ESMTP\r\n');
    socket.on('data', (data) => {
      const line = data.toString();
      if (line.startsWith('EHLO')) socket.write('250-scripted\r\n250 STARTTLS\r\n');
      else if (line.startsWith('STARTTLS')) socket.write('220 go ahead\r\n250 AUTH PLAIN injected\r\n');
    });
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  let upgrades = 0;
  const { nodeTransport } = await import('../src/index.js');
  const transport = {
    async connect(opts) {
      const socket = await nodeTransport.connect(opts);
      const startTls = socket.startTls.bind(socket);
      socket.startTls = (o) => {
        upgrades += 1;
        return startTls(o);
      };
      return socket;
    },
  };
  const client = createClient({ host: '127.0.0.1', port: server.address().port, security: 'starttls', tls: { ca }, transport });
  await assert.rejects(client.verify(), (err) => {
    assert.equal(err.code, 'EPROTOCOL');
    assert.equal(err.phase, 'starttls');
    return true;
  });
  assert.equal(upgrades, 0, 'no handshake is attempted over a tampered stream');
  await client.close();
  await new Promise((resolve) => server.close(resolve));
});
