// buildMessage() returns the bytes and envelope send() would use, and
// createTestClient() captures messages in memory: checked against what a
// real smtp-server receives for the same message.

import assert from 'node:assert/strict';
import { Readable } from 'node:stream';

import { simpleParser } from 'mailparser';
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

  test('a 64 MB text body from a stream goes through with bounded buffering, and reads back whole', async () => {
    // Short ASCII lines with CRLF: their quoted-printable is the text itself,
    // so output bytes match input bytes one for one and what sits between
    // the two (in JS and in wasm) is exactly produced - received.
    const line = (i) => `line ${String(i).padStart(8, '0')} of a body streamed through the encoder\r\n`;
    const perChunk = 1024;
    const chunks = Math.ceil((64 * 1024 * 1024) / (line(0).length * perChunk));
    let produced = 0;
    async function* body() {
      for (let c = 0; c < chunks; c++) {
        let text = '';
        for (let i = 0; i < perChunk; i++) text += line(c * perChunk + i);
        produced += text.length;
        yield text;
      }
    }
    const built = await buildMessage({ ...fixed, text: body() }, { stream: true });
    let received = 0;
    let inBody = -1;
    let mostBuffered = 0;
    const watched = built.stream.pipeThrough(
      new TransformStream({
        transform(chunk, controller) {
          received += chunk.byteLength;
          // The body starts after the headers (a few hundred bytes, counted once seen).
          if (inBody < 0 && produced > 0) inBody = received - chunk.byteLength;
          if (inBody >= 0) mostBuffered = Math.max(mostBuffered, produced - (received - inBody));
          controller.enqueue(chunk);
        },
      }),
    );
    const mail = await simpleParser(Readable.fromWeb(watched));
    assert.ok(produced >= 64 * 1024 * 1024, `${produced} bytes streamed`);
    // At most a couple of input chunks (~77 KB each) in flight, never the body.
    assert.ok(mostBuffered <= 4 * 80 * 1024, `${mostBuffered} bytes were held between the stream and the output`);
    // mailparser gives the text with LF line ends.
    const lines = chunks * perChunk;
    const unix = (text) => text.replace(/\r\n/g, '\n');
    assert.equal(mail.text.length, produced - lines);
    assert.ok(mail.text.startsWith(unix(line(0) + line(1))));
    assert.ok(mail.text.endsWith(unix(line(lines - 2) + line(lines - 1))));
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
