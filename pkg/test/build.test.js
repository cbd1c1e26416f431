// buildMessage() returns the bytes and envelope send() would use, and
// createTestClient() captures messages in memory: checked against what a
// real smtp-server receives for the same message.

import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { after, before, describe, test } from 'node:test';

import { buildMessage, createClient, createTestClient, SmtpError } from '../src/index.js';
import { startServer } from './helpers/server.js';

// Fixed date and Message-ID, no multipart: the same bytes every time.
const fixed = {
  from: 'Ann <ann@example.com>',
  to: [{ name: 'Bob', address: 'bob@example.org' }],
  bcc: 'hidden@example.org',
  subject: 'Grüße',
  text: 'Hello\n.leading dot stays in the message\n',
  date: '2024-05-01T10:00:00Z',
  messageId: '<fixed@example.com>',
};

describe('buildMessage', () => {
  let server;
  let client;
  before(async () => {
    server = await startServer({ tls: 'none' });
    client = createClient({ host: '127.0.0.1', port: server.port, security: 'none' });
  });
  after(async () => {
    await client.close();
    await server.close();
  });

  test('gives exactly the bytes and envelope that send() transmits', async () => {
    const built = await buildMessage(fixed);
    assert.deepEqual(built.envelope, { from: 'ann@example.com', to: ['bob@example.org', 'hidden@example.org'] });
    assert.equal(built.messageId, '<fixed@example.com>');
    const result = await client.send(fixed);
    const got = server.messages.at(-1);
    assert.deepEqual(new Uint8Array(got.raw), built.raw);
    assert.equal(got.from, built.envelope.from);
    assert.deepEqual(got.to, built.envelope.to);
    assert.equal(result.messageId, built.messageId);
    assert.doesNotMatch(new TextDecoder().decode(built.raw), /hidden/);
  });

  test('the envelope override and a stream of the bytes', async () => {
    const message = { ...fixed, envelope: { from: 'bounces@example.com', to: 'only@example.org' } };
    const built = await buildMessage(message, { stream: true });
    assert.deepEqual(built.envelope, { from: 'bounces@example.com', to: ['only@example.org'] });
    const bytes = new Uint8Array(await new Response(built.stream).arrayBuffer());
    assert.deepEqual(bytes, (await buildMessage(fixed)).raw);
  });

  test('streamed attachments are read into the bytes; the built bytes send unchanged as raw', async () => {
    const data = Buffer.alloc(200_000, 7);
    const built = await buildMessage({ ...fixed, attachments: [{ filename: 'a.bin', content: Readable.from([data]) }] });
    await client.send({ raw: built.raw, envelope: built.envelope });
    assert.deepEqual(new Uint8Array(server.messages.at(-1).raw), built.raw);
    assert.ok(built.raw.byteLength > 200_000);
  });

  test('mistakes are the same EINPUT as send()', async () => {
    await assert.rejects(buildMessage({ ...fixed, subjct: 'x' }), (e) => e instanceof SmtpError && e.code === 'EINPUT');
    await assert.rejects(buildMessage({ from: 'a@b.c' }), /no recipients/);
  });
});

describe('createTestClient', () => {
  test('captures messages in memory, with send()\'s result and errors', async () => {
    const mail = createTestClient();
    const result = await mail.send({ ...fixed, raw: undefined });
    assert.deepEqual(result.accepted, ['bob@example.org', 'hidden@example.org']);
    assert.deepEqual(result.rejected, []);
    assert.equal(result.messageId, '<fixed@example.com>');
    await mail.send({ raw: 'Subject: raw\r\n\r\nbody\r\n', envelope: { from: 'a@example.com', to: ['b@example.org'] } });
    assert.equal(mail.messages.length, 2);
    assert.equal(new TextDecoder().decode(mail.messages[1].raw), 'Subject: raw\r\n\r\nbody\r\n');
    assert.deepEqual(mail.messages[1].envelope, { from: 'a@example.com', to: ['b@example.org'] });
    assert.deepEqual(mail.messages[0].raw, (await buildMessage(fixed)).raw);
    await assert.rejects(mail.send({ ...fixed, requireTLS: true }), /EINPUT/);
    await mail.close();
    await assert.rejects(mail.send(fixed), /ECLOSED/);
  });
});
